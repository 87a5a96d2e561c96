"""Eligibility decisions (topic ``eligibility.decisions.v1``, key = household id).

A decision is published only when it changes. It carries the household snapshot and the
enrolment, so the payments service can calculate a run without calling another service.
"""

from datetime import date, datetime
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, Field

from krousar_common.benefits import ConditionEvent
from krousar_common.events.households import HouseholdSnapshot


class PayeeType(StrEnum):
    HEAD = "HEAD"
    PROXY = "PROXY"


class Enrolment(BaseModel):
    """Identity and payee verified by commune staff at the commune hall (DOMAIN.md §6)."""

    enrolment_id: UUID
    payee_type: PayeeType
    payee_name: str
    payee_member_id: UUID | None = None
    channel: str = Field("WING", description="Payment channel of the payee account")
    account: str | None = Field(None, description="Payee account or phone number at the PSP")
    verified_by: str
    verified_on: date


class EligibilityDecided(BaseModel):
    household_id: UUID
    programme_code: str
    programme_version: int
    eligible: bool
    reasons: list[str] = Field(description="Why not: empty when eligible (e.g. NOT_POOR, CARD_EXPIRED)")
    effective_on: date = Field(description="The day the decision was evaluated for")
    decided_at: datetime
    household: HouseholdSnapshot
    enrolment: Enrolment | None = None
    conditions: list[ConditionEvent] = Field(
        default_factory=list, description="Verified PWYC conditions of the household (PWYC only)"
    )
