from pydantic import Field

from shared.settings import SharedSettings


class CustomerSettings(SharedSettings):
    database_url: str = Field(
        "postgres://customer_service@127.0.0.1:5432/customers", validation_alias="CUSTOMER_DATABASE_URL"
    )
    # Unacked messages the consumer holds at once: a batch being applied and the next one arriving.
    prefetch: int = Field(1000, ge=1, le=10000, validation_alias="CONSUMER_PREFETCH")
    # Deliveries applied in one transaction at most (fewer when fewer have arrived).
    consumer_batch_size: int = Field(500, ge=1, le=5000, validation_alias="CONSUMER_BATCH_SIZE")
    # The deduplication window: applied event ids are kept this long. A copy of an event older than this
    # cannot be told from a new one, so the consumer dead-letters it as stale instead of counting it.
    processed_events_retention_hours: float = Field(168.0, ge=1, validation_alias="PROCESSED_EVENTS_RETENTION_HOURS")
