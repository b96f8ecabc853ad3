"""The order lifecycle: pure data and functions, no I/O."""

from shared.problems import Conflict

CREATED, PAID, SHIPPED, DELIVERED, CANCELLED = "created", "paid", "shipped", "delivered", "cancelled"
STATUSES = (CREATED, PAID, SHIPPED, DELIVERED, CANCELLED)

TRANSITIONS: dict[str, set[str]] = {
    CREATED: {PAID, CANCELLED},
    PAID: {SHIPPED, CANCELLED},
    SHIPPED: {DELIVERED},
}


class InvalidTransition(Conflict):
    def __init__(self, current: str, new: str) -> None:
        allowed = ", ".join(sorted(TRANSITIONS.get(current, ()))) or "none"
        super().__init__(
            f"Cannot change status from '{current}' to '{new}'; the order is '{current}' "
            f"(allowed next: {allowed}).",
            [{"field": "status", "message": f"current status is '{current}'"}],
        )
        self.current = current


def check_transition(current: str, new: str) -> None:
    if new not in TRANSITIONS.get(current, set()):
        raise InvalidTransition(current, new)
