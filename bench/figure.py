"""A figure of the report: where a phase's result holds it, and the target it is judged against."""

from collections.abc import Callable
from dataclasses import dataclass

Check = Callable[[float | None, float | None], bool | None]


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    digits: int
    value: Callable[[dict], float | None]  # from one system's results
    # The target: its text, and a check of (ours, baseline) -> pass, or None when it cannot be judged.
    target: str = ""
    check: Check | None = None


def dig(*path: str) -> Callable[[dict], float | None]:
    """A reader of result[path[0]][path[1]]...; None where a part is missing."""

    def read(result: dict) -> float | None:
        value = result
        for key in path:
            value = (value or {}).get(key)
        return value

    return read


def over(numerator: Callable[[dict], float | None], denominator: Callable[[dict], float | None]) -> Callable:
    """A reader of the ratio of two figures of the same system; None where either is missing or zero."""

    def read(result: dict) -> float | None:
        top, bottom = numerator(result), denominator(result)
        return None if top is None or not bottom else top / bottom

    return read


def ratio(ours: float | None, baseline: float | None) -> float | None:
    if ours is None or baseline is None or baseline == 0:
        return None
    return ours / baseline


def at_most_times(limit: float) -> Check:
    def check(ours, baseline):
        value = ratio(ours, baseline)
        return None if value is None else value <= limit

    return check


def at_least_times(limit: float) -> Check:
    def check(ours, baseline):
        value = ratio(ours, baseline)
        return None if value is None else value >= limit

    return check


def at_least(limit: float) -> Check:
    """A target on ours alone (the baseline has no such figure, or it does not matter)."""
    return lambda ours, _: None if ours is None else ours >= limit


def at_most(limit: float) -> Check:
    return lambda ours, _: None if ours is None else ours <= limit
