import pytest

from order.domain import STATUSES, TRANSITIONS, InvalidTransition, check_transition

ALLOWED = {("created", "paid"), ("created", "cancelled"), ("paid", "shipped"), ("paid", "cancelled"),
           ("shipped", "delivered")}


@pytest.mark.parametrize("current", STATUSES)
@pytest.mark.parametrize("new", STATUSES)
def test_only_the_lifecycle_transitions_are_allowed(current, new):
    if (current, new) in ALLOWED:
        check_transition(current, new)
    else:
        with pytest.raises(InvalidTransition) as error:
            check_transition(current, new)
        assert error.value.status == 409
        assert f"'{current}'" in error.value.detail


def test_terminal_statuses_have_no_way_out():
    assert "delivered" not in TRANSITIONS and "cancelled" not in TRANSITIONS
