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


class DeadLetter(Model):
    """What reached the dead-letter queue, moved here by customer/dead_letters/mover.py: one row per event id
    (per message id, or per body, for a message that carries none). A row that dead-letters again after a
    replay is updated and its `history` grows by one entry per dead-lettering."""

    id = fields.BigIntField(primary_key=True)
    key = fields.CharField(max_length=200, unique=True)  # the event id; else "message:<id>" or "body:<sha256>"
    event_id = fields.UUIDField(null=True)
    event_type = fields.CharField(max_length=64, null=True)
    customer_id = fields.BigIntField(null=True)
    reason = fields.CharField(max_length=64)  # the kind, as the metric's label: untrusted_sender, delivery_limit...
    error = fields.TextField()
    attempts = fields.IntField()
    first_failed_at = fields.DatetimeField()
    last_failed_at = fields.DatetimeField(db_index=True)  # the retention purge reads oldest first
    message_id = fields.CharField(max_length=255, null=True)
    sender = fields.CharField(max_length=255, null=True)  # the AMQP user_id it arrived with
    content_type = fields.CharField(max_length=255, null=True)
    headers: fields.JSONField[dict] = fields.JSONField()
    body = fields.BinaryField()
    state = fields.CharField(max_length=16, default="open")  # open, replayed, discarded
    history: fields.JSONField[list] = (
        fields.JSONField()
    )  # one entry per dead-lettering: at, reason, error, attempts, occurrence
    created_at = fields.DatetimeField()  # the first failure: the list's order

    class Meta:
        table = "dead_letters"
        indexes = [Index(fields=("created_at", "id")), Index(fields=("reason", "error"))]


class DeadLetterAudit(Model):
    """Who did what to which dead letter, when and why (the diff of an edit in `detail`)."""

    id = fields.BigIntField(primary_key=True)
    at = fields.DatetimeField(db_index=True)
    actor = fields.CharField(max_length=255)
    action = fields.CharField(max_length=32)
    dead_letter_key = fields.CharField(max_length=200, null=True, db_index=True)  # no foreign key: outlives the purge
    reason = fields.TextField()
    detail: fields.JSONField[dict] = fields.JSONField()

    class Meta:
        table = "dead_letter_audit"
