"""Request and response bodies of the payments API."""

from datetime import date, datetime
from typing import Any
from uuid import UUID

from krousar_common.events.payments import RunState
from pydantic import BaseModel, ConfigDict, Field, model_validator


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    programme_code: str = Field(pattern=r"^[A-Z][A-Z0-9_]{1,39}$", examples=["COVID19_CT"])
    period: str | None = Field(
        None, description="YYYY-MM for a monthly programme", examples=["2020-07"], max_length=10
    )
    payment_date: date | None = Field(None, description="For a programme paid on dates (top-ups)")

    @model_validator(mode="after")
    def _one_of_period_or_date(self) -> "RunCreate":
        if (self.period is None) == (self.payment_date is None):
            raise ValueError("give either period (YYYY-MM) or payment_date (YYYY-MM-DD)")
        return self

    @property
    def key(self) -> str:
        return self.period if self.period is not None else self.payment_date.isoformat()  # type: ignore[union-attr]


class Cancellation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=3, max_length=500)


class Progress(BaseModel):
    phase: str = Field(description="CALCULATING or INSTRUCTING")
    done: int
    total: int


class StatusCount(BaseModel):
    lines: int
    households: int
    amount_riel: int


class Totals(BaseModel):
    by_group: list[dict[str, Any]] = Field(
        description="Households and riel by province, location category and poverty level"
    )
    by_province: list[dict[str, Any]]
    by_location_category: list[dict[str, Any]]
    by_poverty_level: list[dict[str, Any]]


class RunRead(BaseModel):
    run_id: UUID
    programme_code: str
    programme_version: int
    period: str
    rules_day: date = Field(description="The day eligibility and rates are evaluated on")
    available_from: date
    claim_until: date
    state: RunState
    households: int
    lines: int
    amount_riel: int
    budget_ceiling_riel: int | None
    over_budget: bool
    households_left_out: int
    left_out_reasons: dict[str, int]
    totals: Totals
    statuses: dict[str, StatusCount] = Field(description="Payment lines by status")
    progress: Progress | None = Field(description="Live progress while calculating or instructing")
    created_by: str
    created_at: datetime
    calculated_at: datetime | None
    approved_by: str | None
    approved_at: datetime | None
    instructed_at: datetime | None
    reconciled_at: datetime | None
    cancelled_by: str | None
    cancelled_at: datetime | None
    cancel_reason: str | None


class RunPage(BaseModel):
    items: list[RunRead]
    next_cursor: datetime | None


class LineRead(BaseModel):
    payment_id: UUID
    run_id: UUID
    programme_code: str
    period: str
    household_id: UUID
    component: str
    attempt: int
    amount_riel: int
    terms: list[dict[str, Any]] = Field(description="label, quantity, unit_rate, amount of each term")
    explanation: str = Field(examples=["120,000 + 6 × 52,000 + 4 × 40,000 = 592,000"])
    province_code: str
    commune_code: str
    village_code: str
    location_category: str
    poverty_level: str
    payee_name: str
    channel: str
    account: str | None
    status: str = Field(description="CALCULATED, INSTRUCTED, PAID, FAILED, UNCLAIMED or CANCELLED")
    status_reason: str | None
    instruction_id: UUID | None = Field(description="Event id of the PaymentInstructed")
    instructed_at: datetime | None
    status_at: datetime | None


class LinePage(BaseModel):
    items: list[LineRead]
    next_cursor: UUID | None


class LeftOutRead(BaseModel):
    household_id: UUID
    reason: str
    detail: str | None


class LeftOutPage(BaseModel):
    items: list[LeftOutRead]
    next_cursor: UUID | None


class HouseholdPayments(BaseModel):
    household_id: UUID
    payments: list[LineRead]
    left_out: list[dict[str, Any]] = Field(description="Runs that left the household out, and why")
