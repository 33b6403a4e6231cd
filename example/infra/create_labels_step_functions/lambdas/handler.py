"""Step Functions task: label the lines of one receipt."""
from receipt_dynamo import ReceiptLine
from receipt_label import label_lines


def lambda_handler(event, _context):
    lines = [ReceiptLine(line["id"], line["text"]) for line in event.get("lines", [])]
    return {"receipt_id": event.get("receipt_id"), "labels": label_lines(lines)}
