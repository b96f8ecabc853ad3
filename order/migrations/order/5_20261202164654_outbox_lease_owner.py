from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        ALTER TABLE "outbox" ADD "leased_by" INT;"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        ALTER TABLE "outbox" DROP COLUMN "leased_by";"""


MODELS_STATE = (
    "eJztWm1z4jYQ/isaf2k6QzPgkITeN5LQO9oL3Fy49uaajkfYAjTYsmPJSTwp/70r2cbG2A"
    "RnOA4oXxh7XyT52WX1rOwXzfUt4p92LeJ4riDMDP8gofYOvWgMOwQuig1qSMOeN1fLe4GH"
    "tnKgqakxJSFXxkMufGwK0I+wzQmILMJNn3qCugykLLBtKXRNMKRsnIoCRh8CYgh3TMQEpn"
    "qH/v4HxJRZ5Jnw5NabGiNKbGth6dNopUphiNBTwusJ9n9TpnK+oWG6duCwjLkXionL5vaw"
    "HikdE0Z8LIiVeQS5wvipE1G0WhAIPyDzZVqpwCIjHNgi88hDI5VphtHrD4y7zsAwtAogmS"
    "6TAFMmuELAwc+GTdhYTOBWPz+fRROlSERmcsY/25+vP7Q/n4DVz3JKF+IUBbIXq/RIN1OD"
    "YIGjYRT0KdYjWA/xPViWqIJ5zm0z2CeCFPw06baO/kVzDfAvmqXYS5WEPoWaCywCDiBaZB"
    "nqLhPFSOe8ckjH+L+CdJzDOwP0WC7iF73RvGy2zi6aLTBR65xLLldg3+0NcsD6hHswQwGq"
    "A/JcAmvW503Zu2OYrgBs0Pk6kCM7nD/Y2SQ9uW1/VfnrhLHmY7/3PjHPJPX1x/5VDnPTJx"
    "IbAxeUjRvQCOqQYuQXPXPYW7HraXKxmTqy1SIOz2f1mR3G866KTPe2czdo335aCM9Ne9CR"
    "Gn0hNIn05CJXcuaDoL+6gw9I3qJv/V5HoetyMfbVjKnd4Jsm14QD4RrMfTKwlYEokSYwzu"
    "QuPZpm9g4pGGJz+oR9y1jSuLpbZruscnQnL8EMj1XIJLizWsJj+oquLPObfkJjSmmNkvxA"
    "MkOtCsU+Mn69xsfB2l0is5EKX85azIAL1yG+UQndnNebttJdKzYb3ko937UCUxjqvgIfzP"
    "sdICHU6/V16Hi9Xk7HpW4R74cAM0FFQb9TmsVZl++VwntNB6ErMQuS94aY1MF2Wf7GPnk+"
    "Ejmdxs57iO4K6G46193b9seThl7TVdIC1aCCZNO5uZSxUT9SpTakHturCgnL1LZSGhoXa1"
    "SGRp64pYVBqvaZXm+3XBwWv85GPfCsN0Z90fMY9V2JeoJRJuxq9TvSVQVi6D53HgkTWkFv"
    "ldHWVnVYym6tDktrM0TkgOjJp0IQhihD0FEhDjMDMphxcAdbhDmigiM1G8LMQhaxCWQrcp"
    "lJlMvQd6eggzwZUd8BDRWnWi6Xvvd89+yeyaREHmEWTBlNxpFNHwmCRhEQ4K7y9omNw584"
    "Mm1MHSSTmSv5BK6QO1LXQEIc7IdoSkK1BAaj+ffsCdtTjjzMReRBoYsBK3B6mmB4Mlg6tu"
    "WIIeIwuwLh9Yb1RUtzJApq3BbBrzQlzx6kOAds5mkUp0f8B02qi6aMAUt1M6vUCF/R8f+l"
    "F/5V18/OLvX62UXrvHl5ed6qz3nusmoV4b3qvpecd6Favd4xq8QsbJe/fOneFEcg65OLQx"
    "BQ61R67t07lhXIKpp2Fu0E2RqvnnORn0XQKDQqMOFFrwPskTf/0iRbmdZskLMuxwa5qEHG"
    "oe3iAkjLX5dkXA4ibbf9usQn8Ni8uACX14tFr4MAPtc46611Ome9Vd46S92xdz7sLmqd3h"
    "kDvXc8UXAyVbpRZF22t1HU92SXkJ0cAbSYgF2hyl6x5Hh8v159w7AJ5lCJAiaoXbWM5X03"
    "UMj2KBo7VLcKTn+WC1ccrWGVd0ALPsdPgqLitRtnam3iU3OiLR+nxYraipM0nJocv1XYp9"
    "SrrTh5eSS+PEWrwvszLgdI+jf4XWuG/sF/qgLCsfkBottY6zOFxorPFBrLnykoMlf0hfDv"
    "d/1eSS+VuuT5BzUF+hfZlO/jYcwKcCUYq4lgnvPl6IQc4OpH72Sz/wDRdHAY"
)
