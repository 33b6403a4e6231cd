"""DynamoDB entities and access patterns for receipts."""
from receipt_dynamo.models import Receipt, ReceiptLine

__all__ = ["Receipt", "ReceiptLine", "__version__"]
__version__ = "0.3.0"
