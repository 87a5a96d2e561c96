"""A household as bulk paths read it: projection columns and compact ``facts``, not the whole
snapshot validated a second time.

A snapshot is validated once, when its event is consumed (``HouseholdSnapshot``), and stored with
the columns derived from it, among them ``facts``: what deciding and paying read besides those
columns, in compact JSON (``facts_of``). A national evaluation (eligibility) or payment run
(payments) reads every household of the register, and parsing and validating 700,000 whole
snapshots (names and all) would cost more than the work itself; so they read the row into plain
slotted classes that have what deciding, the benefit calculator and the views read of
``HouseholdSnapshot``: same names, same types, same ``members_on``, ``location_category_on`` and
``card.is_active_on``. Eligibility's ``tests/test_household.py`` and payments'
``tests/test_domain.py`` check both give the same decisions and the same payments.
"""

from collections.abc import Mapping
from datetime import date
from typing import Any
from uuid import UUID

import orjson

from krousar_common.events.households import (
    CardStatus,
    HouseholdSnapshot,
    HouseholdStatus,
    LocationCategory,
    PovertyLevel,
)

# The projection's columns a Household is read from (``facts`` as JSON text).
COLUMNS = (
    "household_id",
    "version",
    "status",
    "village_code",
    "commune_code",
    "district_code",
    "province_code",
    "poverty_level",
    "female_headed",
    "card_status",
    "card_issued_on",
    "card_valid_until",
    "facts",
)
_STATUS = {s.value: s for s in HouseholdStatus}
_LEVEL: dict[str | None, PovertyLevel | None] = {None: None, **{p.value: p for p in PovertyLevel}}
_CATEGORY = {c.value: c for c in LocationCategory}
_CARD_STATUS = {c.value: c for c in CardStatus}
_day = date.fromisoformat


def facts_of(snapshot: Mapping[str, Any]) -> list[Any]:
    """The ``facts`` column of a snapshot (its JSON data): [locations, members]."""
    return [
        [[p["effective_from"], p["category"]] for p in snapshot["location_history"]],
        [
            [
                m["member_id"],
                m["date_of_birth"],
                m["has_disability"],
                m["lives_with_hiv"],
                m["in_school"],
                m["joined_on"],
                m["left_on"],
            ]
            for m in snapshot["members"]
        ],
    ]


class Member:
    __slots__ = (
        "_member_id",
        "date_of_birth",
        "has_disability",
        "in_school",
        "joined_on",
        "left_on",
        "lives_with_hiv",
    )

    def __init__(
        self,
        member_id: str,
        born: str,
        disability: bool,
        hiv: bool,
        school: bool,
        joined: str | None,
        left: str | None,
    ) -> None:
        self._member_id = member_id
        self.date_of_birth = _day(born)
        self.has_disability = disability
        self.lives_with_hiv = hiv
        self.in_school = school
        self.joined_on = None if joined is None else _day(joined)
        self.left_on = None if left is None else _day(left)

    @property
    def member_id(self) -> UUID:
        # Made on demand: only PWYC conditions look members up by id.
        return UUID(self._member_id)

    def is_member_on(self, day: date) -> bool:
        joined = self.joined_on is None or self.joined_on <= day
        return joined and (self.left_on is None or day < self.left_on)


class Card:
    """The card in force as the projection's columns keep it (its number is not needed)."""

    __slots__ = ("issued_on", "status", "valid_until")

    def __init__(self, status: CardStatus, issued_on: date, valid_until: date) -> None:
        self.status = status
        self.issued_on = issued_on
        self.valid_until = valid_until

    def is_active_on(self, day: date) -> bool:
        return self.status == CardStatus.ACTIVE and self.issued_on <= day <= self.valid_until


class LocationPeriod:
    __slots__ = ("category", "effective_from")

    def __init__(self, effective_from: str, category: str) -> None:
        self.effective_from = _day(effective_from)
        self.category = _CATEGORY[category]


class Household:
    __slots__ = (
        "_always",
        "card",
        "commune_code",
        "district_code",
        "female_headed",
        "household_id",
        "location_history",
        "members",
        "poverty_level",
        "province_code",
        "status",
        "version",
        "village_code",
    )

    def __init__(self, row: Mapping[str, Any]) -> None:
        """From a projection row (``COLUMNS``)."""
        self.household_id: UUID = row["household_id"]
        self.version: int = row["version"]
        self.status = _STATUS[row["status"]]
        self.village_code: str = row["village_code"]
        self.commune_code: str = row["commune_code"]
        self.district_code: str = row["district_code"]
        self.province_code: str = row["province_code"]
        self.poverty_level = _LEVEL[row["poverty_level"]]
        self.female_headed: bool = row["female_headed"]
        card = row["card_status"]
        self.card = (
            None if card is None else Card(_CARD_STATUS[card], row["card_issued_on"], row["card_valid_until"])
        )
        locations, members = orjson.loads(row["facts"])
        self.location_history = tuple([LocationPeriod(*p) for p in locations])
        self.members = tuple([Member(*m) for m in members])
        # Nobody joined or left (a fact's last two): every member is a member on every day.
        self._always = not any([m[5] or m[6] for m in members])

    def members_on(self, day: date) -> tuple[Member, ...]:
        if self._always:
            return self.members
        return tuple(m for m in self.members if m.is_member_on(day))

    def location_category_on(self, day: date) -> LocationCategory:
        history = self.location_history
        if len(history) == 1:
            return history[0].category
        in_force = [p for p in history if p.effective_from <= day]
        chosen = max(in_force, key=lambda p: p.effective_from) if in_force else history[0]
        return chosen.category


def projection_columns(snapshot: HouseholdSnapshot) -> dict[str, Any]:
    """The values of ``COLUMNS`` for a validated snapshot (``facts`` as a list, for a json column)."""
    card = snapshot.card
    return {
        "household_id": snapshot.household_id,
        "version": snapshot.version,
        "status": str(snapshot.status),
        "village_code": snapshot.village_code,
        "commune_code": snapshot.commune_code,
        "district_code": snapshot.district_code,
        "province_code": snapshot.province_code,
        "poverty_level": None if snapshot.poverty_level is None else str(snapshot.poverty_level),
        "female_headed": snapshot.female_headed,
        "card_status": None if card is None else str(card.status),
        "card_issued_on": None if card is None else card.issued_on,
        "card_valid_until": None if card is None else card.valid_until,
        "facts": validated_facts(snapshot),
    }


def validated_facts(snapshot: HouseholdSnapshot) -> list[Any]:
    """``facts_of`` the snapshot's JSON data, read off the validated model (a third of the cost of
    dumping it first: payments does this for every decision it projects)."""
    return [
        [[p.effective_from.isoformat(), p.category.value] for p in snapshot.location_history],
        [
            [
                str(m.member_id),
                m.date_of_birth.isoformat(),
                m.has_disability,
                m.lives_with_hiv,
                m.in_school,
                None if m.joined_on is None else m.joined_on.isoformat(),
                None if m.left_on is None else m.left_on.isoformat(),
            ]
            for m in snapshot.members
        ],
    ]
