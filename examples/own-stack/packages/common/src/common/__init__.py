"""Helpers every service of the team shares."""


def order_key(order_id: str) -> dict:
    return {"pk": {"S": f"ORDER#{order_id}"}}
