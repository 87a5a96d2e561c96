import random
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from krousar_common.benefits import (
    Calculator,
    Component,
    ConditionEvent,
    PaymentLine,
    RejectionReason,
    Term,
    VulnerableCount,
    age_on,
    assess_conditions,
    born_by,
    calculate,
    card_active_on,
    vulnerable_members,
)
from krousar_common.events.households import (
    CardSnapshot,
    CardStatus,
    HouseholdSnapshot,
    LocationCategory,
    LocationPeriod,
    MemberSnapshot,
    PovertyLevel,
    Relationship,
    Sex,
)
from krousar_common.programmes import ConditionKind, FamilyComponents, load_programme

SEED = Path(__file__).resolve().parents[3] / "services" / "topups" / "topups" / "seed"
COVID = load_programme(SEED / "COVID19_CT.json")
PWYC = load_programme(SEED / "PWYC.json")
FAMILY = load_programme(SEED / "FAMILY_PACKAGE.json")
FLOOD = load_programme(SEED / "examples" / "FLOOD_2022.json")
INFLATION = load_programme(SEED / "examples" / "INFLATION_2022.json")

PP, OU, RURAL = LocationCategory.PHNOM_PENH, LocationCategory.OTHER_URBAN, LocationCategory.RURAL
L1, L2 = PovertyLevel.POOR_1, PovertyLevel.POOR_2
MARCH_2023 = date(2023, 3, 1)


# --- factories -------------------------------------------------------------------------------------


def make_member(**over: Any) -> MemberSnapshot:
    fields: dict[str, Any] = {
        "member_id": uuid.uuid4(),
        "name_km": "សុខ",
        "sex": Sex.F,
        "date_of_birth": date(1990, 5, 17),
        "relationship": Relationship.CHILD,
    }
    return MemberSnapshot(**(fields | over))


def born_years_before(day: date, years: int, days: int = 0) -> date:
    """Birth date of someone who turns ``years`` on ``day`` (shifted by ``days``)."""
    return day.replace(year=day.year - years) + timedelta(days=days)


def make_household(members: list[MemberSnapshot] | None = None, **over: Any) -> HouseholdSnapshot:
    members = members if members is not None else [make_member(relationship=Relationship.HEAD)]
    fields: dict[str, Any] = {
        "household_id": uuid.uuid4(),
        "version": 1,
        "village_code": "12010101",
        "commune_code": "120101",
        "district_code": "1201",
        "province_code": "12",
        "location_history": [LocationPeriod(effective_from=date(2019, 1, 1), category=PP)],
        "interviewed_on": date(2019, 1, 1),
        "poverty_level": L1,
        "head_member_id": members[0].member_id,
        "female_headed": True,
        "members": members,
    }
    return HouseholdSnapshot(**(fields | over))


def adults(count: int) -> list[MemberSnapshot]:
    return [make_member(date_of_birth=date(1985 + i, 1, 1)) for i in range(count)]


def check_household() -> HouseholdSnapshot:
    """DOMAIN §5.1 check: Phnom Penh, POOR_1, 6 members of whom 2 elderly and 2 children under 5."""
    elderly = [make_member(date_of_birth=date(1950, 1, 1)), make_member(date_of_birth=date(1955, 6, 1))]
    children = [make_member(date_of_birth=date(2020, 2, 1)), make_member(date_of_birth=date(2022, 8, 1))]
    return make_household([*adults(2), *elderly, *children])


def one_line(lines: list[PaymentLine]) -> PaymentLine:
    [line] = lines
    return line


def rates_of(line: PaymentLine) -> dict[str, int]:
    return {t.label: t.unit_rate for t in line.terms}


# --- the check household ---------------------------------------------------------------------------


def test_check_household_is_paid_592_000_riel() -> None:
    household = check_household()

    line = one_line(calculate(COVID, household, "2023-03"))

    assert line.amount_riel == 592_000
    assert line.explanation == "120,000 + 6 × 52,000 + 4 × 40,000 = 592,000"
    assert line.terms == (
        Term("base", 1, 120_000, 120_000),
        Term("members", 6, 52_000, 312_000),
        Term("vulnerable members", 4, 40_000, 160_000),
    )
    assert (line.programme_code, line.programme_version, line.period) == ("COVID19_CT", 1, "2023-03")
    assert (line.household_id, line.component) == (household.household_id, Component.MONTHLY)


# --- COVID19_CT: every cell of the table ----------------------------------------------------------

COVID_TABLE = [
    # period, location, level, base, per member, per vulnerable member
    ("2020-06", PP, L1, 120_000, 52_000, 40_000),
    ("2020-06", PP, L2, 120_000, 36_000, 28_000),
    ("2020-06", OU, L1, 120_000, 40_000, 40_000),
    ("2020-06", OU, L2, 120_000, 28_000, 28_000),
    ("2020-06", RURAL, L1, 80_000, 24_000, 24_000),
    ("2020-06", RURAL, L2, 80_000, 16_000, 16_000),
    ("2023-12", PP, L1, 120_000, 52_000, 40_000),
    ("2023-12", RURAL, L2, 80_000, 16_000, 16_000),
    ("2024-01", PP, L1, 120_000, 0, 40_000),
    ("2024-01", PP, L2, 120_000, 0, 28_000),
    ("2024-01", OU, L1, 120_000, 0, 40_000),
    ("2024-01", OU, L2, 120_000, 0, 28_000),
    ("2024-01", RURAL, L1, 80_000, 0, 24_000),
    ("2024-01", RURAL, L2, 80_000, 0, 16_000),
    ("2024-03", OU, L2, 120_000, 0, 28_000),
]


@pytest.mark.parametrize(("period", "location", "level", "base", "per_member", "per_vulnerable"), COVID_TABLE)
def test_covid19_ct_rate_cell(
    period: str,
    location: LocationCategory,
    level: PovertyLevel,
    base: int,
    per_member: int,
    per_vulnerable: int,
) -> None:
    first_day = date(int(period[:4]), int(period[5:]), 1)
    toddler = make_member(date_of_birth=born_years_before(first_day, 2))
    household = make_household(
        [*adults(2), toddler],
        poverty_level=level,
        location_history=[LocationPeriod(effective_from=date(2019, 1, 1), category=location)],
    )

    line = one_line(calculate(COVID, household, period))

    assert line.amount_riel == base + 3 * per_member + 1 * per_vulnerable
    assert line.terms[0] == Term("base", 1, base, base)
    assert rates_of(line).get("members", 0) == per_member
    assert rates_of(line)["vulnerable members"] == per_vulnerable


def test_per_member_rate_of_0_is_left_out_of_the_arithmetic() -> None:
    line = one_line(calculate(COVID, check_household(), "2024-01"))

    assert line.explanation == "120,000 + 4 × 40,000 = 280,000"


def test_rate_period_switches_on_1_january_2024() -> None:
    household = check_household()

    assert one_line(calculate(COVID, household, "2023-12")).amount_riel == 592_000
    assert one_line(calculate(COVID, household, "2024-01")).amount_riel == 280_000


def test_no_vulnerable_member_still_shows_the_vulnerable_term() -> None:
    line = one_line(calculate(COVID, make_household(adults(2)), "2023-03"))

    assert line.explanation == "120,000 + 2 × 52,000 + 0 × 40,000 = 224,000"


@pytest.mark.parametrize("period", ["2020-05", "2024-04"])
def test_periods_outside_the_calendar_are_refused(period: str) -> None:
    with pytest.raises(ValueError, match="outside the calendar"):
        calculate(COVID, check_household(), period)


@pytest.mark.parametrize("level", [None, PovertyLevel.NOT_POOR])
def test_household_without_a_poor_level_has_no_rate(level: PovertyLevel | None) -> None:
    with pytest.raises(ValueError):
        calculate(COVID, make_household(poverty_level=level), "2023-03")


# --- boundaries: who counts on the period's first day ----------------------------------------------


def test_child_turning_5_on_the_first_of_the_month_is_not_a_child_under_5() -> None:
    turns_5 = make_member(date_of_birth=born_years_before(MARCH_2023, 5))
    turns_5_tomorrow = make_member(date_of_birth=born_years_before(MARCH_2023, 5, days=1))

    assert vulnerable_members(make_household([turns_5]), MARCH_2023, 5).children == 0
    assert vulnerable_members(make_household([turns_5_tomorrow]), MARCH_2023, 5).children == 1


def test_member_aged_exactly_60_on_the_first_is_elderly() -> None:
    turns_60 = make_member(date_of_birth=born_years_before(MARCH_2023, 60))
    turns_60_tomorrow = make_member(date_of_birth=born_years_before(MARCH_2023, 60, days=1))

    assert vulnerable_members(make_household([turns_60]), MARCH_2023, 5).elderly == 1
    assert vulnerable_members(make_household([turns_60_tomorrow]), MARCH_2023, 5).elderly == 0


def test_member_in_several_categories_counts_once() -> None:
    elderly_disabled_with_hiv = make_member(
        date_of_birth=date(1950, 1, 1), has_disability=True, lives_with_hiv=True
    )
    household = make_household([elderly_disabled_with_hiv, *adults(1)])

    counts = vulnerable_members(household, MARCH_2023, 5)

    assert counts == VulnerableCount(children=0, elderly=1, disability=1, hiv=1, distinct=1)
    assert (
        one_line(calculate(COVID, household, "2023-03")).explanation
        == "120,000 + 2 × 52,000 + 1 × 40,000 = 264,000"
    )


def test_counts_by_category() -> None:
    household = make_household(
        [
            make_member(date_of_birth=date(2021, 1, 1)),
            make_member(date_of_birth=date(2022, 1, 1), has_disability=True),
            make_member(date_of_birth=date(1940, 1, 1)),
            make_member(lives_with_hiv=True),
            make_member(),
        ]
    )

    assert vulnerable_members(household, MARCH_2023, 5) == VulnerableCount(2, 1, 1, 1, distinct=4)


def test_member_who_died_before_the_first_day_is_not_counted() -> None:
    died = make_member(date_of_birth=date(1940, 1, 1), left_on=date(2023, 2, 15))
    household = make_household([*adults(2), died])

    assert vulnerable_members(household, MARCH_2023, 5).elderly == 0
    assert (
        one_line(calculate(COVID, household, "2023-03")).explanation
        == "120,000 + 2 × 52,000 + 0 × 40,000 = 224,000"
    )
    assert one_line(calculate(COVID, household, "2023-02")).amount_riel == 120_000 + 3 * 52_000 + 40_000


def test_member_who_died_on_the_first_day_is_not_counted_but_one_dying_later_is() -> None:
    died_on_first = make_member(date_of_birth=date(1940, 1, 1), left_on=MARCH_2023)
    died_on_second = make_member(date_of_birth=date(1941, 1, 1), left_on=date(2023, 3, 2))

    assert vulnerable_members(make_household([died_on_first, died_on_second]), MARCH_2023, 5).elderly == 1


def test_baby_born_after_the_first_day_counts_from_next_month() -> None:
    baby = make_member(date_of_birth=date(2023, 3, 10), joined_on=date(2023, 3, 10))
    household = make_household([*adults(2), baby])

    assert one_line(calculate(COVID, household, "2023-03")).amount_riel == 120_000 + 2 * 52_000
    assert one_line(calculate(COVID, household, "2023-04")).amount_riel == 120_000 + 3 * 52_000 + 40_000


def test_reclassification_applies_from_the_period_whose_first_day_it_is_in_force_on() -> None:
    history = [
        LocationPeriod(effective_from=date(2019, 1, 1), category=RURAL),
        LocationPeriod(effective_from=MARCH_2023, category=OU),
    ]
    household = make_household(adults(2), location_history=history)
    moved_on_the_second = make_household(
        adults(2), location_history=[history[0], LocationPeriod(effective_from=date(2023, 3, 2), category=OU)]
    )

    assert one_line(calculate(COVID, household, "2023-02")).amount_riel == 80_000 + 2 * 24_000
    assert one_line(calculate(COVID, household, "2023-03")).amount_riel == 120_000 + 2 * 40_000
    assert one_line(calculate(COVID, moved_on_the_second, "2023-03")).amount_riel == 80_000 + 2 * 24_000


def test_child_age_limit_is_configurable() -> None:
    aged_5 = make_member(date_of_birth=date(2017, 6, 1))
    programme = COVID.model_copy(update={"child_age_limit": 6})
    household = make_household([aged_5])

    assert one_line(calculate(COVID, household, "2023-03")).amount_riel == 120_000 + 52_000
    assert one_line(calculate(programme, household, "2023-03")).amount_riel == 120_000 + 52_000 + 40_000


@given(
    born=st.dates(min_value=date(1900, 1, 1), max_value=date(2030, 12, 31)),
    day=st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 12, 31)),
    years=st.integers(min_value=0, max_value=100),
)
def test_born_by_agrees_with_age_on(born: date, day: date, years: int) -> None:
    assert (born <= born_by(day, years)) == (age_on(born, day) >= years)


def test_born_by_29_february() -> None:
    assert born_by(date(2024, 2, 29), 5) == date(2019, 2, 28)
    assert age_on(date(2019, 2, 28), date(2024, 2, 29)) == 5


def test_card_active_on() -> None:
    card = CardSnapshot(
        card_number="12010101-00001-3",
        status=CardStatus.ACTIVE,
        issued_on=date(2021, 3, 1),
        valid_until=date(2024, 2, 29),
    )

    assert card_active_on(make_household(card=card), date(2024, 2, 29))
    assert not card_active_on(make_household(card=card), date(2024, 3, 1))
    assert not card_active_on(make_household(card=None), date(2023, 3, 1))


# --- FAMILY_PACKAGE --------------------------------------------------------------------------------

APRIL_2024 = date(2024, 4, 1)


def family_household() -> HouseholdSnapshot:
    return make_household(
        [
            make_member(lives_with_hiv=True),
            make_member(date_of_birth=date(1950, 1, 1), has_disability=True),
            make_member(has_disability=True),
            make_member(date_of_birth=born_years_before(APRIL_2024, 6), in_school=True),
            make_member(date_of_birth=born_years_before(APRIL_2024, 15, days=1), in_school=True),
            make_member(date_of_birth=born_years_before(APRIL_2024, 15), in_school=True),
            make_member(date_of_birth=born_years_before(APRIL_2024, 18, days=1), in_school=True),
            make_member(date_of_birth=born_years_before(APRIL_2024, 18), in_school=True),
            make_member(date_of_birth=born_years_before(APRIL_2024, 6, days=1), in_school=True),
            make_member(date_of_birth=date(2014, 1, 1), in_school=False),
        ]
    )


def test_family_package_pays_each_component_on_its_own_line() -> None:
    lines = calculate(FAMILY, family_household(), "2024-04")

    assert {line.component: line.explanation for line in lines} == {
        Component.HIV: "1 × 28,000 = 28,000",
        Component.SCHOLARSHIP: "2 × 20,000 + 2 × 30,000 = 100,000",
        Component.DISABILITY: "2 × 40,000 = 80,000",
        Component.ELDERLY: "1 × 40,000 = 40,000",
    }
    assert sum(line.amount_riel for line in lines) == 248_000


def test_family_package_household_base_is_configurable() -> None:
    programme = FAMILY.model_copy(update={"components": FamilyComponents(household_base=10_000)})

    lines = calculate(programme, make_household(adults(2)), "2024-04")

    assert [(line.component, line.amount_riel, line.explanation) for line in lines] == [
        (Component.BASE, 10_000, "10,000 = 10,000")
    ]


def test_family_package_household_with_no_component_gets_no_line() -> None:
    assert calculate(FAMILY, make_household(adults(3)), "2024-05") == []


def test_family_package_starts_in_april_2024() -> None:
    with pytest.raises(ValueError, match="outside the calendar"):
        calculate(FAMILY, family_household(), "2024-03")


# --- top-ups ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("location", [PP, OU, RURAL])
@pytest.mark.parametrize("level", [L1, L2])
def test_flood_2022_pays_the_same_everywhere(location: LocationCategory, level: PovertyLevel) -> None:
    household = make_household(
        [
            *adults(3),
            make_member(date_of_birth=date(2020, 1, 1)),
            make_member(date_of_birth=date(1950, 1, 1)),
        ],
        poverty_level=level,
        location_history=[LocationPeriod(effective_from=date(2019, 1, 1), category=location)],
    )

    line = one_line(calculate(FLOOD, household, date(2022, 12, 10)))

    assert line.amount_riel == 80_000 + 5 * 16_000 + 2 * 16_000 == 192_000
    assert (line.component, line.period) == (Component.TOPUP, "2022-12-10")
    assert line.explanation == "80,000 + 5 × 16,000 + 2 × 16,000 = 192,000"


@pytest.mark.parametrize(
    ("location", "amount", "explanation"),
    [
        (PP, 211_900, "99,900 + 4 × 28,000 = 211,900"),
        (OU, 183_300, "87,300 + 4 × 24,000 = 183,300"),
        (RURAL, 161_300, "81,300 + 4 × 20,000 = 161,300"),
    ],
)
@pytest.mark.parametrize("payment_date", ["2022-12-10", "2023-04-10", "2023-07-10"])
def test_inflation_2022_pays_per_location(
    location: LocationCategory, amount: int, explanation: str, payment_date: str
) -> None:
    household = make_household(
        [*adults(3), make_member(date_of_birth=date(1950, 1, 1))],
        location_history=[LocationPeriod(effective_from=date(2019, 1, 1), category=location)],
    )

    line = one_line(calculate(INFLATION, household, payment_date))

    assert (line.amount_riel, line.explanation, line.period) == (amount, explanation, payment_date)


def test_top_up_refuses_a_date_it_does_not_pay_on() -> None:
    with pytest.raises(ValueError, match="not a payment date"):
        calculate(FLOOD, check_household(), "2023-03-10")


# --- PWYC ------------------------------------------------------------------------------------------


def make_condition(**over: Any) -> ConditionEvent:
    fields: dict[str, Any] = {
        "event_id": uuid.uuid4(),
        "kind": ConditionKind.ANTENATAL_VISIT,
        "occurred_on": date(2023, 9, 1),
        "subject_id": uuid.uuid4(),
        "facility_code": "HC-120101",
    }
    return ConditionEvent(**(fields | over))


def amounts(events: list[ConditionEvent], household: HouseholdSnapshot | None = None) -> list[int]:
    assessment = assess_conditions(PWYC, household or make_household(), events)
    return [e.amount_riel for e in assessment.accepted]


@pytest.mark.parametrize(
    ("kind", "before", "after"),
    [
        (ConditionKind.ANTENATAL_VISIT, 40_000, 80_000),
        (ConditionKind.FACILITY_DELIVERY, 200_000, 400_000),
    ],
)
def test_pwyc_rate_is_the_one_in_force_on_the_condition_date(
    kind: ConditionKind, before: int, after: int
) -> None:
    assert amounts([make_condition(kind=kind, occurred_on=date(2023, 7, 31))]) == [before]
    assert amounts([make_condition(kind=kind, occurred_on=date(2023, 8, 1))]) == [after]


def test_pwyc_postnatal_rate_before_and_after_august_2023() -> None:
    baby = make_member(date_of_birth=date(2023, 6, 1))
    household = make_household([*adults(1), baby])
    events = [
        make_condition(
            kind=ConditionKind.POSTNATAL_OR_VACCINATION, subject_id=baby.member_id, occurred_on=day
        )
        for day in (date(2023, 7, 31), date(2023, 8, 1))
    ]

    assert amounts(events, household) == [40_000, 80_000]


def test_fifth_antenatal_visit_of_a_pregnancy_is_rejected() -> None:
    pregnancy = uuid.uuid4()
    visits = [make_condition(subject_id=pregnancy, occurred_on=date(2023, 7, 29 + i)) for i in range(3)]
    visits += [make_condition(subject_id=pregnancy, occurred_on=date(2023, 8, 10 + i)) for i in range(2)]
    other_pregnancy = make_condition(occurred_on=date(2023, 8, 20))

    assessment = assess_conditions(PWYC, make_household(), [*visits, other_pregnancy])

    assert [e.amount_riel for e in assessment.accepted] == [40_000, 40_000, 40_000, 80_000, 80_000]
    [rejected] = assessment.rejected
    assert (rejected.event, rejected.reason) == (visits[4], RejectionReason.MAXIMUM_REACHED)
    assert "maximum of 4 per pregnancy" in rejected.detail


def test_eleventh_vaccination_of_a_child_is_rejected() -> None:
    child = make_member(date_of_birth=date(2023, 1, 15))
    checks = [
        make_condition(
            kind=ConditionKind.POSTNATAL_OR_VACCINATION,
            subject_id=child.member_id,
            occurred_on=date(2023, 2, 1) + timedelta(days=30 * i),
        )
        for i in range(11)
    ]

    assessment = assess_conditions(PWYC, make_household([*adults(1), child]), checks)

    assert len(assessment.accepted) == 10
    assert [(r.event, r.reason) for r in assessment.rejected] == [
        (checks[10], RejectionReason.MAXIMUM_REACHED)
    ]


def test_twins_delivered_after_august_2023_are_paid_per_baby() -> None:
    twins = make_condition(kind=ConditionKind.FACILITY_DELIVERY, occurred_on=date(2023, 9, 5), babies=2)

    [entitlement] = assess_conditions(PWYC, make_household(), [twins]).accepted

    assert entitlement.amount_riel == 800_000
    assert entitlement.explanation == "2 × 400,000 = 800,000"


def test_twins_delivered_before_august_2023_are_paid_once() -> None:
    twins = make_condition(kind=ConditionKind.FACILITY_DELIVERY, occurred_on=date(2023, 7, 5), babies=2)

    assert amounts([twins]) == [200_000]


def test_second_delivery_of_the_same_birth_is_rejected() -> None:
    pregnancy = uuid.uuid4()
    delivery = make_condition(kind=ConditionKind.FACILITY_DELIVERY, subject_id=pregnancy)
    again = make_condition(
        kind=ConditionKind.FACILITY_DELIVERY, subject_id=pregnancy, occurred_on=date(2023, 9, 2)
    )
    antenatal = make_condition(subject_id=pregnancy, occurred_on=date(2023, 8, 2))

    assessment = assess_conditions(PWYC, make_household(), [delivery, again, antenatal])

    assert [e.kind for e in assessment.accepted] == [
        ConditionKind.ANTENATAL_VISIT,
        ConditionKind.FACILITY_DELIVERY,
    ]
    assert [r.event for r in assessment.rejected] == [again]


def test_postnatal_check_once_the_child_is_2_is_rejected() -> None:
    child = make_member(date_of_birth=date(2021, 9, 1))
    household = make_household([*adults(1), child])
    on_birthday = make_condition(
        kind=ConditionKind.POSTNATAL_OR_VACCINATION, subject_id=child.member_id, occurred_on=date(2023, 9, 1)
    )
    day_before = make_condition(
        kind=ConditionKind.POSTNATAL_OR_VACCINATION, subject_id=child.member_id, occurred_on=date(2023, 8, 31)
    )

    assessment = assess_conditions(PWYC, household, [on_birthday, day_before])

    assert [e.event_id for e in assessment.accepted] == [day_before.event_id]
    assert [(r.event, r.reason) for r in assessment.rejected] == [
        (on_birthday, RejectionReason.CHILD_TOO_OLD)
    ]


def test_postnatal_check_of_an_unknown_child_is_rejected() -> None:
    check = make_condition(kind=ConditionKind.POSTNATAL_OR_VACCINATION)

    [rejected] = assess_conditions(PWYC, make_household(), [check]).rejected

    assert rejected.reason is RejectionReason.CHILD_NOT_IN_HOUSEHOLD


def test_condition_before_the_programme_is_rejected() -> None:
    [rejected] = assess_conditions(
        PWYC, make_household(), [make_condition(occurred_on=date(2019, 5, 31))]
    ).rejected

    assert rejected.reason is RejectionReason.NO_RATE_IN_FORCE


def test_a_redelivered_event_is_counted_once() -> None:
    visit = make_condition()

    assessment = assess_conditions(PWYC, make_household(), [visit, visit])

    assert len(assessment.accepted) == 1
    assert [r.reason for r in assessment.rejected] == [RejectionReason.DUPLICATE_EVENT]


def test_assessment_does_not_depend_on_the_order_events_arrive_in() -> None:
    pregnancy = uuid.uuid4()
    visits = [
        make_condition(subject_id=pregnancy, occurred_on=date(2023, 7, 1) + timedelta(days=20 * i))
        for i in range(6)
    ]
    shuffled = random.Random(7).sample(visits, k=len(visits))

    in_order = assess_conditions(PWYC, make_household(), visits)
    out_of_order = assess_conditions(PWYC, make_household(), shuffled)

    assert [e.event_id for e in out_of_order.accepted] == [e.event_id for e in in_order.accepted]
    assert [r.event for r in out_of_order.rejected] == visits[4:]


# --- the calculator that prices each distinct counts once ------------------------------------------

# One calculator per programme for every example below, as a run keeps one for all its households:
# later examples are priced from what earlier ones left.
CALCULATORS = {p.code: Calculator(p) for p in (COVID, FAMILY, FLOOD, INFLATION)}
PAYMENTS = [
    (COVID, "2020-07"),
    (COVID, "2023-03"),
    (COVID, "2024-02"),
    (FAMILY, "2024-04"),
    (FLOOD, "2022-12-10"),
    (INFLATION, "2022-12-10"),
    (INFLATION, "2023-07-10"),
]
members_drawn = st.builds(
    make_member,
    date_of_birth=st.dates(min_value=date(1930, 1, 1), max_value=date(2024, 6, 1)),
    has_disability=st.booleans(),
    lives_with_hiv=st.booleans(),
    in_school=st.booleans(),
)


@given(
    payment=st.sampled_from(PAYMENTS),
    members=st.lists(members_drawn, min_size=1, max_size=9),
    location=st.sampled_from([PP, OU, RURAL]),
    level=st.sampled_from([L1, L2]),
)
def test_a_calculator_pays_what_calculate_pays(
    payment: tuple[Any, str], members: list[MemberSnapshot], location: LocationCategory, level: PovertyLevel
) -> None:
    programme, key = payment
    household = make_household(
        members, location_history=[LocationPeriod(effective_from=date(2019, 1, 1), category=location)],
        poverty_level=level,
    )  # fmt: skip

    remembered = CALCULATORS[programme.code].priced(household, key)

    assert [
        (line.component, line.amount_riel, line.terms, line.explanation)
        for line in calculate(programme, household, key)
    ] == [(line.component, line.amount_riel, line.terms, line.explanation) for line in remembered]


def test_a_calculator_refuses_what_calculate_refuses() -> None:
    household = make_household(poverty_level=None)
    with pytest.raises(ValueError, match="no poverty level"):
        CALCULATORS[COVID.code].priced(household, "2023-03")
    with pytest.raises(ValueError, match="outside the calendar"):
        CALCULATORS[COVID.code].priced(make_household(), "2020-05")


def test_programmes_refuse_the_other_formula() -> None:
    with pytest.raises(ValueError, match="assess_conditions"):
        calculate(PWYC, make_household(), "2023-09")
    with pytest.raises(ValueError, match="does not pay verified conditions"):
        assess_conditions(COVID, make_household(), [])


def test_condition_event_babies_must_be_a_positive_int() -> None:
    with pytest.raises(ValueError):
        make_condition(kind=ConditionKind.FACILITY_DELIVERY, babies=0)
