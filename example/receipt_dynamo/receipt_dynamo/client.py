"""A thin access layer; the table client is injected so tests need no AWS."""
from receipt_dynamo.models import Receipt


class ReceiptClient:
    def __init__(self, table):
        self._table = table

    def put_receipt(self, receipt: Receipt) -> None:
        self._table.put_item(Item=receipt.to_item())

    def get_receipt(self, receipt_id: str) -> dict | None:
        response = self._table.get_item(Key={"PK": f"RECEIPT#{receipt_id}", "SK": "RECEIPT"})
        return response.get("Item")
