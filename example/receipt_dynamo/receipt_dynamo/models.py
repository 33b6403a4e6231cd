"""Receipt records as stored in the single DynamoDB table."""
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ReceiptLine:
    line_id: int
    text: str

    def key(self, receipt_id: str) -> dict:
        return {"PK": f"RECEIPT#{receipt_id}", "SK": f"LINE#{self.line_id:05d}"}


@dataclass(frozen=True)
class Receipt:
    receipt_id: str
    merchant: str
    lines: tuple = field(default_factory=tuple)

    def key(self) -> dict:
        return {"PK": f"RECEIPT#{self.receipt_id}", "SK": "RECEIPT"}

    def to_item(self) -> dict:
        return {**self.key(), "merchant": self.merchant, "line_count": len(self.lines)}
