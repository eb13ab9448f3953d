"""Read what really sits in a Redis broker's queues (kombu's Redis transport layout)."""

import base64
import json

import redis


def queued_messages(client: redis.Redis, queue: str) -> list[dict]:
    """Every message waiting in ``queue``, decoded: ``{"task": name, "headers": {...}}``."""
    messages = []
    for raw in client.lrange(queue, 0, -1):
        envelope = json.loads(raw)
        headers = envelope.get("headers") or {}
        body = envelope["body"]
        if envelope.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        decoded = json.loads(body)
        # Protocol 2 names the task in a header, protocol 1 in the body.
        name = headers.get("task") or (decoded.get("task") if isinstance(decoded, dict) else None)
        messages.append({"task": name, "headers": headers, "body": decoded})
    return messages


def queued_task_names(client: redis.Redis, queue: str) -> list[str]:
    """The task names waiting in ``queue``, oldest first."""
    return [m["task"] for m in reversed(queued_messages(client, queue))]
