from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True

# A row written with a lease is published by the process that wrote it, straight after its commit: the NOTIFY
# that wakes the relays to claim rows is sent only for rows without one.


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        ALTER TABLE "outbox" ADD "leased_until" TIMESTAMPTZ;
        DROP TRIGGER IF EXISTS outbox_notify ON "outbox";
        CREATE TRIGGER outbox_notify AFTER INSERT ON "outbox"
            FOR EACH ROW WHEN (NEW.leased_until IS NULL) EXECUTE FUNCTION outbox_notify();"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP TRIGGER IF EXISTS outbox_notify ON "outbox";
        CREATE TRIGGER outbox_notify AFTER INSERT ON "outbox"
            FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
        ALTER TABLE "outbox" DROP COLUMN "leased_until";"""


MODELS_STATE = (
    "eJztWm1z2jgQ/isaf7ncTC4DDiG030jCtdwl0Glor9PLjUfYAjTYsmPJSTw5/vutZBsbYx"
    "OcoRS4fMnY+yLJz25Wz0o8a65vEf+kaxHHcwVhZvgnCbX36Flj2CHwUGxwjDTseXO1fBd4"
    "aCsHmpoaUxJyZTzkwsemAP0I25yAyCLc9KknqMtAygLblkLXBEPKxqkoYPQ+IIZwx0RMYK"
    "r36O9/QEyZRZ4IT169qTGixLYWlj6NVqoUhgg9JbycYP93ZSrnGxqmawcOy5h7oZi4bG4P"
    "65HSMWHEx4JYmU+QK4y/OhFFqwWB8AMyX6aVCiwywoEtMp88NFKZZhi9/sC47QwMQ6sAku"
    "kyCTBlgisEHPxk2ISNxQRe9bOzWTRRikRkJmf82v58+bH9+QisfpVTuhCnKJC9WKVHupka"
    "BAscDaOgT7EewXqI78GyRBXMc26bwT4RpOCnSbd19JuNNcBvNkqxlyoJfQo1F1gEHEC0yD"
    "LUXSaKkc555ZCO8X8B6TiHdwbosVzEb3q9cd5onTYbLTBR65xLzldg3+0NcsD6hHswQwGq"
    "A/JUAmvW51XZu2OYrgBs0Pk2kCM7nN/b2SQ9uml/U/nrhLHmut/7kJhnkvryun+Rw9z0ic"
    "TGwAVl4wo0gjqkGPlFzxz2Vux6kjxspo5stYjD91l9ZofxvKsi073p3A7aN58WwnPVHnSk"
    "Rl8ITSI9auZKznwQ9Fd38BHJV/S93+sodF0uxr6aMbUbfNfkmnAgXIO5jwa2MhAl0gTGmd"
    "ylR9PM3iEFQ2xOH7FvGUsaV3fLbJdVju7kJZjhsQqZBHd2nPCYvqIry/ymn9CYUlqjJD+R"
    "zFCrQrGPjF+u8XGwdpfIbKTCl7MWM+DCdYhvVEI35/WqrXTXis2Gt1LPd63AFIZ6r8AH83"
    "4HSAj1Wm0dOl6rldNxqVvE+z7ATFBR0O+UZnHW5Uel8F7TQehKzILkvSImdbBdlr+xT56P"
    "RE4nsfMeorsCuqvOZfemfX1U1491lbRANagg2XRuLGVs1I9UqQ2px/aqQsIyta2Uhnpzjc"
    "pQzxO3tDBI1T7T6+2Wi8Pi19moB571yqgver5FfVeinmCUCbta/Y50VYEYuk+dB8KEVtBb"
    "ZbTHqzosZbdWh6W1GSJyQPToUyEIQ5Qh6KgQh5kBGcw4uIMtwhxRwZGaDWFmIYvYBLIVuc"
    "wkymXou1PQQZ6MqO+AhooTLZdLP3q+O3bHZFIijzALpowm48imDwRBowgIcFd5+8TG4S8c"
    "mTamDpLJzJV8Ak/IHalnICEO9kM0JaFaAoPR/Dv2iO0pRx7mIvKg0MWAFTg9TjB8GSwd23"
    "LEEHGYXYHwcsP6rKU5EgU1bovgrzQlTx6kOAds5mkUp0f8D5pUF00ZA5bqZVapEb6g4/9L"
    "L/xO109Pz/XaabN11jg/P2vV5jx3WbWK8F50P0jOu1CtXu6YVWIWtstfvnSviiOQ9cnFIQ"
    "iodSI99+6OZQWyiqadRjtBtsar71zkZxE0Co0KTHjR6wB75M1fmmQr05oNctblrUEuapBx"
    "aLu4ANLy65KMy0Gk7bavS3wCn82LC3B5vVj0Ogjgc42z3lqnc9Zb5a2z1L31zofdRa3TO2"
    "Og944nCk6mSjeKrMv2NoranuwSspMjgBYTsCtU2SuWHN/u16tvGDbBHCpRwAS1q5axvO8G"
    "CtkeRWOH6lbB6c8uXaq3iU/NibZ88hMrjlcc+uDU5O1afb8agfJDggfiywOfKhQ143KA/H"
    "SDP8HMMBX4n6qAcGx+gOjW17pRr6+4Ua8v36gr3lH0Y9Y/bvu9EtqfuuS3SmoK9C+yKd/H"
    "c4MV4EowVnOWPD3J7XxyAMlZfupONvsPWbME2Q=="
)
