import uuid
from datetime import date

import pytest
from eligibility.domain import (
    Reason,
    card_reason,
    decide,
    evaluate,
    excluded_by,
    payment_key_on,
    payment_keys_in,
)
from eligibility_factories import (
    COVID,
    ENROLLED,
    FAMILY,
    FLOOD,
    INFLATION,
    MARCH_2023,
    PWYC,
    make_card,
    make_household,
    make_member,
    with_status,
)
from hypothesis import given
from hypothesis import strategies as st
from krousar_common.benefits import ConditionEvent
from krousar_common.events.households import (
    CardSnapshot,
    CardStatus,
    HouseholdStatus,
    LocationCategory,
    PovertyLevel,
)
from krousar_common.programmes import ConditionKind, ProgrammeStatus, ProgrammeVersion

# --- which payment ---------------------------------------------------------------------------------


def test_payment_key_is_the_current_period_of_a_monthly_programme() -> None:
    assert payment_key_on(COVID, date(2023, 3, 17)) == "2023-03"
    assert payment_key_on(COVID, date(2019, 1, 1)) == "2020-06"  # before the start: its first period
    assert payment_key_on(COVID, date(2024, 4, 1)) is None  # after its last period
    assert payment_key_on(FAMILY, date(2031, 1, 5)) == "2031-01"  # open-ended


def test_payment_key_of_a_topup_is_its_next_payment_date() -> None:
    assert payment_key_on(FLOOD, date(2022, 11, 1)) == "2022-12-10"
    assert payment_key_on(FLOOD, date(2022, 12, 10)) == "2022-12-10"
    assert payment_key_on(FLOOD, date(2022, 12, 11)) == "2023-01-10"
    assert payment_key_on(FLOOD, date(2023, 2, 11)) is None


def test_payment_keys_in_a_month() -> None:
    assert payment_keys_in(FLOOD, "2023-01") == ["2023-01-10"]
    assert payment_keys_in(FLOOD, "2023-03") == []
    assert payment_keys_in(COVID, "2023-03") == ["2023-03"]
    assert payment_keys_in(COVID, "2024-04") == []


# --- decisions -------------------------------------------------------------------------------------


def test_enrolled_poor_household_with_active_card_is_eligible_with_the_domain_amount() -> None:
    elderly = [make_member(date_of_birth=date(1950, 1, 1)) for _ in range(2)]
    children = [make_member(date_of_birth=date(2020, 1, 1)) for _ in range(2)]
    household = make_household(*elderly, *children, make_member())  # 6 members

    decision = decide(COVID, household, ENROLLED, date(2023, 3, 9))

    assert (decision.eligible, decision.reasons, decision.payment_key) == (True, (), "2023-03")
    assert decision.amount_riel == 592_000
    assert decision.lines[0].explanation == "120,000 + 6 × 52,000 + 4 × 40,000 = 592,000"


def test_not_enrolled_is_the_only_reason_and_still_targeted() -> None:
    decision = decide(COVID, make_household(), None, MARCH_2023)

    assert decision.reasons == ("NOT_ENROLLED",)
    assert not decision.eligible and decision.targeted


def test_every_applicable_reason_is_given() -> None:
    household = make_household(
        poverty_level=PovertyLevel.NOT_POOR, card=None, status=HouseholdStatus.WITHDRAWN
    )

    decision = decide(COVID, household, None, MARCH_2023)

    assert decision.reasons == ("HOUSEHOLD_WITHDRAWN", "NOT_POOR", "NO_ACTIVE_CARD", "NOT_ENROLLED")
    assert not decision.targeted


@pytest.mark.parametrize(
    ("card", "reason"),
    [
        (None, Reason.NO_ACTIVE_CARD),
        (make_card(status=CardStatus.REVOKED), Reason.NO_ACTIVE_CARD),
        (make_card(status=CardStatus.REPLACED), Reason.NO_ACTIVE_CARD),
        (make_card(issued_on=date(2023, 3, 2)), Reason.NO_ACTIVE_CARD),
        (make_card(valid_until=date(2023, 2, 28)), Reason.CARD_EXPIRED),
        (make_card(status=CardStatus.EXPIRED, valid_until=date(2023, 2, 28)), Reason.CARD_EXPIRED),
        # expired on the 10th: still in force on the period's first day, which is what counts
        (make_card(status=CardStatus.EXPIRED, valid_until=date(2023, 3, 10)), None),
        (make_card(valid_until=date(2023, 3, 1)), None),
    ],
)
def test_card_on_the_periods_first_day(card: CardSnapshot | None, reason: Reason | None) -> None:
    assert card_reason(card, MARCH_2023) == reason
    decision = decide(COVID, make_household(card=card), ENROLLED, date(2023, 3, 20))
    assert decision.reasons == (() if reason is None else (reason,))


def test_programme_not_running_after_its_end_or_when_closed() -> None:
    household = make_household()

    assert decide(COVID, household, ENROLLED, date(2024, 4, 1)).reasons == ("PROGRAMME_NOT_RUNNING",)
    closed = with_status(FLOOD, ProgrammeStatus.CLOSED)
    assert decide(closed, household, ENROLLED, date(2022, 11, 1)).reasons == ("PROGRAMME_NOT_RUNNING",)


def test_topup_covers_its_communes_only() -> None:
    inside = make_household(commune_code="121101", village_code="12110101")
    outside = make_household()  # commune 120101

    assert decide(FLOOD, inside, ENROLLED, date(2022, 12, 1)).eligible
    assert decide(FLOOD, outside, ENROLLED, date(2022, 12, 1)).reasons == ("OUTSIDE_TARGET_AREA",)


def test_target_level_and_location() -> None:
    poor_1_urban = FLOOD.target.model_copy(
        update={"poverty_levels": [PovertyLevel.POOR_1], "location_categories": [LocationCategory.RURAL]}
    )
    programme = FLOOD.model_copy(update={"target": poor_1_urban})
    household = make_household(poverty_level=PovertyLevel.POOR_2, commune_code="121101")

    decision = decide(programme, household, ENROLLED, date(2022, 12, 1))

    assert decision.reasons == ("OUTSIDE_TARGET_LEVEL", "OUTSIDE_TARGET_LOCATION")


def test_inflation_first_payment_excludes_households_paid_by_flood_in_december() -> None:
    household = make_household()
    paid = {("FLOOD_2022", "2022-12-10")}

    first = decide(INFLATION, household, ENROLLED, date(2022, 12, 1), paid=paid)
    second = decide(INFLATION, household, ENROLLED, date(2022, 12, 11), paid=paid)
    not_paid = decide(INFLATION, household, ENROLLED, date(2022, 12, 1), paid={("FLOOD_2022", "2023-01-10")})

    assert first.reasons == (excluded_by("FLOOD_2022"),) == ("EXCLUDED_BY_FLOOD_2022",)
    assert second.eligible and second.payment_key == "2023-04-10"
    assert not_paid.eligible
    assert first.amount_riel == 99_900 + 1 * 28_000  # one member: the head


def test_family_package_needs_one_component_above_zero() -> None:
    nothing = make_household()
    with_elderly = make_household(make_member(date_of_birth=date(1950, 1, 1)))

    assert decide(FAMILY, nothing, ENROLLED, date(2025, 1, 1)).reasons == ("NOTHING_PAYABLE",)
    decision = decide(FAMILY, with_elderly, ENROLLED, date(2025, 1, 1))
    assert decision.eligible and decision.amount_riel == 40_000


def test_a_rate_table_paying_only_vulnerable_members_says_no_vulnerable_member() -> None:
    rates = {"base": 0, "per_member": 0, "per_vulnerable": 16_000}
    table = FLOOD.rate_tables[0].model_dump()
    table["rates"] = {loc: {"POOR_1": rates, "POOR_2": rates} for loc in table["rates"]}
    programme = ProgrammeVersion.model_validate({**FLOOD.model_dump(), "rate_tables": [table]})
    household = make_household(commune_code="121101")

    assert decide(programme, household, ENROLLED, date(2022, 12, 1)).reasons == ("NO_VULNERABLE_MEMBER",)
    child = make_member(date_of_birth=date(2021, 1, 1))
    assert decide(
        programme, make_household(child, commune_code="121101"), ENROLLED, date(2022, 12, 1)
    ).eligible


def test_pwyc_needs_a_verified_condition_and_pays_those_of_the_month() -> None:
    household = make_household()
    visits = [
        ConditionEvent(
            event_id=uuid.uuid4(),
            kind=ConditionKind.ANTENATAL_VISIT,
            occurred_on=day,
            subject_id=uuid.UUID(int=1),
            facility_code="HC-0101",
        )
        for day in (date(2023, 9, 3), date(2023, 10, 5))
    ]

    assert decide(PWYC, household, ENROLLED, date(2023, 9, 1)).reasons == ("NOTHING_PAYABLE",)
    decision = decide(PWYC, household, ENROLLED, date(2023, 9, 1), conditions=visits)
    assert decision.eligible and decision.amount_riel == 80_000
    assert [e.occurred_on for e in decision.entitlements] == [date(2023, 9, 3)]


def test_pwyc_with_conditions_but_none_this_month_stays_eligible_with_zero() -> None:
    visit = ConditionEvent(
        event_id=uuid.uuid4(),
        kind=ConditionKind.ANTENATAL_VISIT,
        occurred_on=date(2023, 9, 3),
        subject_id=uuid.UUID(int=1),
        facility_code="HC-0101",
    )

    decision = evaluate(PWYC, make_household(), ENROLLED, "2023-11", conditions=[visit])

    assert decision.eligible and decision.amount_riel == 0


@given(
    level=st.sampled_from(list(PovertyLevel)),
    card=st.sampled_from([None, *CardStatus]),
    enrolled=st.booleans(),
    withdrawn=st.booleans(),
    day=st.dates(min_value=date(2020, 6, 1), max_value=date(2024, 3, 31)),
)
def test_eligible_exactly_when_no_reason(
    level: PovertyLevel, card: CardStatus | None, enrolled: bool, withdrawn: bool, day: date
) -> None:
    household = make_household(
        poverty_level=level,
        card=None if card is None else make_card(status=card),
        status=HouseholdStatus.WITHDRAWN if withdrawn else HouseholdStatus.ACTIVE,
    )

    decision = decide(COVID, household, ENROLLED if enrolled else None, day)

    assert decision.eligible == (not decision.reasons)
    assert decision.eligible == (
        level is not PovertyLevel.NOT_POOR
        and card in (CardStatus.ACTIVE, CardStatus.EXPIRED)
        and enrolled
        and not withdrawn
    )
    assert decision.amount_riel > 0 or Reason.NOT_POOR in decision.reasons or withdrawn
