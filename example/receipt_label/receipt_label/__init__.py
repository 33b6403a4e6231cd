"""Labels receipt lines (merchant, total, date)."""
from receipt_label.labeler import label_lines

__all__ = ["label_lines"]
