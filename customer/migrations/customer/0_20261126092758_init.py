from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        CREATE TABLE IF NOT EXISTS "customers" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "name" VARCHAR(200) NOT NULL,
    "address" VARCHAR(200) NOT NULL,
    "email" VARCHAR(254) UNIQUE,
    "orders_count" INT NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "updated_at" TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS "processed_events" (
    "event_id" UUID NOT NULL PRIMARY KEY,
    "event_type" VARCHAR(64) NOT NULL,
    "processed_at" TIMESTAMPTZ NOT NULL
);
COMMENT ON TABLE "processed_events" IS 'Event ids already applied: the unique key that makes the consumer exactly-once.';
CREATE TABLE IF NOT EXISTS "aerich" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "version" VARCHAR(255) NOT NULL,
    "app" VARCHAR(100) NOT NULL,
    "content" JSONB NOT NULL
);"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    # Everything the upgrade made but aerich's own table, which still records the other apps' versions.
    return """
        DROP TABLE IF EXISTS "processed_events";
        DROP TABLE IF EXISTS "customers";"""


MODELS_STATE = (
    "eJztmG1v2jAQgP9KlE+dtFaFAqumaRKlTGVaoWrTbeo0WSY2YJHYNHHaoq7/fT4nIS+EAN"
    "3oWMWXltxLfH6cO5/9aNqBL4VLvYNW9MN8bzyaHLtU/SjQvjVMPJmkdSCSuO9kHHxt2Pel"
    "h22pFAPs+FSJCPVtj00kE1xJeeA4IBS2MmR8mIgCzm4DiqQYUjnSQf34qcSME/pA/fhxMk"
    "YDRh2SiZkRGFvLkZxOtKzD5SdtCKP1kS2cwOWJ8WQqR4LPrBmXIB1STj0sKbxeegGED9FF"
    "U41nFEaamIQhpnwIHeDAkanp9lEiMxHq9ix01bYQMtcAZAsOcFWovp79EELYr1Zq72rHR4"
    "3asTLRYc4k757CoRMwoaPG07XMJ63HEocWmnECVf+fw9oaYa+Ya2yfI6tCzpONOZahjQUJ"
    "2+R7egm4Ln5ADuVDOQKih4clKL82L1tnzcs9ZfUGhhQqAcLU6EaqaqgD3glfTIhHfX8dxC"
    "mXHeXVKFMXM2cdxjOHZxGOCsCWVIgs3nptFbz12mK8oMviFR5RlV/hC8ICumINzrstr8Z/"
    "62s+3OpqnNqGPQozR7gA66nSSObSYrZZzxxZErkexD/+x6qhJkh63JlG6VTC1eqct6+s5v"
    "kFDOf6/q2j+TWtNmiqWjrNSfcauQSYvcT41rHODHg0bnrdtsYrfDn09IiJnXVjQkw4kAJx"
    "cY9U2U4yP5bG1DKrHkzIM1c967lb9W1Z9ZhRatl19NDLDsapxgsEfWyP77FH0JxGVMUi23"
    "mVW3XzEszxUK8ZwIUwZ23+hSds1VNQ0r6jXJqFR4GczZIDwSS2RhTMVzsXmPrVBiO+gR1Y"
    "6qmhxnAYJQrYiBrhZ2iM6VQ9Ymm4eEx9rYHvJFAxGPRBDeBM9wW36YGZ+6g28f4/OLFoMq"
    "jo3HJ93Tld0JmkfHIJHgSMHIDncxJ7eY9ifhgE3IaVMvRI8Kf20dxQppdktm5RjsJUTSeh"
    "nnr5cSakp4Gt0w1mvF5h091YpSlsLO4JG3MtYZL+6+9ied/dPrYt+9ii7mVr9rEm9Zg9Kt"
    "6/It2SfQsnVrtbrBdLhw3fYt2pcyaEtEbNT7m8woJfrddXugaol1wD1OfuslRarUE4Mn+F"
    "dCsr3WFVSu6wKvN3WGpESYvuVz5f9boLLgESl/weymxp/DIc5m/sjmWDtEvgAozMRhkz3T"
    "tvfs/jbn3pneR3QHjBiUL/T7e0p98+0DY4"
)
