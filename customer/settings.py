from pydantic import Field

from shared.settings import SharedSettings


class CustomerSettings(SharedSettings):
    database_url: str = Field(
        "postgres://customer_service@127.0.0.1:5432/customers", validation_alias="CUSTOMER_DATABASE_URL"
    )
    port: int = Field(3000, validation_alias="CUSTOMER_PORT")
    # Unacked messages the consumer holds at once.
    prefetch: int = Field(32, ge=1, le=1000, validation_alias="CONSUMER_PREFETCH")
