from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        ALTER TABLE "outbox" ADD "trace_context" TEXT;"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        ALTER TABLE "outbox" DROP COLUMN "trace_context";"""


MODELS_STATE = (
    "eJztWm1z4jYQ/isaf2k6k2bAIQm9byShd7QXuLlw7c01HY+wBWiwZUeSk3hS/ntXso2NsQ"
    "lkOA5ovmTsfdHLo83usxbPhs8dwk86DvECXxJmR3+QyHiHng2GPQIP5QbHyMBBMFOrd4kH"
    "rnagmak1IZHQxgMhObYl6IfYFQREDhE2p4GkPgMpC11XCX0bDCkbZaKQ0fuQWNIfETmGqd"
    "6hv/8BMWUOeSIifQ0m1pAS15lb+iReqVZYMgq08GqM+W/aVM03sGzfDT2WMw8iOfbZzB7W"
    "o6QjwgjHkji5LagVJrtORfFqQSB5SGbLdDKBQ4Y4dGVuywMrkxmW1e31rdt237KMNUCyfa"
    "YApkwKjYCHnyyXsJEcw6t5djaNJ8qQiM3UjH+2Pl99aH0+Aquf1ZQ+nFN8kN1EZca6qR4E"
    "SxwPo6HPsB7CeggPYFlyHcwLbpvBPhVk4GdBt3X0zxsrgH/eqMReqRT0GdRCYhkKANEhi1"
    "B3mCxHuuBVQDrB/wWkkxjeGaBHahG/mPXGRaN5et5ogole50xysQT7TrdfAJYTEcAMJaj2"
    "yVMFrHmfV0XvjmG6BLB++2tfjewJce/mg/TopvVVx68XJZqPve771DwX1Fcfe5cFzG1OFD"
    "YWLkkb16CR1CPlyM97FrB3EteT9GEzeWSrSRz25/SYGyXzLjuZzk37tt+6+TR3PNetfltp"
    "zLmjSaVH54WUMxsE/dXpf0DqFX3rddsaXV/IEdczZnb9b4ZaEw6lbzH/0cJODqJUmsI4VV"
    "V6OMnVDiUYYHvyiLljLWh806+yXVR5pleUYIZH+sgUuNPjlMf0NF1Z5De9lMZU0hot+YFk"
    "hjprJPvY+OUcnxzW7hKZjWT4atZih0L6HuHWWugWvF5VSnct2Wy4lAbcd0JbWvp9DT5Y9D"
    "tAQmjWaqvQ8Vqtmo4r3Tze9yFmksqSfqcyivMu3yuE95oOQldilwTvNbGph92q+E18inwk"
    "djpJnPcQ3SXQXbevOjetj0d189jUQQtUg0qSD+fGQsTG/cg6uSHz2F5WSFmmsZXUUD9fIT"
    "PUi8QtSwxKtc/0ervp4rD4df7Uw8B55anPe76d+q6ceopR7tj16nekqwrlwH9qPxAmjZLe"
    "Kqc9XtZhabuVOiyjxRBRA6JHTqUkDFGGoKNCAmYGZDAT4A62CAtEpUB6NoSZgxziEohW5D"
    "ObaJcB9yeggzgZUu6BhsoToxBL33u+O3bHVFCigDAHpownE8ilDwRBowgICF97c+Li6CeB"
    "bBdTD6lgFlo+hifkD/UzkBAP8whNSKSXwGA0fscesTsRKMBCxh4UuhiwAqfHMYadwdKxq0"
    "aMkIDZNQgvN6zPRhYj8aEmbRH8VabkKYAQF4DNLIyS8Ej+QdPsYmhjwFK/TNdqhC/p6P/S"
    "C/9qmqenF2bt9Lx51ri4OGvWZjx3UbWM8F523ivOO5etXu6YdWCWtstfvnSuy08g71M4hz"
    "Ckzony3Ls7liXIapp2GleCfI7X+5znZzE0Go01mPC81wH2yJu/NMlnphUb5LzLW4Nc1iDj"
    "yPVxCaTV1yU5l4MI221fl3AC2xblCbg6X8x7HQTwhcbZbK7SOZvN6tZZ6d5658PuolbpnT"
    "HQey+QJV+mKgtF3mV7haK2J1VCdXIE0GISqsI6tWLB8e1+fbWCsRsfBVqEU3tsLH4PSBTH"
    "Sz4F4Mzk7bJ1v+hhdev4QLj6DLAOccm5HCBr2eAP83L1C/6n1kA4MT9AdOsr3bPWl9yz1h"
    "fvWXU1KvuJ4++3vW4FGcxcikyQ2hL9i1wq9rGbXAKuAmN5JSsWrQKPUwP88Eo2/Q8t/2hL"
)
