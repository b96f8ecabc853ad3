"""shared/db.py: which database errors are the database's (wait and retry) and which the statement's."""

import asyncpg
import pytest
from tortoise.exceptions import DBConnectionError, OperationalError

from shared.db import is_transient_database_error
from shared.problems import describe, is_connection_failure, is_statement_timeout


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


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.ObjectNotInPrerequisiteStateError('database "customers" is not currently accepting connections'),
        asyncpg.ConnectionFailureError("the connection failed"),  # class 08
        asyncpg.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.CrashShutdownError("terminating connection because of crash of another server process"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.DatabaseDroppedError("database dropped"),
        ConnectionRefusedError(111, "Connection refused"),
        ConnectionResetError(104, "Connection reset by peer"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        DBConnectionError("the pool could not connect"),
        asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_every_way_a_database_refuses_or_drops_a_connection_is_an_outage(error):
    wrapped = OperationalError("through the ORM")
    wrapped.__cause__ = error
    assert is_connection_failure(error) and is_connection_failure(wrapped)
    assert is_transient_database_error(wrapped)


def test_a_statement_timeout_is_no_connection_failure_and_a_cause_is_named_with_its_sqlstate():
    timeout = asyncpg.QueryCanceledError("canceling statement due to statement timeout")
    assert not is_connection_failure(timeout)
    wrapped = OperationalError("through the ORM")
    wrapped.__cause__ = asyncpg.ObjectNotInPrerequisiteStateError("not currently accepting connections")
    assert describe(wrapped) == "ObjectNotInPrerequisiteStateError [55000]: not currently accepting connections"


def test_a_lock_wait_past_lock_timeout_is_answered_as_a_statement_past_its_deadline():
    assert is_statement_timeout(asyncpg.LockNotAvailableError("canceling statement due to lock timeout"))
