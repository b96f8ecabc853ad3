"""Settings both services read from the environment (names fixed by the contract)."""

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.broker_urls import broker_urls


class SharedSettings(BaseSettings):
    # populate_by_name lets tests pass field names: CustomerSettings(database_url=...).
    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore")

    # One AMQP URL, or several comma-separated (a cluster's nodes): see shared/amqp.py.
    amqp_url: str = Field("amqp://guest:guest@127.0.0.1:5672/", validation_alias="AMQP_URL")
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")
    # Admission control, per worker (shared/admission.py): requests working at once, requests waiting
    # for a slot, how long one may wait before it is refused with 503 and Retry-After (in a burst, and
    # once the queue has stood longer than a burst), and the event loop lag (a saturated CPU) above
    # which new requests are refused at once.
    admission_max_in_flight: int = Field(16, ge=1, validation_alias="ADMISSION_MAX_IN_FLIGHT")
    admission_max_queue: int = Field(512, ge=0, validation_alias="ADMISSION_MAX_QUEUE")
    admission_queue_timeout: float = Field(1.0, gt=0, validation_alias="ADMISSION_QUEUE_TIMEOUT")
    admission_overload_queue_timeout: float = Field(0.1, gt=0, validation_alias="ADMISSION_OVERLOAD_QUEUE_TIMEOUT")
    admission_burst: float = Field(0.2, ge=0, validation_alias="ADMISSION_BURST")
    admission_max_loop_lag: float = Field(0.05, gt=0, validation_alias="ADMISSION_MAX_LOOP_LAG")
    # The database's session limits, in seconds, which `manage migrate` sets (shared/database_roles.py):
    # a statement that runs longer is ended (its request answered 503); a lock waited for longer is given
    # up; a transaction left idle longer is ended (above OUTBOX_CONFIRM_TIMEOUT, the longest the relay
    # holds one open while the broker confirms). On the database rather than each connection: PgBouncer
    # refuses startup parameters it does not know.
    database_statement_timeout: float = Field(10.0, gt=0, validation_alias="DATABASE_STATEMENT_TIMEOUT")
    database_lock_timeout: float = Field(5.0, gt=0, validation_alias="DATABASE_LOCK_TIMEOUT")
    database_idle_in_transaction_timeout: float = Field(
        60.0, gt=0, validation_alias="DATABASE_IDLE_IN_TRANSACTION_TIMEOUT"
    )
    # Lists page by offset up to here; deeper, by the `next` cursor (whose cost does not grow with depth).
    page_max_offset: int = Field(10_000, ge=0, validation_alias="PAGE_MAX_OFFSET")
    # Used only by `manage migrate/prepare` to create a service's role and database when they are
    # missing; by default the service URL's server as `postgres`. Never needed by a running service.
    postgres_admin_url: str | None = Field(None, validation_alias="POSTGRES_ADMIN_URL")
    # The exchange the order service publishes to and the customer service binds to; tests give each
    # run its own names so they never touch the running system's topology.
    events_exchange: str = Field("orders", validation_alias="EVENTS_EXCHANGE")

    @field_validator("amqp_url")
    @classmethod
    def _broker_list(cls, value: str) -> str:
        broker_urls(value)
        return value
