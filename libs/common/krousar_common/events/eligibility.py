"""Eligibility decisions (topic ``eligibility.decisions.v1``, key = household id).

A decision is published only when it changes, in one event with the household's other decisions
changed at the same time. The event carries the household snapshot and the enrolment, so the
payments service can calculate a run without calling another service.
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


class ProgrammeDecision(BaseModel):
    """One programme's decision about the household of the event."""

    programme_code: str
    programme_version: int
    eligible: bool
    reasons: list[str] = Field(description="Why not: empty when eligible (e.g. NOT_POOR, CARD_EXPIRED)")


class EligibilityDecided(BaseModel):
    """Schema version 2: the decisions about one household that changed together, with what they
    were made on once (version 1 was one event per programme, each with the whole household: a
    national evaluation published 2.1 million events of 2.5 kB instead of 705,487)."""

    household_id: UUID
    effective_on: date = Field(description="The day the decisions were evaluated for")
    decided_at: datetime
    household: HouseholdSnapshot
    enrolment: Enrolment | None = None
    conditions: list[ConditionEvent] = Field(
        default_factory=list,
        description="Verified PWYC conditions of the household (when a PWYC programme is decided)",
    )
    decisions: list[ProgrammeDecision] = Field(min_length=1, description="One per programme, in code order")
