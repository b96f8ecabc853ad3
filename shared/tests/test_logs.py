"""Log lines are JSON, written in batches: late by at most a flush interval, at once from WARNING up."""

import io
import logging

import orjson

from shared.logs import BatchingStreamHandler, JsonFormatter
from shared.testing.plugin import eventually


def batching_logger(name: str) -> tuple[logging.Logger, BatchingStreamHandler, io.StringIO]:
    stream = io.StringIO()
    handler = BatchingStreamHandler(stream)
    handler.setFormatter(JsonFormatter("test"))
    logger = logging.getLogger(name)
    logger.handlers[:], logger.propagate = [handler], False
    logger.setLevel(logging.INFO)
    return logger, handler, stream


def lines(stream: io.StringIO) -> list[dict]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


async def test_info_lines_arrive_by_themselves_in_order():
    logger, handler, stream = batching_logger("test.batching.info")
    try:
        for n in range(5):
            logger.info("line %d", n, extra={"n": n})

        async def all_written():
            assert [line["n"] for line in lines(stream)] == list(range(5))

        await eventually(all_written)  # the flusher thread writes them: nothing else logs meanwhile
    finally:
        handler.close()


def test_a_warning_is_written_at_once_with_what_came_before_it():
    logger, handler, stream = batching_logger("test.batching.warning")
    try:
        logger.info("before")
        logger.warning("now")
        assert [line["message"] for line in lines(stream)] == ["before", "now"]
        assert lines(stream)[1]["level"] == "WARNING"
    finally:
        handler.close()


def test_closing_writes_what_is_held():
    logger, handler, stream = batching_logger("test.batching.close")
    logger.info("last words")
    handler.close()  # logging.shutdown does this at exit
    assert [line["message"] for line in lines(stream)] == ["last words"]
