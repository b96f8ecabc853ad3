"""Outbox.write decides what becomes of a commit's event: handed over, given back, or left to the claim."""

from types import SimpleNamespace

import pytest

from order.outbox import Outbox
from order.outbox.store import Lease
from order.settings import OrderSettings

EVENT = SimpleNamespace(event_id="e1", order_id=1)


def an_outbox(owner: int | None = 7, up: bool = True, blocked: bool = False) -> Outbox:
    outbox = Outbox(OrderSettings(), SimpleNamespace(is_up=up, is_blocked=blocked))
    outbox.session.lease = None if owner is None else Lease(30.0, owner)
    return outbox


def test_a_new_order_event_written_while_the_relay_can_publish_is_leased_and_handed_over_after_the_block():
    outbox = an_outbox()
    with outbox.write(EVENT) as lease:
        assert lease == Lease(30.0, 7)
        assert outbox.relay.handed.rows == []  # not before the commit
    assert outbox.relay.handed.rows == [EVENT]
    assert not outbox.relay.claims.wanted and outbox.relay.returns.rows == []


@pytest.mark.parametrize("state", [dict(owner=None), dict(up=False), dict(blocked=True)])
def test_without_the_liveness_lock_or_a_broker_to_publish_to_the_event_goes_to_the_claim_woken_after(state):
    outbox = an_outbox(**state)
    with outbox.write(EVENT) as lease:
        assert lease is None
        assert not outbox.relay.claims.wanted
    assert outbox.relay.claims.wanted and outbox.relay.handed.rows == []


def test_a_leased_write_that_fails_gives_its_event_back_since_the_commit_may_have_happened():
    outbox = an_outbox()
    with pytest.raises(ConnectionError), outbox.write(EVENT):
        raise ConnectionError("answer lost")
    assert outbox.relay.returns.rows == [EVENT]
    assert outbox.relay.handed.rows == [] and not outbox.relay.claims.wanted


def test_a_write_without_a_new_order_event_is_never_leased_and_wakes_the_claim_only_when_it_succeeds():
    outbox = an_outbox()
    with pytest.raises(LookupError), outbox.write() as lease:
        assert lease is None
        raise LookupError("no such order")
    assert not outbox.relay.claims.wanted and outbox.relay.returns.rows == []
    with outbox.write():
        pass
    assert outbox.relay.claims.wanted and outbox.relay.handed.rows == []
