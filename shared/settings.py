"""Settings both services read from the environment (names fixed by the contract)."""

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

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
    admission_max_in_flight: int = Field(32, ge=1, validation_alias="ADMISSION_MAX_IN_FLIGHT")
    admission_max_queue: int = Field(512, ge=0, validation_alias="ADMISSION_MAX_QUEUE")
    admission_queue_timeout: float = Field(1.0, gt=0, validation_alias="ADMISSION_QUEUE_TIMEOUT")
    admission_overload_queue_timeout: float = Field(0.1, gt=0, validation_alias="ADMISSION_OVERLOAD_QUEUE_TIMEOUT")
    admission_burst: float = Field(0.2, ge=0, validation_alias="ADMISSION_BURST")
    admission_max_loop_lag: float = Field(0.05, gt=0, validation_alias="ADMISSION_MAX_LOOP_LAG")
    # Used only by `manage migrate/prepare` to create a service's role and database when they are
    # missing; by default the service URL's server as `postgres`. Never needed by a running service.
    postgres_admin_url: str | None = Field(None, validation_alias="POSTGRES_ADMIN_URL")
    # Event topology; tests give each run its own names so they never touch the run topology.
    events_exchange: str = Field("orders", validation_alias="EVENTS_EXCHANGE")
    orders_queue: str = Field("customer.orders", validation_alias="CUSTOMER_ORDERS_QUEUE")
    # Broker redeliveries of one message before the quorum queue dead-letters it: a last resort against
    # a message that crashes the process. The consumer never returns a message to the queue itself.
    delivery_limit: int = Field(5, ge=1, validation_alias="EVENT_DELIVERY_LIMIT")
    # Seconds before each retry of an event that failed while the database was up (a bug, a constraint a
    # later event may satisfy): "5,30,120,300" is 5 attempts over about 7.5 minutes, then the dead letters.
    retry_delays: Annotated[tuple[int, ...], NoDecode] = Field((5, 30, 120, 300), validation_alias="EVENT_RETRY_DELAYS")

    @field_validator("amqp_url")
    @classmethod
    def _broker_list(cls, value: str) -> str:
        broker_urls(value)
        return value

    @field_validator("retry_delays", mode="before")
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
