"""Rule-based labelling of receipt lines."""
import re

from receipt_dynamo import ReceiptLine

TOTAL = re.compile(r"\b(total|amount due)\b", re.IGNORECASE)
DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")


def label_lines(lines: list[ReceiptLine]) -> dict[int, str]:
    labels: dict[int, str] = {}
    for line in lines:
        if TOTAL.search(line.text):
            labels[line.line_id] = "TOTAL"
        elif DATE.search(line.text):
            labels[line.line_id] = "DATE"
    if lines and lines[0].line_id not in labels:
        labels[lines[0].line_id] = "MERCHANT"
    return labels
