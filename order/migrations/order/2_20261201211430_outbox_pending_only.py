from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True

# Sent events leave the outbox: it keeps only what waits for the broker. Rows already sent go now.


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        DELETE FROM "outbox" WHERE "sent_at" IS NOT NULL;
        DROP INDEX IF EXISTS "idx_outbox_order_i_f99510";
        DROP INDEX IF EXISTS "idx_outbox_sent_at_2956fd";
        ALTER TABLE "outbox" DROP COLUMN "sent_at";
        CREATE INDEX IF NOT EXISTS "idx_outbox_order_i_1f2f7e" ON "outbox" ("order_id", "id");"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP INDEX IF EXISTS "idx_outbox_order_i_1f2f7e";
        ALTER TABLE "outbox" ADD "sent_at" TIMESTAMPTZ;
        CREATE INDEX IF NOT EXISTS "idx_outbox_sent_at_2956fd" ON "outbox" ("sent_at", "id");
        CREATE INDEX IF NOT EXISTS "idx_outbox_order_i_f99510" ON "outbox" ("order_id");"""


MODELS_STATE = (
    "eJztWl1z4jYU/SsavzSdSTPgEKD7RhK6S5vAzoZtd7bpeIQtQIMtO5a8iSflv/dKtrExtg"
    "MZlgWalwy+H5J8dLk6J+JZc32L+Gc9izieKwgzwz9IqL1DzxrDDoEPxQGnSMOet3DLZ4FH"
    "tkqgaagxIyFXwSMufGwK8I+xzQmYLMJNn3qCugysLLBtaXRNCKRskpoCRh8CYgh3QsQUpn"
    "qH/v4HzJRZ5Inw5NGbGWNKbGtp6bNopcphiNBTxqsp9n9ToXK+kWG6duCwTLgXiqnLFvGw"
    "HmmdEEZ8LIiVeQW5wvitE1O0WjAIPyCLZVqpwSJjHNgi88ojI7VphtEfDI277tAwtA1AMl"
    "0mAaZMcIWAg58Mm7CJmMKjfnExjyZKkYjC5Ix/dj5dfeh8OoGon+WULuxTtJH92KVHvrka"
    "BAscDaOgT7Eew3qI78GyxCaY59K2g31iSMFPi27n6Dcba4DfbJRiL10S+hRqLrAIOIBokV"
    "Woe0wUI53LyiEd4/8C0nEN7w3QE7mIX/R6o9VonzcbbQhR61xYWhXY9/rDHLA+4R7MUIDq"
    "kDyVwJrNeVX17hmmFYANu1+GcmSH8wc7W6Qnt50vqn6dMPbcDPrvk/BMUV/dDC5zmJs+kd"
    "gYuKBtXINHUIcUI7+cmcPeilPPkg/b6SM7beLwftaA2WE8b9XO9G67d8PO7cel7bnuDLvS"
    "oy9tTWI9aeZazmIQ9Fdv+AHJR/R10O8qdF0uJr6aMY0bftXkmnAgXIO5jwa2MhAl1gTGuT"
    "ylx7PM2SENI2zOHrFvGSseV3fLYlddju7kLZjhidoyCe78NOExA0VXVvnNIKExpbRGWX4g"
    "maHWBs0+Cn65x8ebtb9EZisdvpy1mAEXrkN8YyN0c1mvOkr3rdls+Sj1fNcKTGGo5w34YD"
    "7vCAmhXqutQ8drtXI6Ln3LeD8EmAkqCvROaRVnU75XCR80HQRVYhYU7zUxqYPtsvqNc/J8"
    "JEo6i5MPEN0K6K67V73bzs1JXT/VVdEC1aCCZMu5sVKxkR7ZpDekGbvrCgnL1HbSGurNNT"
    "pDPU/c0sYgXYdMr3fbLo6LX2d3PfCsV+76cubbru/LricYZbZdrX5PVFUgRu5T9xthQivQ"
    "VhnvaZXCUnFrKSytwxCRA6JHnwpBGKIMgaJCHGYGZDDjkA6xCHNEBUdqNoSZhSxiE6hW5D"
    "KTqJSR787AB3Uypr4DHirOtFwtfe/57tk9k0WJPMIsmDKajCObfiMIhCIgwF2V7RMbhz9x"
    "ZNqYOkgWM1f2KXxC7lh9BhLiYD9EMxKqJTAYzb9nj9ieceRhLqIMCioGoiDpcYrhzWDp2J"
    "YjhojD7AqElwXrs5bWSLSpsSyCvzKUPHlQ4hywWZRRXB7xFzTpLpoKBizVw3wjIXxJJ/8X"
    "Lfyrrp+ft/TaebN90Wi1Ltq1Bc9ddVUR3svee8l5l7rVy4pZFWahXP78uXddvAPZnNw+BA"
    "G1zmTmwd2xVCCraNp5dBJke7x6z2V+FkGj0NiACS9nHaFG3v6lSbYzrSmQsylvArlIIOPQ"
    "dnEBpOXXJZmUoyjbXV+X+ARemxc34PJ+sZx1FMDnhLPeXkc56+1y6Sx9b9r5uFXUOtoZA7"
    "13PFHwn6nSgyKbsruDorbHp8R+yNIO8ak51VYVaew4rRCjOA15u+47LIJSLl5ABkshusnR"
    "mUk5wnNziz8Ny3RQ+E5tgHAcfoTo1te66atX3PTVV2/6YEZBin5k9/vdoF9CR9KUPBehpk"
    "D/IpvyQ9QzFeBKMKrJd55n55iEHODyR59k8/8AryzuHw=="
)
