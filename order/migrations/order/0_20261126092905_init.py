from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        CREATE TABLE IF NOT EXISTS "idempotency_keys" (
    "key" VARCHAR(255) NOT NULL PRIMARY KEY,
    "fingerprint" VARCHAR(64) NOT NULL,
    "status_code" INT,
    "response" TEXT,
    "created_at" TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS "idx_idempotency_created_944834" ON "idempotency_keys" ("created_at");
CREATE TABLE IF NOT EXISTS "orders" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "customer_id" INT NOT NULL,
    "product_name" VARCHAR(200) NOT NULL,
    "quantity" INT NOT NULL,
    "price" DECIMAL(12,2) NOT NULL,
    "status" VARCHAR(16) NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "updated_at" TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS "idx_orders_custome_384e97" ON "orders" ("customer_id");
CREATE TABLE IF NOT EXISTS "outbox" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "event_id" UUID NOT NULL UNIQUE,
    "event_type" VARCHAR(64) NOT NULL,
    "order_id" INT NOT NULL,
    "payload" TEXT NOT NULL,
    "request_id" VARCHAR(128) NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "sent_at" TIMESTAMPTZ,
    "attempts" INT NOT NULL
);
CREATE INDEX IF NOT EXISTS "idx_outbox_order_i_f99510" ON "outbox" ("order_id");
CREATE INDEX IF NOT EXISTS "idx_outbox_sent_at_2956fd" ON "outbox" ("sent_at", "id");
COMMENT ON TABLE "outbox" IS 'An event written in the same transaction as its order, published by the relay later.';
CREATE TABLE IF NOT EXISTS "aerich" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "version" VARCHAR(255) NOT NULL,
    "app" VARCHAR(100) NOT NULL,
    "content" JSONB NOT NULL
);"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    # Everything the upgrade made but aerich's own table, which still records the other apps' versions.
    return """
        DROP TABLE IF EXISTS "outbox";
        DROP TABLE IF EXISTS "orders";
        DROP TABLE IF EXISTS "idempotency_keys";"""


MODELS_STATE = (
    "eJztWl1zokgU/SsUT5kq11I06s6bie6Mu4luTZjZqdnaolpotUtoCN1MtLL+9+1uQBoEIi"
    "nHUTdv4X7QzbnXyzl0nlXXt6BfH1nQ8VwKsbn+A67V98qzioED2R/5ATVFBZ63dfNrCqa2"
    "SEBJqLGEayKCp4T6wKTMPwM2gcxkQWL6yKPIxcyKA9vmRtdkgQjPE1OA0WMADerOIV2wpd"
    "4rf//DzAhbcAVJfOktjRmCtpXa+jLcqXAYdO0J4+0C+L+JUL7e1DBdO3CwFO6t6cLF23i2"
    "H26dQwx9QKElPQLfYfTUsSncLTNQP4DbbVqJwYIzENhUeuSpkdhUwxhPdONhqBuGWgEk08"
    "UcYIQpEQg4YGXYEM/pgl1q19ebcKEEiTCMr/il/+n2Y//TFYt6x5d0WZ3CQo4jlxb6NuIm"
    "gILwNgL6BOsZ2w/0PbYtWgXzTNphsI8NCfhJ0x0d/U57D/A77ULsuYtDn0BNKKABYSBacB"
    "fqEab5SGeyMkhH+L+AdNTDJwP0nG/iF63Z7rZ7rU67x0LEPreWbgn2o7GeAdaHxGMr5KCq"
    "w1UBrHLOq7r3xDAtAUwfftX5nR1CHm25Sa/u+19F/zrryHM3GX+Iw6Wmvr2b3GQwN33IsT"
    "FAztgYMA9FDsxHPp2Zwd6KUuvxH4eZI0cd4uz5rAm219G6ZZUZ3Q8f9P79n6nyDPr6kHu0"
    "VGli61UnM3K2N1H+GukfFX6pfJuMhwJdl9C5L1ZM4vRvKt8TCKhrYPfJAJYEUWyNYdzwt/"
    "RsKb07uGEKzOUT8C1jx+NqblHsrsvRnKwFYDAXJePgbmoxj5kIurLLbyYxjSmkNcLyE8kM"
    "sioM+zD45RkfFet0icxBJnwxazEDQl0H+kYldDNZr3qVntqwOfCr1PNdKzCpIa4r8MFs3g"
    "USQq3R2IeONxrFdJz70ng/BgBTRHP0TmEXyyk/qoXPmg4yVWLmNO8AmsgBdlH/RjlZPhIm"
    "1aPkM0S3BLrB8HZ037+7amo1TTQtoxqIQrmd2zsdG+qRKrMhyTjeVIhZpnqU0dDs7DEZml"
    "nilgwG7jpnen3ccXFZ/FqueuBZr6x6OvOt6qdS9Rgjqexi9yeiqgI6dVfD7xBTNUdbSd5a"
    "mcIScXspLLWPFchvqDz5iFKIFYQVpqgUwlZmyABMWDqLVQBRECWKWK2meMHURmQBLWW6Fv"
    "E+tMFasVn/+nU100A/bJGXVeCzmgCvEraF6AfJBAePhCuPtQ1hS29LE0EeNX38i1VFMNuq"
    "uNhUEpc3aP5/0Ze/alqr1dUarU7vut3tXvcaW+646yojkTejD5xHpibAyypUNFmuBP38eT"
    "TIr4Cck6lDECCrzjPP7tyiBFlBfVrhdJXnpnjONOcJoRFoVGCX6awL1J2HP4gQ867apxM5"
    "5e27SY7mBGvbBTmIFp9ASCkX0bXHPoHwIXtskj9/i8dFOusigM9oUa23jxjVesVqlPve5O"
    "hlC5N95KhEYKuUXEo7QL3P6Jz1hMqbozt36wuYOHI8mvMxr5AHyCnH+/jcOGEWcBpKvg99"
    "ZC7UXREfOWol+h0kIW8npOdFQIu16Xfo8+8MVaiRlHKBvOiA/00nTVD2m6qAcBR+geg29z"
    "ocbZYcjjZ3D0fZihTm/V/i7w+TcQHdTFKy3AOZVPlXsRE5xzPSEnA5GOXiKqujMlSC3+Dm"
    "Z7/JNv8BylVHfQ=="
)
