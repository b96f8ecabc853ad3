from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        CREATE TABLE IF NOT EXISTS "dead_letters" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "key" VARCHAR(200) NOT NULL UNIQUE,
    "event_id" UUID,
    "event_type" VARCHAR(64),
    "customer_id" BIGINT,
    "reason" VARCHAR(64) NOT NULL,
    "error" TEXT NOT NULL,
    "attempts" INT NOT NULL,
    "first_failed_at" TIMESTAMPTZ NOT NULL,
    "last_failed_at" TIMESTAMPTZ NOT NULL,
    "message_id" VARCHAR(255),
    "sender" VARCHAR(255),
    "content_type" VARCHAR(255),
    "headers" JSONB NOT NULL,
    "body" BYTEA NOT NULL,
    "state" VARCHAR(16) NOT NULL,
    "history" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS "idx_dead_letter_last_fa_e03523" ON "dead_letters" ("last_failed_at");
CREATE INDEX IF NOT EXISTS "idx_dead_letter_created_98e6ec" ON "dead_letters" ("created_at", "id");
CREATE INDEX IF NOT EXISTS "idx_dead_letter_reason_0c2556" ON "dead_letters" ("reason", "error");
COMMENT ON TABLE "dead_letters" IS 'What reached the dead-letter queue, moved here by customer/dead_letter_mover.py: one row per event id';
        CREATE TABLE IF NOT EXISTS "dead_letter_audit" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "at" TIMESTAMPTZ NOT NULL,
    "actor" VARCHAR(255) NOT NULL,
    "action" VARCHAR(32) NOT NULL,
    "dead_letter_key" VARCHAR(200),
    "reason" TEXT NOT NULL,
    "detail" JSONB NOT NULL
);
CREATE INDEX IF NOT EXISTS "idx_dead_letter_at_90659d" ON "dead_letter_audit" ("at");
CREATE INDEX IF NOT EXISTS "idx_dead_letter_dead_le_0ff80b" ON "dead_letter_audit" ("dead_letter_key");
COMMENT ON TABLE "dead_letter_audit" IS 'Who did what to which dead letter, when and why (the diff of an edit in `detail`).';"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP TABLE IF EXISTS "dead_letter_audit";
        DROP TABLE IF EXISTS "dead_letters";"""


MODELS_STATE = (
    "eJztW21v2zYQ/iuEPiWAmyV+SbJiGGCnXpshdYrWXV/WQaEl2iYiUapINRG6/PcdKcl6se"
    "RITuw4nr8kFu+OpB6Sx3t41E/N8LlwbOIdnEU/tJfop8awTeBHgbSBNOy6aZksEnhkZQy4"
    "Uhxx4WFDgGCMLU6gyCTc8KgrqMOglPmWJQsdAxQpmyRFPqPffaILZ0LEVHXq73+gmDKT3B"
    "IuH39qY0osU/3WDI9gQUwdC9kuNTWpTG5dj3AOTfHYPnqvqBERuKrTmlKGrqqHO6noXuuq"
    "+gwaUC+IVLke254z8YdSlO8x0g3H8m2WKLuBmDpspk2Z6uCEMOLJDkOZ8HwJjOxSBGKMVY"
    "hBohK+fMrGJGPsWyIF5EhPyjRdH1wO9Q/9oa5rNaA3AC/AArrK1dtPZBdeNI/aJ+3T1nH7"
    "FFRUN2clJ3dh0wkwoaGCZzDU7pQcC6wnI5aAqv7PwXo2xV4xrrF+Dlnoch7ZGMdF0MYFCb"
    "bJTF0HuDa+1S3CJmIqET08XADlX933Z2+67/dAa1826cDSChfdIBI1Q5nEO8EXm6ZcBXUg"
    "TpnsUK6GMrExtepgPDNYCuHIAWyIh8jC22lXgbfTLodXyrLwOp4JewrA54cOtKIPzpvd74"
    "0fazYfbrQ3Tm3wmY0zC+srkAhqk2Jss5Y5ZM3I9CD+8Ry9BrygecmsIFpOC3Adnr/tfxh2"
    "376Tzdmcf7cUft1hX0qaqjTIle4d5xbArBL06Xz4BslH9PVy0FfwOlxMPNViojf8qsk+YV"
    "84OnNudHDbycqPS2PUMqPuu+aSo5613I36pox6jFFq2FXvZSw7vk4FXrJghI3rG+yZ+pzE"
    "aTpluvMiu2nnSzDDEzVmElzZzRmBeAWwXhAhyghGSt5YTDFM0ITtRqpWYxnapykWCMbVmB"
    "ITAZ1AsooXYRUIZp1cMLbzA4RANQgaBShu+JdUY7pU8Q7c4CVyGEGec4NcsCc/CBMojPbT"
    "02s9rX5je/LRhnANkIeCBnI8pTFyzKCBxvCEZ2Ihu2Rgz6OEIwb17R+grqpTSVId5AhPYE"
    "0gPJa9xd+YR1wLB4hyFLkAhJmJqODoakqh215whSZQE5cvInsK/fMC1ZNUtQDNgdZ4Wnon"
    "HWGqbqiawzSROp7neOtjjj06+b+Qx1+bzVbrpHnYOj7ttE9OOqeHs7hlXrQogOmdv5YxTM"
    "aD3k8xr0lQJzSP1B+H+mxSZL4S4iMdkV40vz9+PH9Vwn1SNjmUfZ+aB9JyCRL0xJHDAmwV"
    "sK1w609v6upFi/BUcNSYslmrR6GUTx2HZabucRVOeVxOKY/nGGW81xZO3UWuOWe4FKXcNK"
    "zX6KWTEUg23qqzPLHYwmOpx5/iYTwzh+8QApYSLxIbbAW8i5hb//MwQ9piGPfedj/vZ4jb"
    "xeXgdayegv3s4rKXP2iFANd2RcFJa6kvSZus72xq45MFCaZj6nGhjzG1ljqtKDDfwiOL53"
    "tEMX8yZeGHjPe89XqGe50x/TaNdnQuURiDlYcBWavtC3abnU6lDEpnQQalkw8GOIFXK4gG"
    "ymFOLHYQV4IYWhTLkLe83Q7uSnBPCTajI+As0n9+uBwUI50yyW8M1BDoX2RR/hzDrgXgSj"
    "AWh7r5qDbn52UF+VBXni0XsWaGvaAY+dgiB/soEIRvF+C9CMMZ4IB373zQff+lmFz0CjDv"
    "fRn2u3kHLgCeWv47Nlgfm9MclzBtLS7l6LiCRznKBzeJQ5GinD8J0xi1/ElisvMnD/Anu1"
    "sIywzFswj3NzAB3fVNKrR7stChUqNyKlrHM4MK+WgHmdRENzLpKhz4T42pSpOisLIGFBGm"
    "Mqw30wDtqewxHY+RM4ZCRKAlRBm6MokAsnu1r3KqueTzKpq4P227y4BuZAa0vmPdHZ9spj"
    "/NnDgbouiAf8HF3thgKw7418AxATBaL0eVWGwhxq1mBYhbzVKEpSgLcHoHrXlNo8B0RScn"
    "W3ZloyzxWp4Y3LLE67ozg2EMVYdYJhY7XlmTV24M4XjnOQbhnJh9eTlHK+QbOZ176IYba+"
    "vqvk/F26/96KooR9iSl5sDBG1YlJgv1a3UcG4g8KDhJVAbXxOuJHLwfFteNr2FBqzghcMM"
    "Mk81VlD/A3jGE95HW4J4aL+NfaYiBqRakn/av6/qBO0hN9TKucWT3VjbNO+26vs8yfKvT+"
    "fytttH7J7phxtln+tszDbWJR41psXbVyS7Z9vCidYqPwjffba9zs+2fxCP16TGKZMt9Per"
    "OX+AZVUD4Uh9C9E9qkSEjxYQ4aN5IhxdvKhDzFImO2b2nJjZ3X9IDQHz"
)
