import json
import os

import boto3
from common import order_key

TABLE = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])


def handler(event, context):
    order_id = (event.get("pathParameters") or {}).get("id") or event.get("id", "unknown")
    TABLE.put_item(Item={"pk": order_key(order_id)["pk"]["S"], "status": "received"})
    return {"statusCode": 200, "body": json.dumps({"id": order_id, "status": "received"})}
