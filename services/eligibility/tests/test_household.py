"""Deciding from the projection row (``eligibility.household``) decides as the validated snapshot does."""

import uuid
from datetime import date
from typing import Any

from eligibility import domain
from eligibility.household import Household
from eligibility_factories import (
    COVID,
    ENROLLED,
    FAMILY,
    FLOOD,
    INFLATION,
    PWYC,
    make_card,
    make_household,
    make_member,
    projection_row,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from krousar_common.benefits import ConditionEvent
from krousar_common.events.households import (
    CardStatus,
    HouseholdSnapshot,
    HouseholdStatus,
    LocationCategory,
    LocationPeriod,
    PovertyLevel,
)
from krousar_common.programmes import ConditionKind

PROGRAMMES = (COVID, FAMILY, PWYC, FLOOD, INFLATION)
DAYS = (date(2020, 6, 1), date(2022, 12, 1), date(2023, 3, 17), date(2024, 2, 29), date(2025, 1, 1))


def assert_same_decisions(snapshot: HouseholdSnapshot, **facts: Any) -> None:
    household = Household(projection_row(snapshot))
    for programme in PROGRAMMES:
        for day in DAYS:
            expected = domain.decide(programme, snapshot, ENROLLED, day, **facts)
            assert domain.decide(programme, household, ENROLLED, day, **facts) == expected


def test_what_deciding_reads_is_the_snapshots() -> None:
    snapshot = make_household(
        make_member(date_of_birth=date(2021, 2, 28), joined_on=date(2021, 2, 28), in_school=False),
        make_member(has_disability=True, lives_with_hiv=True, left_on=date(2024, 1, 1)),
    )
    household = Household(projection_row(snapshot))

    assert (household.household_id, household.version, household.status) == (
        snapshot.household_id,
        snapshot.version,
        snapshot.status,
    )
    assert household.poverty_level is snapshot.poverty_level
    assert snapshot.card is not None and household.card is not None
    assert (household.card.status, household.card.issued_on, household.card.valid_until) == (
        snapshot.card.status,
        snapshot.card.issued_on,
        snapshot.card.valid_until,
    )
    for day in DAYS:
        assert [m.member_id for m in household.members_on(day)] == [
            m.member_id for m in snapshot.members_on(day)
        ]
        assert household.location_category_on(day) is snapshot.location_category_on(day)


def test_same_decisions_for_the_cases_deciding_tells_apart() -> None:
    reclassified = [
        LocationPeriod(effective_from=date(1900, 1, 1), category=LocationCategory.RURAL),
        LocationPeriod(effective_from=date(2023, 1, 1), category=LocationCategory.PHNOM_PENH),
    ]
    for snapshot in (
        make_household(
            make_member(date_of_birth=date(1950, 1, 1)), make_member(date_of_birth=date(2020, 1, 1))
        ),
        make_household(card=None, poverty_level=None),
        make_household(card=make_card(status=CardStatus.REVOKED), status=HouseholdStatus.WITHDRAWN),
        make_household(card=make_card(valid_until=date(2023, 2, 28)), poverty_level=PovertyLevel.POOR_2),
        make_household(commune_code="121101", village_code="12110101", location_history=reclassified),
    ):
        assert_same_decisions(snapshot)
        assert_same_decisions(snapshot, paid={("FLOOD_2022", "2022-12-10")})


def test_same_pwyc_entitlements_for_conditions_on_members() -> None:
    child = make_member(date_of_birth=date(2023, 5, 1), joined_on=date(2023, 5, 1))
    snapshot = make_household(child)
    conditions = [
        ConditionEvent(
            event_id=uuid.uuid4(),
            kind=ConditionKind.POSTNATAL_OR_VACCINATION,
            occurred_on=date(2023, 6 + n, 2),
            subject_id=child.member_id,
            facility_code="HC-0101",
        )
        for n in range(3)
    ]

    assert_same_decisions(snapshot, conditions=conditions)


days = st.dates(min_value=date(1940, 1, 1), max_value=date(2026, 12, 31))
members = st.builds(
    make_member,
    date_of_birth=days,
    has_disability=st.booleans(),
    lives_with_hiv=st.booleans(),
    in_school=st.booleans(),
    joined_on=st.none() | days,
    left_on=st.none() | days,
)
locations = st.lists(
    st.builds(LocationPeriod, effective_from=days, category=st.sampled_from(list(LocationCategory))),
    min_size=1,
    max_size=3,
)


@settings(max_examples=60, deadline=None)
@given(
    members=st.lists(members, max_size=6),
    history=locations,
    level=st.none() | st.sampled_from(list(PovertyLevel)),
    card=st.none() | st.sampled_from(list(CardStatus)),
    withdrawn=st.booleans(),
)
def test_same_decisions_for_any_household(
    members: list[Any],
    history: list[LocationPeriod],
    level: PovertyLevel | None,
    card: CardStatus | None,
    withdrawn: bool,
) -> None:
    snapshot = make_household(
        *members,
        location_history=history,
        poverty_level=level,
        card=None if card is None else make_card(status=card),
        status=HouseholdStatus.WITHDRAWN if withdrawn else HouseholdStatus.ACTIVE,
    )

    assert_same_decisions(snapshot)
