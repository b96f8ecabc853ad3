from pydantic import Field, SecretStr, model_validator

from shared.database_roles import with_role
from shared.settings import SharedSettings


class OrderSettings(SharedSettings):
    database_url: str = Field("postgres://order_service@127.0.0.1:5432/orders", validation_alias="ORDER_DATABASE_URL")
    migration_url: str | None = Field(None, validation_alias="ORDER_MIGRATION_DATABASE_URL")

    @property
    def migration_database_url(self) -> str:
        """Migrations run as the database's owner: by default the service's URL as `order_owner`."""
        return self.migration_url or with_role(self.database_url, "order_owner")

    # The relay's LISTEN connection (one session, held open): PostgreSQL itself, not a transaction pooler.
    listen_url: str | None = Field(None, validation_alias="ORDER_LISTEN_DATABASE_URL")

    @property
    def listen_database_url(self) -> str:
        return self.listen_url or self.database_url

    customer_service_url: str = Field("http://127.0.0.1:3000", validation_alias="CUSTOMER_SERVICE_URL")
    # Total time allowed for one call to the customer service, connect included.
    customer_service_timeout: float = Field(2.0, gt=0, validation_alias="CUSTOMER_SERVICE_TIMEOUT")
    # After this many calls in a row without an answer (timed out, or no connection), POST /orders is refused
    # at once for CUSTOMER_BREAKER_COOLDOWN seconds; then one call probes the customer service.
    customer_breaker_failures: int = Field(5, ge=1, validation_alias="CUSTOMER_BREAKER_FAILURES")
    customer_breaker_cooldown: float = Field(1.0, gt=0, validation_alias="CUSTOMER_BREAKER_COOLDOWN")
    auth_audience: str = Field("order-service", validation_alias="ORDER_AUTH_AUDIENCE")
    # The order service's own credentials for the customer service (OAuth2 client credentials, sent with
    # HTTP Basic to AUTH_TOKEN_URL), used when AUTH_MODE=jwt.
    client_id: str | None = Field(None, validation_alias="ORDER_CLIENT_ID")
    client_secret: SecretStr | None = Field(None, validation_alias="ORDER_CLIENT_SECRET")
    # The relay also sweeps on this timer, in case a wake-up signal was missed.
    outbox_sweep_interval: float = Field(1.0, gt=0, validation_alias="OUTBOX_SWEEP_INTERVAL")
    # Events claimed, published and deleted per batch (a transaction each, up to four in flight).
    outbox_batch_size: int = Field(500, ge=1, le=5000, validation_alias="OUTBOX_BATCH_SIZE")
    # A batch whose publisher confirms take longer is rolled back (its rows stay pending) and retried.
    outbox_confirm_timeout: float = Field(10.0, gt=0, validation_alias="OUTBOX_CONFIRM_TIMEOUT")
    # The longest a new order's event is reserved for the relay of the worker that wrote it (published straight
    # after the commit). A dead worker's reservations end with its database session, sooner than this.
    outbox_lease: float = Field(30.0, gt=0, validation_alias="OUTBOX_LEASE")
    # How often the service vacuums its outbox (deleted rows leave dead index entries until a vacuum).
    outbox_vacuum_interval: float = Field(30.0, gt=0, validation_alias="OUTBOX_VACUUM_INTERVAL")
    # Idempotency keys are purged after these many hours.
    idempotency_retention_hours: float = Field(24.0, ge=24, validation_alias="IDEMPOTENCY_RETENTION_HOURS")

    def auth_required(self) -> dict[str, str | None]:
        secret = self.client_secret.get_secret_value() if self.client_secret else None
        return {
            **super().auth_required(),
            "AUTH_TOKEN_URL": self.auth_token_url,
            "ORDER_CLIENT_ID": self.client_id,
            "ORDER_CLIENT_SECRET": secret,
        }

    @model_validator(mode="after")
    def _lease_outlasts_a_publish(self) -> "OrderSettings":
        # A lease that ran out while its publish still waited for the broker would let a claim send it too.
        if self.outbox_lease <= self.outbox_confirm_timeout:
            raise ValueError("OUTBOX_LEASE must be longer than OUTBOX_CONFIRM_TIMEOUT")
        # The relay holds a claim's transaction open while the broker confirms its batch.
        if self.database_idle_in_transaction_timeout <= self.outbox_confirm_timeout:
            raise ValueError("DATABASE_IDLE_IN_TRANSACTION_TIMEOUT must be longer than OUTBOX_CONFIRM_TIMEOUT")
        return self
