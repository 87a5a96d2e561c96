"""Request and response bodies of the eligibility API."""

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from krousar_common.events.eligibility import PayeeType
from krousar_common.programmes import ConditionKind
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Province = Annotated[str, Field(pattern=r"^[0-9]{2}$")]
Commune = Annotated[str, Field(pattern=r"^[0-9]{6}$")]


class IdentityDocument(StrEnum):
    """What commune staff checked the payee's identity against."""

    NATIONAL_ID = "NATIONAL_ID"
    EQUITY_CARD = "EQUITY_CARD"
    FAMILY_BOOK = "FAMILY_BOOK"
    OTHER = "OTHER"


class Channel(StrEnum):
    WING = "WING"
    BANK = "BANK"
    CASH = "CASH"


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _not_in_future(value: date | None) -> date | None:
    if value is not None and value > date.today():
        raise ValueError("cannot be in the future")
    return value


class EnrolmentCreate(_Command):
    household_id: UUID
    identity_document: IdentityDocument
    payee_type: PayeeType = PayeeType.HEAD
    payee_member_id: UUID | None = Field(
        None, description="PROXY: the member named as payee, when the proxy is a member."
    )
    payee_name: str | None = Field(
        None, min_length=1, max_length=200, description="PROXY: the payee's name (HEAD: the head's)."
    )
    channel: Channel = Channel.WING
    account: str | None = Field(None, min_length=3, max_length=64, description="PSP account or phone number")
    verified_on: date | None = Field(None, description="Default: today. A paper form may be keyed later.")

    _past = field_validator("verified_on")(_not_in_future)

    @model_validator(mode="after")
    def _payee_and_account(self) -> "EnrolmentCreate":
        if self.payee_type is PayeeType.PROXY and not (self.payee_name or self.payee_member_id):
            raise ValueError("a PROXY payee needs payee_name or payee_member_id")
        if self.channel is not Channel.CASH and not self.account:
            raise ValueError(f"channel {self.channel} needs an account")
        return self


class EnrolmentRead(BaseModel):
    enrolment_id: UUID
    household_id: UUID
    status: str
    payee_type: PayeeType
    payee_name: str
    payee_member_id: UUID | None
    channel: str
    account: str | None
    identity_document: str
    verified_by: str
    verified_on: date
    created_at: datetime
    ended_at: datetime | None
    ended_by: str | None
    end_reason: str | None
    replaced_by: UUID | None


class EnrolmentWithdrawal(_Command):
    reason: str = Field(min_length=3, max_length=500)


class ConditionCreate(_Command):
    kind: ConditionKind
    occurred_on: date
    facility_code: str = Field(min_length=2, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")
    subject_id: UUID = Field(
        description="Pregnancy id (antenatal visit, delivery) or the child's member id (postnatal check)."
    )
    babies: int = Field(1, ge=1, le=8, description="Babies born (facility delivery only).")

    _past = field_validator("occurred_on")(_not_in_future)


class ConditionRead(BaseModel):
    event_id: UUID
    household_id: UUID
    kind: ConditionKind
    occurred_on: date
    subject_id: UUID
    facility_code: str
    babies: int
    accepted: bool
    rejection_reason: str | None
    rejection_detail: str | None
    amount_riel: int
    explanation: str | None = None
    recorded_by: str
    recorded_at: datetime


class EvaluationRequest(_Command):
    on: date | None = Field(
        None,
        description="Hold the clock at this day and decide every household for it; "
        "omit to let decisions follow the calendar again (today, then daily).",
    )


class EvaluationRead(BaseModel):
    run_id: UUID
    programmes: list[str] | None
    reason: str
    requested_by: str
    requested_at: datetime
    status: str
    on_day: date | None
    started_at: datetime | None
    finished_at: datetime | None
    households: int
    decisions_changed: int
    error: str | None
