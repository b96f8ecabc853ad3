from pydantic import Field

from shared.settings import SharedSettings


class OrderSettings(SharedSettings):
    database_url: str = Field("postgres://order_service@127.0.0.1:5432/orders", validation_alias="ORDER_DATABASE_URL")
    port: int = Field(3001, validation_alias="ORDER_PORT")
    customer_service_url: str = Field("http://127.0.0.1:3000", validation_alias="CUSTOMER_SERVICE_URL")
    # Total time allowed for one call to the customer service, connect included.
    customer_service_timeout: float = Field(2.0, gt=0, validation_alias="CUSTOMER_SERVICE_TIMEOUT")
    # The relay also sweeps on this timer, in case a wake-up signal was missed.
    outbox_sweep_interval: float = Field(1.0, gt=0, validation_alias="OUTBOX_SWEEP_INTERVAL")
    # Small enough that publishing a backlog never holds the event loop (and HTTP) for long.
    outbox_batch_size: int = Field(100, ge=1, le=5000, validation_alias="OUTBOX_BATCH_SIZE")
    # Sent outbox rows and idempotency keys are purged after these many hours.
    outbox_retention_hours: float = Field(24.0, gt=0, validation_alias="OUTBOX_RETENTION_HOURS")
    idempotency_retention_hours: float = Field(24.0, ge=24, validation_alias="IDEMPOTENCY_RETENTION_HOURS")
