import pytest

from order.domain import STATUSES, TRANSITIONS, InvalidTransition, check_transition
from order.service import TransitionRefused

ALLOWED = {
    ("created", "paid"),
    ("created", "cancelled"),
    ("paid", "shipped"),
    ("paid", "cancelled"),
    ("shipped", "delivered"),
}


@pytest.mark.parametrize("current", STATUSES)
@pytest.mark.parametrize("new", STATUSES)
def test_only_the_lifecycle_transitions_are_allowed(current, new):
    if (current, new) in ALLOWED:
        check_transition(current, new)
    else:
        with pytest.raises(InvalidTransition) as error:
            check_transition(current, new)
        assert error.value.current == current
        assert f"'{current}'" in str(error.value)


def test_terminal_statuses_have_no_way_out():
    assert "delivered" not in TRANSITIONS and "cancelled" not in TRANSITIONS


def test_the_service_states_a_refused_transition_as_a_409_naming_the_current_status():
    problem = TransitionRefused(InvalidTransition("shipped", "paid"))
    assert problem.status == 409
    assert "'shipped'" in problem.detail and "allowed next: delivered" in problem.detail
    assert problem.errors == [{"field": "status", "message": "current status is 'shipped'"}]
