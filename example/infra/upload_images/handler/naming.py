"""Object naming for uploaded images."""


def object_key(receipt_id: str) -> str:
    return f"raw/{receipt_id[:2]}/{receipt_id}.png"
