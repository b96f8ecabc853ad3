"""Settings both services read from the environment (names fixed by the contract)."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SharedSettings(BaseSettings):
    # populate_by_name lets tests pass field names: CustomerSettings(database_url=...).
    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore")

    amqp_url: str = Field("amqp://guest:guest@127.0.0.1:5672/", validation_alias="AMQP_URL")
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")
    # Used only by `manage migrate/prepare` to create a service's role and database when they are
    # missing; by default the service URL's server as `postgres`. Never needed by a running service.
    postgres_admin_url: str | None = Field(None, validation_alias="POSTGRES_ADMIN_URL")
    # Event topology; tests give each run its own names so they never touch the run topology.
    events_exchange: str = Field("orders", validation_alias="EVENTS_EXCHANGE")
    orders_queue: str = Field("customer.orders", validation_alias="CUSTOMER_ORDERS_QUEUE")
    # Broker redeliveries of one message before the quorum queue dead-letters it.
    delivery_limit: int = Field(5, ge=1, validation_alias="EVENT_DELIVERY_LIMIT")

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.orders_queue}.dlx"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.orders_queue}.dlq"
