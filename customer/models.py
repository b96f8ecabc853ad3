from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model


class Customer(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200)
    address = fields.CharField(max_length=200)
    email = fields.CharField(max_length=254, null=True, unique=True)
    orders_count = fields.IntField(default=0)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "customers"
        indexes = [Index(fields=("created_at", "id"))]  # the list's order: a page reads only its own rows


class ProcessedEvent(Model):
    """Event ids already applied: the unique key that makes the consumer exactly-once."""

    event_id = fields.UUIDField(primary_key=True)
    event_type = fields.CharField(max_length=64)
    processed_at = fields.DatetimeField(auto_now_add=True, db_index=True)  # the purge reads oldest first

    class Meta:
        table = "processed_events"
