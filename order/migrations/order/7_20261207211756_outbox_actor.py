from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        ALTER TABLE "idempotency_keys" ALTER COLUMN "key" TYPE VARCHAR(511) USING "key"::VARCHAR(511);
        ALTER TABLE "outbox" ADD "actor" VARCHAR(255);"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        ALTER TABLE "outbox" DROP COLUMN "actor";
        ALTER TABLE "idempotency_keys" ALTER COLUMN "key" TYPE VARCHAR(255) USING "key"::VARCHAR(255);"""


MODELS_STATE = (
    "eJztWm1z4jYQ/isaf2k6k2aCA4TeN5LQO9oEbi5ce3NNxyNsARps2bHkJEya/96VbOMXbG"
    "IyhAPKN7wvWunRsnpW9rPm+hbxT7oWcTxXEGbO/iAz7QN61hh2CPwoNjhGGva8uVo+Czy0"
    "lQNNTI0pmXFlPOTCx6YA/QjbnIDIItz0qSeoy0DKAtuWQtcEQ8rGiShg9D4ghnDHREwg1A"
    "f09z8gpswiT4THj97UGFFiW5mpT8OZKoUhZp4SXk6w/5sylfGGhunagcNS5t5MTFw2t4f5"
    "SOmYMOJjQazUEuQMo1XHonC2IBB+QObTtBKBRUY4sEVqyUMjkWmG0esPjNvOwDC0FUAyXS"
    "YBpkxwhYCDnwybsLGYwGOjVnsJAyVIhGYy4p/tL5ef2l+OwOpnGdKFfQo3shep9FD3ogbB"
    "AofDKOgTrEcwH+J7MC2xCuY5t/VgHwsS8JOk2zj6zXoF8Jv1UuylSkKfQM0FFgEHEC2yCH"
    "WXiWKkc145pCP8X0E6yuGtAXosJ/GLXquf11tnzXoLTNQ855LzJdh3e4McsD7hHkQoQHVA"
    "nkpgTfu8KXu3DNMlgA063wZyZIfzezudpEc37W8qf51ZpLnu9z7G5qmkvrzuX+QwN30isT"
    "FwQdm4Ao2gDilGPuuZw96KXE/iH+upIxst4rA+q8/sWRR32c50bzq3g/bN58z2XLUHHanR"
    "M1sTS4+auZIzHwT91R18QvIRfe/3Ogpdl4uxryImdoPvmpwTDoRrMPfRwFYKolgaw/giT+"
    "nRNHV2SMEQm9NH7FvGgsbV3TLbRZWjO3kJZnistkyC+3Ic85i+oiuL/KYf05hSWqMk709m"
    "nrVkIbkUp5YmjcmTBzvBIdR8tdFaoiDxf0BTxjBV9aD+demxAy5ch/gGVX+t9wwVHj1rj1"
    "LK+8IVVTwXQ+PXj8Mor7eX863lMCwneLl8qYhuzutNrGPr+N2aaYfnu1ZgCkM9r8Cd8357"
    "SJ7109MK7BmsSumz0mXxvg8wE1QU9IalaZx2OeRwYQ5TsyB5r4hJHWyX5W/kk+duodNJ5L"
    "yD6C6B7qpz2b1pXx/V9GNdJS3QMipIOp3rCxmbHKBVa0PisbmqEJ/u2kZKQ61ZoTLU8iQ3"
    "KQxStcutyGbLxX71IuldDzzrjbue9Tzs+rbseoxRatvV7LekAw3E0H3qPBAmtII+NKU9Xt"
    "aNKrtK3ajWZojIAdGjT4UgDFGGoPtEHCIDMphxcAdbhDmigiMVDWFmIYvYBLIVucwkymXo"
    "u1PQQZ6MqO+AhooTLZdL7x3vjt0xmZTII8yCkGEwjmz6QBA01YAAd5W3T2w8+4kj08bUQT"
    "KZuZJP4BdyR+o3kBAH+zM0JTM1BQaj+XfsEdtTjjzMRehBoY0BK3B6nGBYGUwd23LEGeIQ"
    "XYGwYnOvlh31RZvshC/o+P/SDP+q62dn5/rpWbPVqJ+fN1qnc567qFpGeC+6HyXnzVSr11"
    "tmlZiF/fLXr92r4h1I++T2IQiodSI9d+591BJkFU07C0+CdI1X68zysxAahcYKTDjrtYc9"
    "8vpfMKUrU8UGOe1yaJCLGmQ8s11cAGn5q6WUy16k7aZfLfkEls2LC3B5vch67QXwucZZb1"
    "XpnPVWeessdVmsgdG5/iowzx324aVp7tKy0ahyadlolF9aSt3hcmK/29QqlxMY+ifHEwVX"
    "f6Uncdplcyfx6Y4cw7JVJoAWE3DsrnIYLzjuQ93a9IlsE8yhEgVMUHvVMpb3XUMh26Hd2K"
    "K6VXC9tli4ot0arvKSLeNz+D4tLF7bcWnZJj41J9rifWWkOF5yVYkTkx/yFfDha5B3+Brk"
    "gfjymnIVxp9y2cOu6l1Iv/xPrYBwZL6H6NYqfQdSW/IdSG3xOxBF5oo+V//9tt8r6aUSlz"
    "z/oKZA/yKb8l287VoCrgRjORHMc74cnZADXPzok+zlPzoCOw8="
)
