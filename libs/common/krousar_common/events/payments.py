"""Payment events: instructions to the PSP (``payments.instructions.v1``, key = household id),
statuses from the PSP (``payments.status.v1``, key = household id) and run state changes
(``payments.runs.v1``, key = run id)."""

from datetime import date, datetime
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, Field


class PaymentStatus(StrEnum):
    PAID = "PAID"
    FAILED = "FAILED"
    UNCLAIMED = "UNCLAIMED"


class RunState(StrEnum):
    DRAFT = "DRAFT"
    CALCULATED = "CALCULATED"
    APPROVED = "APPROVED"
    INSTRUCTED = "INSTRUCTED"
    RECONCILED = "RECONCILED"
    CANCELLED = "CANCELLED"


class PaymentInstructed(BaseModel):
    payment_id: UUID = Field(
        description="Unique per (programme, period, household, component): the PSP's dedup key"
    )
    run_id: UUID
    household_id: UUID
    programme_code: str
    period: str = Field(description="YYYY-MM for monthly programmes, YYYY-MM-DD payment date for top-ups")
    component: str
    amount_riel: int = Field(ge=0)
    payee_name: str
    channel: str
    account: str | None = None
    available_from: date
    claim_until: date


class PaymentStatusReported(BaseModel):
    payment_id: UUID
    run_id: UUID
    household_id: UUID
    status: PaymentStatus
    reason: str | None = None
    reported_at: datetime


class RunStateChanged(BaseModel):
    run_id: UUID
    programme_code: str
    period: str
    state: RunState
    households: int
    amount_riel: int
    changed_by: str
