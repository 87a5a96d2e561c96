"""The simulated PSP's decisions: pure functions of the payment id and the configured shares."""

import hashlib
from dataclasses import dataclass
from uuid import UUID

from krousar_common.events.payments import PaymentStatus

FAILURE_REASONS = ("ACCOUNT_NOT_FOUND", "ACCOUNT_BLOCKED", "NAME_MISMATCH", "LIMIT_EXCEEDED")


@dataclass(frozen=True)
class Shares:
    paid: float
    failed: float
    duplicate: float


@dataclass(frozen=True)
class Outcome:
    status: PaymentStatus
    reason: str | None
    report_twice: bool


def _draws(seed: str, payment_id: UUID) -> tuple[float, float, int]:
    """Two uniform numbers in [0, 1) and a small integer, all fixed by (seed, payment id)."""
    digest = hashlib.sha256(f"{seed}:{payment_id}".encode()).digest()
    scale = float(1 << 64)
    return (
        int.from_bytes(digest[:8]) / scale,
        int.from_bytes(digest[8:16]) / scale,
        digest[16],
    )


def outcome_of(payment_id: UUID, shares: Shares, seed: str) -> Outcome:
    status_draw, duplicate_draw, reason_draw = _draws(seed, payment_id)
    if status_draw < shares.paid:
        status, reason = PaymentStatus.PAID, None
    elif status_draw < shares.paid + shares.failed:
        status, reason = PaymentStatus.FAILED, FAILURE_REASONS[reason_draw % len(FAILURE_REASONS)]
    else:
        status, reason = PaymentStatus.UNCLAIMED, "CLAIM_WINDOW_CLOSED"
    return Outcome(status, reason, duplicate_draw < shares.duplicate)
