"""Events of the IDPoor registry (topic ``registry.households.v1``, key = household id).

Every household event carries the whole household as it is after the change
(``HouseholdSnapshot``), so consumers never need to call the registry back.

Schema versions: a new optional field (with a default) keeps the version, since readers of either
side accept the other's events; removing, renaming or retyping a field is a new version.
"""

from datetime import date
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, Field


class Sex(StrEnum):
    M = "M"
    F = "F"


class Relationship(StrEnum):
    HEAD = "HEAD"
    SPOUSE = "SPOUSE"
    CHILD = "CHILD"
    PARENT = "PARENT"
    OTHER_RELATIVE = "OTHER_RELATIVE"
    NON_RELATIVE = "NON_RELATIVE"


class PovertyLevel(StrEnum):
    POOR_1 = "POOR_1"
    POOR_2 = "POOR_2"
    NOT_POOR = "NOT_POOR"


class LocationCategory(StrEnum):
    PHNOM_PENH = "PHNOM_PENH"
    OTHER_URBAN = "OTHER_URBAN"
    RURAL = "RURAL"


class CardStatus(StrEnum):
    ACTIVE = "ACTIVE"
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"
    REPLACED = "REPLACED"


class HouseholdStatus(StrEnum):
    ACTIVE = "ACTIVE"
    WITHDRAWN = "WITHDRAWN"


class MemberSnapshot(BaseModel):
    member_id: UUID
    name_km: str
    sex: Sex
    date_of_birth: date
    dob_estimated: bool = False
    relationship: Relationship
    has_disability: bool = False
    disability_card_no: str | None = None
    lives_with_hiv: bool = False
    is_pregnant: bool = False
    expected_delivery_date: date | None = None
    in_school: bool = False
    joined_on: date | None = Field(None, description="Birth or move-in date; None = since registration.")
    left_on: date | None = Field(None, description="Death or move-out date; None = still a member.")

    def is_member_on(self, day: date) -> bool:
        joined = self.joined_on is None or self.joined_on <= day
        return joined and (self.left_on is None or day < self.left_on)


class CardSnapshot(BaseModel):
    card_number: str
    status: CardStatus
    issued_on: date
    valid_until: date

    def is_active_on(self, day: date) -> bool:
        return self.status == CardStatus.ACTIVE and self.issued_on <= day <= self.valid_until


class LocationPeriod(BaseModel):
    """The location category in force from ``effective_from`` (reclassifications are dated)."""

    effective_from: date
    category: LocationCategory


class HouseholdSnapshot(BaseModel):
    household_id: UUID
    version: int
    status: HouseholdStatus = HouseholdStatus.ACTIVE
    village_code: str
    commune_code: str
    district_code: str
    province_code: str
    location_history: list[LocationPeriod]
    interviewed_on: date
    score: int | None = None
    scoring_model: str | None = None
    model_level: PovertyLevel | None = None
    poverty_level: PovertyLevel | None = None
    head_member_id: UUID
    female_headed: bool
    possible_duplicate: bool = False
    card: CardSnapshot | None = None
    members: list[MemberSnapshot]

    def location_category_on(self, day: date) -> LocationCategory:
        in_force = [p for p in self.location_history if p.effective_from <= day]
        chosen = max(in_force, key=lambda p: p.effective_from) if in_force else self.location_history[0]
        return chosen.category

    def members_on(self, day: date) -> list[MemberSnapshot]:
        return [m for m in self.members if m.is_member_on(day)]


class HouseholdEvent(BaseModel):
    household: HouseholdSnapshot


class HouseholdRegistered(HouseholdEvent):
    pass


class HouseholdAssessed(HouseholdEvent):
    assessment_id: UUID
    score: int
    scoring_model: str
    model_level: PovertyLevel
    final_level: PovertyLevel
    special_circumstances_reason: str | None = None


class MemberAdded(HouseholdEvent):
    member_id: UUID
    change: str = Field(description="BIRTH | MOVED_IN | MARRIAGE")
    effective_on: date


class MemberRemoved(HouseholdEvent):
    member_id: UUID
    change: str = Field(description="DEATH | MOVED_OUT")
    effective_on: date


class MemberChanged(HouseholdEvent):
    """A member's details changed (name, national ID, disability, pregnancy, schooling…)."""

    member_id: UUID
    fields: list[str] = Field(description="Names of the member fields that changed (never their values).")
    effective_on: date


class CardIssued(HouseholdEvent):
    """A new card for a registered household (re-assessment, council decision, replacement). The
    first card of a registration travels in ``HouseholdRegistered.household.card``."""

    card_number: str


class CardExpired(HouseholdEvent):
    card_number: str


class CardRevoked(HouseholdEvent):
    card_number: str
    reason: str


class CardReplaced(HouseholdEvent):
    old_card_number: str
    card_number: str


class HouseholdWithdrawn(HouseholdEvent):
    reason: str


class HouseholdReclassified(HouseholdEvent):
    """The household's village was reclassified; ``household.location_history`` has the new period."""

    village_code: str
    category: LocationCategory
    effective_from: date
