from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        CREATE INDEX IF NOT EXISTS "idx_processed_e_process_eb5e5b" ON "processed_events" ("processed_at");"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP INDEX IF EXISTS "idx_processed_e_process_eb5e5b";"""


MODELS_STATE = (
    "eJztmG1v2jAQgP9KlE+dtKJCgVbTNIlSpjKtULXpNnWaLBMbsEicNHHaoq7/fT4nIS+EAN"
    "1gtOqXltxLfH6cO5/9qJuBLxybepV29EP/oD3qHNtU/ijQvtd07LppHYgEHlgZB18ZDnzh"
    "YVNIxRBbPpUiQn3TY65gDpdSHlgWCB1TGjI+SkQBZ7cBRcIZUTFWQf38JcWME/pA/fjRna"
    "AhoxbJxMwIjK3kSExdJety8VkZwmgDZDpWYPPE2J2KscNn1owLkI4opx4WFF4vvADCh+ii"
    "qcYzCiNNTMIQUz6EDnFgidR0ByiR6Qj1+ga66hgI6WsAMh0OcGWovpr9CELYr1XrR/Xjw2"
    "b9WJqoMGeSo6dw6ARM6Kjw9Az9SemxwKGFYpxAVf/nsLbH2CvmGtvnyMqQ82RjjmVoY0HC"
    "NvmetgHXxg/IonwkxkD04KAE5bfWZfusdbknrd7BkI5MgDA1epGqFuqAd8IXE+JR318Hcc"
    "rljfJqlKmNmbUO45nDswhHBWBHKkQWb6O+Ct5GfTFe0GXxOh6RlV/iC8ICumINzrstr8b/"
    "6ms+2OlqnNqGPQozR7gA66nUCGbTYrZZzxxZErlW4h8vsWrICZI+t6ZROpVwNbrnnSujdX"
    "4Bw9m+f2spfi2jA5qakk5z0r1mLgFmL9G+d40zDR61m36vo/A6vhh5asTEzrjRISYcCAdx"
    "5x7Jsp1kfiyNqWVWPXDJM1c96/m26ruy6jGj1LKr6KGXHU5SjRcIBtic3GOPoDmNU3MW2c"
    "6r7Jqdl2COR2rNAC6EOWvzLzzHlD0FJZ07yoVeeBTI2Sw5ELixNaJgvtq5QFev1hjxNWzB"
    "Uk81OYbFKJHAxlQLP0NtQqfyEQvNxhPqKw18J4GMQaMPcgBruu9wk1b03Ee1iff/xYlFkU"
    "FF55br6+7pgs4k5ZNL8CBgpAKez0ns5T2K/nEYcBNWSlMjwZ/6J31DmV6S2apFOQxTNZ2E"
    "aurlx5mQngK2TjeY8XqFTXdzlaawubgnbM61hEn6r7+L5X23s49ttSd/mdvYouZlZ7axFv"
    "WYOS7eviLdkm0LJ1Zvl1hbS4cNX2LdyWMmhLRGyU+5vMJ6X2s0VroFaJTcAjTmrrJkWq1B"
    "ODJ/hXSrK11hVUuusKrzV1hyREGLrle+XPV7C+4AEpf8FspMof3WLOZv7Iplg7RL4AKMzE"
    "YZM907b/3I425/7Z/kd0B4wYlE/1+3tKc/PYA17Q=="
)
