from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        CREATE INDEX IF NOT EXISTS "idx_customers_created_0a19ee" ON "customers" ("created_at", "id");"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP INDEX IF EXISTS "idx_customers_created_0a19ee";"""


MODELS_STATE = (
    "eJztmG1P2zAQgP9K5E9MAgSlLWiaJpXSCabRIijbxDRZbuy2URMnJA60Yvz33TlJ89I2bd"
    "HKAPGlTe4lvjzO+c5+IGYYKNcR/m4zviAfjQcimSPgYo522yDM87I6FCnWs3MOgTbsBcpn"
    "pgJFn9mBABEXgelbnrJcCVIZ2jYKXRMMLTlIRaG0bkNBlTsQaqiD+vUbxJbkYiwCvH0gfU"
    "vYXF8T0xdMCU6ZwnEtTtBYjD1fBAEMFST+8XvFg6iJp4Mm2hhC1TePaOiNqH58jgY8F1Ra"
    "ThPfM6m+aEN8jx41XTt0ZGrsTdTQlVNrS+oAB0IKHwMGmfJDBIMhxRATVhGD1CR6+YwPF3"
    "0W2ioDskdTGaG03enSq1aXUrIGehN4AQsINdBvP8AQdir71cPq0UG9egQmOsyp5PAxGjoF"
    "EzlqPO0uedR6phhNZyyFqv9nsDaHzJ/PNbEvkIWQi2QTjmVoE0HKNv1SnwOuw8bUFnKghk"
    "h0b68E5ffGZfO0cbkFVh9wSBdSK0q6dqyqRDrknfJlnGMWrIM44/JOeTXKwmGWvQ7jqcOT"
    "CMcLwAtZIfJ4a9VV8Naqi/GiLo/X9TnUFMAXRgvoimtw0W35avyvvua9F70aZwp8rnDmsZ"
    "6ARlmOmM8271kgy2PX3eTiNa4a8IK8I+1JnE4lXLtn562rbuP8AodzguDW1vwa3RZqKlo6"
    "KUi36oUEmD7E+HHWPTXw1rjptFsarxuoga9HTO26NwRjYqFyqXTvKSzbaeYn0oRabtZDjz"
    "9x1vOe77P+UmY9YZSZdh099rL9UabxQkGPmaN75nM6o3Er7iLbWZVTcYoSJtlAzxnCxTCn"
    "G4gL3zWhpxC8dSekInM3GQWb7fKthpdYU4Hmq+04iH60YfHAYDZO9cSAMWxLcAA2FEb0GR"
    "ojMYFbpgyHjUSgNfidhBCDIcYwgD3ZcaUpdknho9rE85fvhRbuWDQZOm/fcn19drKgM8n4"
    "FBI8DC2+i55PSezlPQr51A+liTNl6JHwp/qZbCjTSzJbtygHUapmk1C/evl2JqKnga3TDe"
    "a83mDTXV+lKawv7gnrMy1hmv7rV7Gi7/PUsWftyV9nGVvUvLyYMtYQvmUO55evWLekbLHU"
    "apPHY++HWM95iHUH20wMaY0lP+PyBtf7Sq220ilAreQUoDZzlAVptQbh2PwN0t1f6Qhrv+"
    "QIa3/2CAtGVGLe8crXq057wRlA6lIsoZapjD+GbQUbO2LZIO0SuAgjVygTplvnjZ9F3M1v"
    "neNiBcQHHAP6/1rSHv8C+r1RTA=="
)
