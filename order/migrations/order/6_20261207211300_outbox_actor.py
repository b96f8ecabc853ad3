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
    "eJztWm1z4jYQ/isaf2k6QzPBgYTeN5LQO9oEbi5ce3NNxyNsARps2bHkJJ6U/96VbGNjbI"
    "IzhAOaL4y9L5L87LJ6Vvaz5voW8Y+7FnE8VxBmhn+QUPuAnjWGHQIXxQY1pGHPm6vlvcBD"
    "WznQ1NSYkpAr4yEXPjYF6EfY5gREFuGmTz1BXQZSFti2FLomGFI2TkUBo/cBMYQ7JmICU3"
    "1Af/8DYsos8kR4cutNjREltrWw9Gm0UqUwROgp4eUE+78pUznf0DBdO3BYxtwLxcRlc3tY"
    "j5SOCSM+FsTKPIJcYfzUiShaLQiEH5D5Mq1UYJERDmyReeShkco0w+j1B8ZtZ2AYWgWQTJ"
    "dJgCkTXCHg4CfDJmwsJnDbrNdn0UQpEpGZnPHP9pfLT+0vR2D1s5zShThFgezFKj3SzdQg"
    "WOBoGAV9ivUI1kN8D5YlqmCec9sM9okgBT9Nuq2jf9ZYA/yzRin2UiWhT6HmAouAA4gWWY"
    "a6y0Qx0jmvHNIx/i8gHefwzgA9lov4Ra83zhut07NGC0zUOueS8xXYd3uDHLA+4R7MUIDq"
    "gDyVwJr1eVX27himKwAbdL4N5MgO5/d2NkmPbtrfVP46Yay57vc+JuaZpL687l/kMDd9Ir"
    "ExcEHZuAKNoA4pRn7RM4e9FbseJxebqSNbLeLwfFaf2WE876rIdG86t4P2zeeF8Fy1Bx2p"
    "0RdCk0iPznIlZz4I+qs7+ITkLfre73UUui4XY1/NmNoNvmtyTTgQrsHcRwNbGYgSaQLjTO"
    "7So2lm75CCITanj9i3jCWNq7tltssqR3fyEszwWIVMgjurJTymr+jKMr/pJzSmlNYoyQ8k"
    "M9SqUOwj45drfBys3SUyG6nw5azFDLhwHeIbldDNeb1qK921YrPhrdTzXSswhaHuK/DBvN"
    "8BEkL95GQNRghWpZRQ6Rbxvg8wE1QU9DulWZx1easU3ms6CF2JWZC8V8SkDrbL8jf2yfOR"
    "yOk4dt5DdFdAd9W57N60r4/qek1XSQtUgwqSTefGUsZG/UiV2pB6bK8qJCxT20ppqJ+tUR"
    "nqeeKWFgap2md6vd1ycVj8Ohv1wLNeGfVFz/eo70rUE4wyYVer35GuKhBD96nzQJjQCnqr"
    "jLa2qsNSdmt1WFqbISIHRI8+FYIwRBmCjgpxmBmQwYyDO9gizBEVHKnZEGYWsohNIFuRy0"
    "yiXIa+OwUd5MmI+g5oqDjWcrn01vPdsTsmkxJ5hFkwZTQZRzZ9IAgaRUCAu8rbJzYOf+LI"
    "tDF1kExmruQTuELuSF0DCXGwH6IpCdUSGIzm37FHbE858jAXkQeFLgaswOlxguHJYOnYli"
    "OGiMPsCoSXG9ZnLc2RKKhxWwS/0pQ8eZDiHLCZp1GcHvEfNKkumjIGLNXNrFIjfEHH/5de"
    "+FddPz09109Oz1rNxvl5s3Uy57nLqlWE96L7UXLehWr1csesErOwXf76tXtVHIGsTy4OQU"
    "CtY+m5d+9YViCraNpptBNka7x6zkV+FkGj0KjAhBe9DrBH3vxLk2xlWrNBzrq8N8hFDTIO"
    "bRcXQFr+uiTjchBpu+3XJT6Bx+bFBbi8Xix6HQTwucZZb63TOeut8tZZ6haxBkbn+lVgnj"
    "scwovA3KFls7nOoWWzWX5oKXXvhxOH3aaucziBoX9yPFFw9Fe6E2ddtrcTn+zJNixbZQJo"
    "MQHbbpXNeMnxEOrWtndkm2AOlShggtpVy1jedwOFbI+isUN1q+B4bblwxdEaVnnJtuDz/s"
    "1VVLx249CyTXxqTrTl88pYUVtxVIlTk/ePQfYp9WorjrYeiC+PKasw/ozLAXZVb0L65X+q"
    "AsKx+QGiW1/rO5D6iu9A6svfgSgyV/QJ9u+3/V5JL5W65PkHNQX6F9mU7+Np1wpwJRiriW"
    "Ce8+XohBzg4kfvZLP/AHmV354="
)
