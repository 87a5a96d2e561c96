"""The simulated PSP's decisions: pure functions of the payment id and the configured shares."""

import hashlib
from dataclasses import dataclass
from typing import NamedTuple
from uuid import UUID

from krousar_common.events.payments import PaymentStatus

FAILURE_REASONS = ("ACCOUNT_NOT_FOUND", "ACCOUNT_BLOCKED", "NAME_MISMATCH", "LIMIT_EXCEEDED")


@dataclass(frozen=True)
class Shares:
    paid: float
    failed: float
    duplicate: float


class Outcome(NamedTuple):
    status: PaymentStatus
    reason: str | None
    report_twice: bool


_SCALE = float(1 << 64)


def outcome_of(payment_id: UUID, shares: Shares, seed: str) -> Outcome:
    """Fixed by (seed, payment id): two uniform numbers in [0, 1) (status, reported twice) and a
    byte (the failure reason) from its SHA-256."""
    digest = hashlib.sha256(f"{seed}:{payment_id}".encode()).digest()
    status_draw = int.from_bytes(digest[:8]) / _SCALE
    twice = int.from_bytes(digest[8:16]) / _SCALE < shares.duplicate
    if status_draw < shares.paid:
        return Outcome(PaymentStatus.PAID, None, twice)
    if status_draw < shares.paid + shares.failed:
        return Outcome(PaymentStatus.FAILED, FAILURE_REASONS[digest[16] % len(FAILURE_REASONS)], twice)
    return Outcome(PaymentStatus.UNCLAIMED, "CLAIM_WINDOW_CLOSED", twice)
