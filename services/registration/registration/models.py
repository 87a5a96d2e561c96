"""Request and response bodies of the registration API (the commands the use cases take)."""

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from krousar_common.db import INT_MAX
from krousar_common.events.households import (
    CardStatus,
    HouseholdStatus,
    LocationCategory,
    PovertyLevel,
    Relationship,
    Sex,
)
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

KHMER_LETTER = re.compile("[\u1780-\u17ff]")


def _not_in_future(value: date) -> date:
    if value > date.today():
        raise ValueError("cannot be in the future")
    return value


# An interview or a council decision has happened: a future date would issue a card from the future.
PastDate = Annotated[date, AfterValidator(_not_in_future)]


class MemberCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name_km: str = Field(min_length=1, max_length=200, description="Name in Khmer script (required).")
    name_latin: str | None = Field(None, max_length=200)
    sex: Sex
    date_of_birth: date = Field(
        description="When only the year is known: YYYY-07-01 with dob_estimated=true."
    )
    dob_estimated: bool = False
    relationship: Relationship
    national_id: str | None = Field(None, pattern=r"^[0-9]{9}$")
    has_disability: bool = False
    disability_card_no: str | None = Field(None, max_length=50)
    lives_with_hiv: bool = False
    is_pregnant: bool = False
    expected_delivery_date: date | None = None
    in_school: bool = False

    @field_validator("name_km")
    @classmethod
    def _khmer_script(cls, value: str) -> str:
        if not KHMER_LETTER.search(value):
            raise ValueError("must be written in Khmer script")
        return value

    @field_validator("date_of_birth")
    @classmethod
    def _plausible_birth(cls, value: date) -> date:
        if value.year < 1900:
            raise ValueError("must be 1900 or later")
        return value


class HouseholdCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    village_code: str = Field(
        description="8-digit village code; 7-digit codes of older exports are accepted.",
        examples=["12010101"],
    )
    interviewed_on: PastDate
    identification_mode: Literal["ROUND", "ON_DEMAND"] = "ON_DEMAND"
    round_no: int | None = Field(None, ge=1, le=INT_MAX, validate_default=True)
    answers: dict[str, Any] = Field(
        description="Questionnaire answers keyed by item (see docs/registration.md)."
    )
    members: list[MemberCreate] = Field(min_length=1, max_length=40)

    @field_validator("members")
    @classmethod
    def _one_head_and_distinct_ids(
        cls, members: list[MemberCreate], info: ValidationInfo
    ) -> list[MemberCreate]:
        interviewed_on = info.data.get("interviewed_on")
        unborn = [i for i, m in enumerate(members) if interviewed_on and m.date_of_birth > interviewed_on]
        if unborn:
            raise ValueError(
                f"member {unborn[0]} was born after interviewed_on: record a birth later instead"
            )
        heads = sum(1 for m in members if m.relationship == Relationship.HEAD)
        if heads != 1:
            raise ValueError(f"exactly one member must be HEAD, found {heads}")
        ids = [m.national_id for m in members if m.national_id]
        if len(ids) != len(set(ids)):
            raise ValueError("a national_id appears twice in this household")
        return members

    @field_validator("round_no")
    @classmethod
    def _round_needs_number(cls, value: int | None, info: ValidationInfo) -> int | None:
        if info.data.get("identification_mode") == "ROUND" and value is None:
            raise ValueError("required when identification_mode is ROUND")
        return value


class MemberRead(BaseModel):
    member_id: UUID
    name_km: str
    name_latin: str | None
    sex: Sex
    date_of_birth: date
    dob_estimated: bool
    relationship: Relationship
    national_id: str | None
    has_disability: bool
    disability_card_no: str | None
    lives_with_hiv: bool | None = Field(None, description="Only shown to roles that need it.")
    is_pregnant: bool
    expected_delivery_date: date | None
    in_school: bool
    joined_on: date | None
    joined_reason: str | None
    left_on: date | None
    left_reason: str | None


class CardRead(BaseModel):
    card_number: str
    status: CardStatus
    issued_on: date
    valid_until: date
    status_reason: str | None = None
    replaced_by: str | None = None


class CardLookup(CardRead):
    household_id: UUID


class ItemPoints(BaseModel):
    item: str
    value: Any
    points: int


class AssessmentRead(BaseModel):
    assessment_id: UUID
    assessed_on: date
    scoring_model: str
    score: int
    model_level: PovertyLevel
    final_level: PovertyLevel
    adjustment: str | None
    adjustment_reason: str | None
    items: list[ItemPoints]
    created_at: datetime
    created_by: str


class HouseholdRead(BaseModel):
    household_id: UUID
    version: int
    status: HouseholdStatus
    village_code: str
    commune_code: str
    district_code: str
    province_code: str
    location_category: LocationCategory
    questionnaire: str
    interviewed_on: date
    identification_mode: str
    round_no: int | None
    score: int | None
    scoring_model: str | None
    model_level: PovertyLevel | None
    poverty_level: PovertyLevel | None
    special_circumstances_reason: str | None
    possible_duplicate: bool
    female_headed: bool
    head_member_id: UUID
    assessment: AssessmentRead | None
    card: CardRead | None
    members: list[MemberRead]
    registered_at: datetime
    registered_by: str
    updated_at: datetime
    updated_by: str


class HouseholdPage(BaseModel):
    items: list[HouseholdRead]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= to get the next page; null on the last page."
    )


class MemberChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    member: MemberCreate
    effective_on: date


class MemberLeaving(BaseModel):
    model_config = ConfigDict(extra="forbid")

    member_id: UUID
    effective_on: date
    new_head_member_id: UUID | None = Field(None, description="Required when the head leaves.")


class MemberUpdate(BaseModel):
    """A change of a member's details: only the fields sent change (null clears an optional one).
    The member that results must pass every rule of ``MemberCreate``; the relationship changes only
    through life events (a new head is named when the head leaves)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    effective_on: PastDate = Field(description="When the change happened (or was found).")
    name_km: str | None = None
    name_latin: str | None = None
    sex: Sex | None = None
    date_of_birth: date | None = None
    dob_estimated: bool | None = None
    national_id: str | None = None
    has_disability: bool | None = None
    disability_card_no: str | None = None
    lives_with_hiv: bool | None = None
    is_pregnant: bool | None = None
    expected_delivery_date: date | None = None
    in_school: bool | None = None

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True, exclude={"effective_on"})


class Withdrawal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=3, max_length=500)


class Reassessment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    interviewed_on: PastDate
    answers: dict[str, Any]


class CouncilDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    direction: Literal["UP", "DOWN"] = Field(
        description="UP = one level poorer (toward POOR_1), DOWN = less poor."
    )
    reason: str = Field(min_length=10, max_length=2000, description="The council's written reason.")
    decided_on: PastDate


class CardAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=3, max_length=500)


class AuditEntry(BaseModel):
    action: str
    actor: str
    at: datetime
    version: int
    details: dict[str, Any]
