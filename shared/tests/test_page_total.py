"""A page's total: counted only when the page does not show where the list ends."""

import pytest

from shared.pagination import PageParams, page_total


async def total_and_counts(rows: int, **params) -> tuple[int | None, int]:
    counted = []

    async def count() -> int:
        counted.append(1)
        return 99

    return await page_total(list(range(rows)), PageParams(**params), count), len(counted)


@pytest.mark.parametrize(
    ("rows", "params", "expected"),
    [
        (3, {"limit": 5}, (3, 0)),  # the whole list in one page
        (0, {"limit": 5}, (0, 0)),  # an empty list
        (2, {"limit": 5, "offset": 10}, (12, 0)),  # the last page
        (6, {"limit": 5}, (99, 1)),  # another page follows: only a count knows the total
        (0, {"limit": 5, "offset": 10}, (99, 1)),  # past the end: the true total
        (3, {"limit": 5, "count": False}, (None, 0)),
    ],
)
async def test_a_page_that_holds_the_lists_end_needs_no_count(rows, params, expected):
    assert await total_and_counts(rows, **params) == expected
