"""The order lifecycle: pure data and functions, no I/O and no knowledge of HTTP."""

CREATED, PAID, SHIPPED, DELIVERED, CANCELLED = "created", "paid", "shipped", "delivered", "cancelled"
STATUSES = (CREATED, PAID, SHIPPED, DELIVERED, CANCELLED)
INITIAL_STATUS = CREATED

TRANSITIONS: dict[str, set[str]] = {
    CREATED: {PAID, CANCELLED},
    PAID: {SHIPPED, CANCELLED},
    SHIPPED: {DELIVERED},
}


class InvalidTransition(Exception):
    def __init__(self, current: str, new: str) -> None:
        self.current, self.new = current, new
        self.allowed = sorted(TRANSITIONS.get(current, ()))
        super().__init__(
            f"Cannot change status from '{current}' to '{new}'; the order is '{current}' "
            f"(allowed next: {', '.join(self.allowed) or 'none'})."
        )


def check_transition(current: str, new: str) -> None:
    if new not in TRANSITIONS.get(current, set()):
        raise InvalidTransition(current, new)
