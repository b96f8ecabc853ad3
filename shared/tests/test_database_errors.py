"""shared/db.py: which database errors are the database's (wait and retry) and which the statement's."""

import asyncpg
import pytest
from tortoise.exceptions import OperationalError

from shared.db import is_transient_database_error


@pytest.mark.parametrize(
    "error",
    [asyncpg.AdminShutdownError, asyncpg.CannotConnectNowError, asyncpg.DeadlockDetectedError, asyncpg.DiskFullError],
)
def test_a_database_that_is_away_or_busy_is_transient(error):
    assert is_transient_database_error(error("away"))


def test_a_statement_past_its_deadline_is_the_statements_failure_not_the_databases():
    wrapped = OperationalError("canceled")
    wrapped.__cause__ = asyncpg.QueryCanceledError("canceling statement due to statement timeout")
    assert not is_transient_database_error(wrapped)
    assert not is_transient_database_error(asyncpg.UniqueViolationError("duplicate"))
