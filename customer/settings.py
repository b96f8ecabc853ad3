from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from shared.database_roles import with_role
from shared.settings import SharedSettings


class CustomerSettings(SharedSettings):
    database_url: str = Field(
        "postgres://customer_service@127.0.0.1:5432/customers", validation_alias="CUSTOMER_DATABASE_URL"
    )
    migration_url: str | None = Field(None, validation_alias="CUSTOMER_MIGRATION_DATABASE_URL")

    @property
    def migration_database_url(self) -> str:
        """Migrations run as the database's owner: by default the service's URL as `customer_owner`."""
        return self.migration_url or with_role(self.database_url, "customer_owner")

    auth_audience: str = Field("customer-service", validation_alias="CUSTOMER_AUTH_AUDIENCE")
    # Unacked messages the consumer holds at once: a batch being applied and the next one arriving.
    prefetch: int = Field(1000, ge=1, le=10000, validation_alias="CONSUMER_PREFETCH")
    # Deliveries applied in one transaction at most (fewer when fewer have arrived).
    consumer_batch_size: int = Field(500, ge=1, le=5000, validation_alias="CONSUMER_BATCH_SIZE")
    # The deduplication window: applied event ids are kept this long. A copy of an event older than this
    # cannot be told from a new one, so the consumer dead-letters it as stale instead of counting it.
    processed_events_retention_hours: float = Field(168.0, ge=1, validation_alias="PROCESSED_EVENTS_RETENTION_HOURS")
    # The consumer's queues (customer/events/topology.py).
    orders_queue: str = Field("customer.orders", validation_alias="CUSTOMER_ORDERS_QUEUE")
    # Broker redeliveries of one message before the quorum queue dead-letters it: a last resort against
    # a message that crashes the process. The consumer never returns a message to the queue itself.
    delivery_limit: int = Field(5, ge=1, validation_alias="EVENT_DELIVERY_LIMIT")
    # Seconds before each retry of an event that failed while the database was up (a bug, a constraint a
    # later event may satisfy): "5,30,120,300" is 5 attempts over about 7.5 minutes, then the dead letters.
    retry_delays: Annotated[tuple[int, ...], NoDecode] = Field((5, 30, 120, 300), validation_alias="EVENT_RETRY_DELAYS")

    # The broker users whose order events the consumer believes (RabbitMQ checks each message's `user_id`
    # against its publisher's login). Besides these it trusts only its own user, the sender of its retries
    # and replays. The default is the order service's user in docker-compose.yml; `make run` connects both
    # services as one user, which the consumer trusts as its own.
    order_events_publishers: Annotated[tuple[str, ...], NoDecode] = Field(
        ("order_service",), min_length=1, validation_alias="ORDER_EVENTS_PUBLISHERS"
    )
    # Bytes of the largest event body the consumer reads; a larger one is dead-lettered unread. An
    # order.created is well under 1 KiB; the bound stops a prefetch of giant messages filling the memory.
    event_max_bytes: int = Field(65536, ge=1024, validation_alias="EVENT_MAX_BYTES")
    # Dead letters (and their audit) are kept this long after their last failure, then purged: their bodies
    # hold personal data. An open one older than this is gone too: act on dead letters within the retention.
    dead_letter_retention_days: float = Field(30.0, ge=1, validation_alias="DEAD_LETTER_RETENTION_DAYS")
    # With AUTH_MODE=off, /ops/... answers only when this is true (make run sets it on a developer's machine):
    # otherwise anyone who reaches the port could replay or discard events.
    ops_allow_unauthenticated: bool = Field(False, validation_alias="OPS_ALLOW_UNAUTHENTICATED")

    @field_validator("retry_delays", "order_events_publishers", mode="before")
    @classmethod
    def _comma_separated(cls, value):
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("retry_delays")
    @classmethod
    def _positive_and_distinct(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(delay < 1 for delay in value) or len(set(value)) != len(value):
            raise ValueError("retry delays must be distinct whole seconds, each at least 1")
        return value

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.orders_queue}.dlx"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.orders_queue}.dlq"

    @property
    def retry_exchange(self) -> str:
        return f"{self.orders_queue}.retry"

    def retry_queue(self, delay: int) -> str:
        return f"{self.orders_queue}.retry.{delay}s"
