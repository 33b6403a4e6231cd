"""Records uploaded receipt images and their first guess at labels."""
from receipt_dynamo import Receipt
from receipt_label import label_lines

from handler.naming import object_key


def lambda_handler(event, _context):
    receipt = Receipt(event["receipt_id"], event.get("merchant", "unknown"))
    return {"key": object_key(receipt.receipt_id), "item": receipt.to_item(), "labels": label_lines([])}
