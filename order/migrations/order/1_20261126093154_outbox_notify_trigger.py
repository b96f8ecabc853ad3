from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True

# A NOTIFY on each insert wakes the relays of other instances (PostgreSQL sends it at commit).


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify('outbox', '');
            RETURN NULL;
        END;
        $$ LANGUAGE plpgsql;
        CREATE TRIGGER outbox_notify AFTER INSERT ON "outbox"
            FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP TRIGGER IF EXISTS outbox_notify ON "outbox";
        DROP FUNCTION IF EXISTS outbox_notify();"""


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
