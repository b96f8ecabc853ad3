from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

from order.domain import INITIAL_STATUS


class Order(Model):
    id = fields.IntField(primary_key=True)
    # The customer lives in the customer service's database: an id here, never a copy.
    customer_id = fields.IntField()
    product_name = fields.CharField(max_length=200)
    quantity = fields.IntField()
    price = fields.DecimalField(max_digits=12, decimal_places=2)
    status = fields.CharField(max_length=16, default=INITIAL_STATUS)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "orders"
        # Lists read newest first, whole or by customer or status: each from an index in that order,
        # so a page (by offset or by cursor) reads only its own rows.
        indexes = [
            Index(fields=("created_at", "id")),
            Index(fields=("customer_id", "created_at", "id")),
            Index(fields=("status", "created_at", "id")),
        ]


class OutboxEvent(Model):
    """An event written in the same transaction as its order and deleted once the broker confirmed it.

    Only pending events live here, so the relay's claim reads the head of the primary key and never
    walks past the history of what was already sent.
    """

    id = fields.BigIntField(primary_key=True)
    event_id = fields.UUIDField(unique=True)
    event_type = fields.CharField(max_length=64)
    order_id = fields.IntField()
    payload = fields.TextField()  # the message body exactly as it is published
    request_id = fields.CharField(max_length=128)
    actor = fields.CharField(max_length=255, null=True)  # who caused it: the caller's `sub`; NULL with auth off
    created_at = fields.DatetimeField(auto_now_add=True)
    attempts = fields.IntField(default=0)  # publishes the broker refused (nack, or no queue bound yet)
    # The trace of the request that wrote it (shared/tracing.py), so its publish continues that trace however
    # late it leaves; NULL while tracing is off.
    trace_context = fields.TextField(null=True)
    # Set when the process that wrote the row publishes it itself, straight after its commit (order/outbox/):
    # no relay claims the row before this time. NULL: any relay may claim it.
    leased_until = fields.DatetimeField(null=True)
    # The leasing worker's liveness lock (order/outbox/): once that worker's session is gone, the lease is
    # void at once, whatever leased_until says.
    leased_by = fields.IntField(null=True)

    class Meta:
        table = "outbox"
        indexes = [Index(fields=("order_id", "id"))]  # "is an earlier event of this order still pending?"


class IdempotencyKey(Model):
    # The client's key, scoped to the caller (order/idempotency.py): `sub` (up to 255), a separator, the key.
    key = fields.CharField(max_length=511, primary_key=True)
    fingerprint = fields.CharField(max_length=64)  # sha256 of the validated request body
    status_code = fields.IntField(null=True)  # null while the first request is in flight
    response = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)

    class Meta:
        table = "idempotency_keys"
