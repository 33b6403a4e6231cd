from receipt_dynamo.models import Receipt


def test_key():
    assert Receipt("r1", "Cafe").key() == {"PK": "RECEIPT#r1", "SK": "RECEIPT"}
