from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP INDEX IF EXISTS "idx_orders_custome_384e97";
        CREATE INDEX IF NOT EXISTS "idx_orders_custome_33dd1a" ON "orders" ("customer_id", "created_at", "id");
        CREATE INDEX IF NOT EXISTS "idx_orders_status_37f857" ON "orders" ("status", "created_at", "id");
        CREATE INDEX IF NOT EXISTS "idx_orders_created_dd2f2e" ON "orders" ("created_at", "id");"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP INDEX IF EXISTS "idx_orders_created_dd2f2e";
        DROP INDEX IF EXISTS "idx_orders_status_37f857";
        DROP INDEX IF EXISTS "idx_orders_custome_33dd1a";
        CREATE INDEX IF NOT EXISTS "idx_orders_custome_384e97" ON "orders" ("customer_id");"""


MODELS_STATE = (
    "eJztWm1z4jYQ/isaf2k6k2bAIYTeN5LQO9oEbi5ce3NNxyNsARps2bHkJJ40/70r2cbG2A"
    "5kCAeUb3hftNKjZfWsrWfN9S3in3Qt4niuIMwM/yCh9gE9aww7BH4UGxwjDXveTC2fBR7a"
    "yoGmpsaUhFwZD7nwsSlAP8I2JyCyCDd96gnqMpCywLal0DXBkLJxKgoYvQ+IIdwxERMI9Q"
    "H9/Q+IKbPIE+HJozc1RpTY1tzUp9FMlcIQoaeElxPs/6ZMZbyhYbp24LCMuReKictm9jAf"
    "KR0TRnwsiJVZgpxhvOpEFM0WBMIPyGyaViqwyAgHtsgseWikMs0wev2BcdsZGIa2Akimyy"
    "TAlAmuEHDwk2ETNhYTeNTPzl6iQCkSkZmM+Gf7y+Wn9pcjsPpZhnRhn6KN7MUqPdK9qEGw"
    "wNEwCvoU6xHMh/geTEusgnnObT3YJ4IU/DTpNo5+s7EE+M1GKfZSJaFPoeYCi4ADiBZZhL"
    "rLRDHSOa8c0jH+ryAd5/DWAD2Wk/hFrzfOG63TZqMFJmqeM8l5Bfbd3iAHrE+4BxEKUB2Q"
    "pxJYsz5vyt4tw7QCsEHn20CO7HB+b2eT9Oim/U3lrxPGmut+72Ninknqy+v+RQ5z0ycSGw"
    "MXlI0r0AjqkGLk5z1z2Fux60nyYz11ZKNFHNZn9ZkdxnGrdqZ707kdtG8+z23PVXvQkRp9"
    "bmsS6VEzV3Jmg6C/uoNPSD6i7/1eR6HrcjH2VcTUbvBdk3PCgXAN5j4a2MpAlEgTGF/kKT"
    "2aZs4OKRhic/qIfctY0Li6W2a7qHJ0Jy/BDI/VlklwX44THtNXdGWR3/QTGlNKa5Tk/cnM"
    "s5YuJJfi1NKkMXnyYCc4hJqtNl5LHCT5D2jKGKaqHtS/Ljt2wIXrEN+g6q/1nqGio2ftUU"
    "p5X7SiJc/FyPj14zDO6+3lfGs5DMsJXi5flkQ35/Um1rF1/G7NtMPzXSswhaGeV+DOeb89"
    "JM96rbZM61KrlbcuUjeP932AmaCioDcsTeOsyyGHC3OYmgXJe0VM6mC7LH9jnzx3i5xOYu"
    "cdRLcCuqvOZfemfX1U1491lbRAy6gg2XRuLGRseoAuWxtSj81VheR01zZSGurNJSpDPU9y"
    "08IgVbvcimy2XOxXL5Ld9cCz3rjr856HXd+WXU8wymy7mv2WdKCBGLpPnQfChFbQh2a0x1"
    "XdqLJbqhvV2gwROSB69KkQhCHKEHSfiENkQAYzDu5gizBHVHCkoiHMLGQRm0C2IpeZRLkM"
    "fXcKOsiTEfUd0FBxouVy6b3j3bE7JpMSeYRZEDIKxpFNHwiCphoQ4K7y9omNw584Mm1MHS"
    "STmSv5BH4hd6R+AwlxsB+iKQnVFBiM5t+xR2xPOfIwF5EHhTYGrMDpcYJhZTB1bMsRQ8Qh"
    "ugJhxeZeLTvuizbZCV/Q8f+lGf5V109Pz/XaabN11jg/P2vVZjx3UVVFeC+6HyXnnatWr7"
    "fMKjEL++WvX7tXxTuQ9cntQxBQ60R67tz3qApkFU07jU6CbI1X65znZxE0Co0VmPC81x72"
    "yOv/wJStTEs2yFmXQ4Nc1CDj0HZxAaTln5YyLnuRtpv+tOQTWDYvLsDl9WLeay+AzzXOem"
    "uZzllvlbfOUnfonfe7i1qmd8ZA7x1PFLyZKj0osi6bOyhqO3JKyE6OAFpMwKmwylmx4Hi4"
    "i7D6gWETzKESBUxQe9UylvddQyHbod3YorpV8PZnsXDFuzVc5RvQnM/h+lRUvLbjnVqb+N"
    "ScaIuv02LFccWbNJya/JBLqofLCu9wWeGB+PIt2iq8P+Oyh6R/jXeAM/QP/lMrIByb7yG6"
    "9aWuKdQrrinUF68pKDJXdJv699t+r6SXSl3y/IOaAv2LbMp38WVMBbgSjGoimOd8OTohB7"
    "j40SfZy3+Z8ct6"
)
