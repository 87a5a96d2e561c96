"""The simulator's outcomes: fixed by the payment id, in the configured shares."""

import uuid
from collections import Counter

from krousar_common.events.payments import PaymentStatus
from psp_simulator.domain import FAILURE_REASONS, Shares, outcome_of

SHARES = Shares(paid=0.95, failed=0.03, duplicate=0.02)


def test_the_same_payment_always_gets_the_same_outcome() -> None:
    payment_id = uuid.uuid4()

    assert outcome_of(payment_id, SHARES, "seed") == outcome_of(payment_id, SHARES, "seed")


def test_outcomes_come_in_the_configured_shares() -> None:
    outcomes = [outcome_of(uuid.UUID(int=i), SHARES, "seed") for i in range(20_000)]
    statuses = Counter(o.status for o in outcomes)

    assert 0.94 < statuses[PaymentStatus.PAID] / 20_000 < 0.96
    assert 0.025 < statuses[PaymentStatus.FAILED] / 20_000 < 0.035
    assert 0.015 < sum(o.report_twice for o in outcomes) / 20_000 < 0.025
    assert {o.reason for o in outcomes if o.status is PaymentStatus.FAILED} <= set(FAILURE_REASONS)
    assert {o.reason for o in outcomes if o.status is PaymentStatus.UNCLAIMED} == {"CLAIM_WINDOW_CLOSED"}


def test_all_paid_and_none_twice_when_so_configured() -> None:
    outcomes = [outcome_of(uuid.uuid4(), Shares(1.0, 0.0, 0.0), "s") for _ in range(100)]

    assert {(o.status, o.report_twice) for o in outcomes} == {(PaymentStatus.PAID, False)}
