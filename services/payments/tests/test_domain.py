"""Which households a run pays, which it leaves out and why: pure logic, plain asserts."""

import uuid
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from krousar_common.benefits import Calculator, calculate
from krousar_common.events.households import HouseholdSnapshot
from krousar_common.events.payments import RunState
from krousar_common.household_facts import projection_columns
from krousar_common.programmes import ProgrammeVersion, load_programme
from payments import domain

SEEDS = Path(__file__).resolve().parents[2] / "topups" / "topups" / "seed"
COVID = load_programme(SEEDS / "COVID19_CT.json")
INFLATION = load_programme(SEEDS / "examples" / "INFLATION_2022.json")
JULY = date(2020, 7, 1)
ENROLMENT = {"payee_name": "សុខ ចាន់", "channel": "WING", "account": "012345678"}


def member(born: str, **over: Any) -> dict[str, Any]:
    return {
        "member_id": str(uuid.uuid4()),
        "name_km": "សុខ ចាន់",
        "sex": "F",
        "date_of_birth": born,
        "relationship": "CHILD",
        **over,
    }


def household(**over: Any) -> dict[str, Any]:
    """The DOMAIN.md §5.1 check household: Phnom Penh, POOR_1, 6 members, 2 aged 60+, 2 under 5."""
    members = [
        member("1985-02-10", relationship="HEAD"),
        member("1983-09-01"),
        member("1950-01-15"),
        member("1958-07-01"),
        member("2016-08-20"),
        member("2019-12-01"),
    ]
    snapshot = {
        "household_id": str(uuid.uuid4()),
        "version": 1,
        "village_code": "12010101",
        "commune_code": "120101",
        "district_code": "1201",
        "province_code": "12",
        "location_history": [{"effective_from": "1900-01-01", "category": "PHNOM_PENH"}],
        "interviewed_on": "2020-06-15",
        "poverty_level": "POOR_1",
        "head_member_id": members[0]["member_id"],
        "female_headed": True,
        "card": {
            "card_number": "12010101-00001-0",
            "status": "ACTIVE",
            "issued_on": "2020-06-15",
            "valid_until": "2023-06-14",
        },
        "members": members,
    }
    snapshot.update(over)
    return snapshot


def projection_row(snapshot: dict[str, Any], enrolment: dict[str, Any] | None) -> dict[str, Any]:
    """The decision row a calculation reads (``store.CANDIDATE``), from a snapshot and enrolment."""
    validated = HouseholdSnapshot.model_validate(snapshot)
    columns = projection_columns(validated)
    head = next((m for m in validated.members if m.member_id == validated.head_member_id), None)
    return {
        **columns,
        "facts": orjson.dumps(columns["facts"]).decode(),
        "card_number": validated.card.card_number if validated.card else None,
        "head_name": head.name_km if head else None,
        "enrolled": enrolment is not None,
        **{k: (enrolment or {}).get(k) for k in ("payee_name", "channel", "account")},
    }


def candidate(snapshot: dict[str, Any], *, eligible: bool = True, **over: Any) -> domain.Candidate:
    fields = {"reasons": [], "enrolment": ENROLMENT, **over}
    row = projection_row(snapshot, fields["enrolment"])
    return domain.Candidate(uuid.UUID(snapshot["household_id"]), eligible, fields["reasons"], row)


def assess(
    snapshot: dict[str, Any], programme: ProgrammeVersion = COVID, key: str = "2020-07", **over: Any
) -> domain.Planned | domain.LeftOut:
    history = over.pop("history", domain.History())
    day = programme.payment_key(key)[1]
    return domain.assess(Calculator(programme), key, day, candidate(snapshot, **over), history)


def test_the_check_household_is_paid_592_000_riel_with_its_arithmetic() -> None:
    planned = assess(household())

    assert isinstance(planned, domain.Planned)
    ((line, attempt),) = planned.lines
    assert (line.amount_riel, attempt) == (592_000, 1)
    assert line.explanation == "120,000 + 6 × 52,000 + 4 × 40,000 = 592,000"
    assert planned.payee == domain.Payee("សុខ ចាន់", "WING", "012345678")
    assert planned.location_category == "PHNOM_PENH"


@pytest.mark.parametrize(
    ("over", "reason"),
    [
        ({"eligible": False, "reasons": ["NOT_POOR", "NOT_ENROLLED"]}, "NOT_POOR"),
        ({"eligible": False}, "NOT_ELIGIBLE"),
        ({"enrolment": None}, "NOT_ENROLLED"),
    ],
)
def test_a_decision_says_why_not(over: dict[str, Any], reason: str) -> None:
    left_out = assess(household(), **over)

    assert isinstance(left_out, domain.LeftOut) and left_out.reason == reason


@pytest.mark.parametrize(
    ("over", "reason"),
    [
        ({"status": "WITHDRAWN"}, "HOUSEHOLD_WITHDRAWN"),
        ({"card": None}, "CARD_NOT_ACTIVE"),
        ({"poverty_level": "NOT_POOR"}, "LEVEL_NOT_TARGETED"),
    ],
)
def test_the_period_s_first_day_is_checked_again(over: dict[str, Any], reason: str) -> None:
    left_out = assess(household(**over))

    assert isinstance(left_out, domain.LeftOut) and left_out.reason == reason


def test_a_card_that_expired_before_the_period_leaves_the_household_out() -> None:
    left_out = assess(household(), key="2023-07")

    assert isinstance(left_out, domain.LeftOut)
    assert left_out.reason == "CARD_NOT_ACTIVE"
    assert "not on 2023-07-01" in (left_out.detail or "")


def test_a_household_already_paid_or_in_another_run_is_not_paid_again() -> None:
    snapshot = household()
    hid = uuid.UUID(snapshot["household_id"])
    paid = domain.History(live={(hid, "MONTHLY"): "PAID"})
    pending = domain.History(live={(hid, "MONTHLY"): "CALCULATED"})

    assert assess(snapshot, history=paid) == domain.LeftOut(hid, "ALREADY_PAID", "PAID")
    assert assess(snapshot, history=pending) == domain.LeftOut(hid, "IN_ANOTHER_RUN", "CALCULATED")


def test_a_retry_after_a_failure_is_a_new_attempt_with_a_new_payment_id() -> None:
    snapshot = household()
    hid = uuid.UUID(snapshot["household_id"])
    retried = assess(snapshot, history=domain.History(attempts={(hid, "MONTHLY"): 1}))

    assert isinstance(retried, domain.Planned)
    assert retried.lines[0][1] == 2
    first = domain.payment_id("COVID19_CT", "2020-07", hid, "MONTHLY", 1)
    assert first == domain.payment_id("COVID19_CT", "2020-07", hid, "MONTHLY", 1)
    assert first != domain.payment_id("COVID19_CT", "2020-07", hid, "MONTHLY", 2)


def test_an_exclusion_names_the_programme_that_paid_the_household() -> None:
    snapshot = household()
    hid = uuid.UUID(snapshot["household_id"])
    history = domain.History(excluded={hid: "FLOOD_2022"})

    left_out = assess(snapshot, INFLATION, "2022-12-10", history=history)

    assert isinstance(left_out, domain.LeftOut) and left_out.reason == "EXCLUDED_BY_FLOOD_2022"


def test_totals_by_group_roll_up_by_each_dimension() -> None:
    totals = domain.Totals()
    for snapshot in (household(), household(), household(province_code="17", poverty_level="POOR_2")):
        planned = assess(snapshot)
        assert isinstance(planned, domain.Planned)
        totals.add(planned)

    rows = totals.rows()
    assert totals.total_households == 3 and totals.lines == 3
    assert domain.roll_up(rows, "province_code") == [
        {"province_code": "12", "households": 2, "amount_riel": 1_184_000},
        {"province_code": "17", "households": 1, "amount_riel": 120_000 + 6 * 36_000 + 4 * 28_000},
    ]


def test_runs_move_forward_only_and_cancel_only_before_approval() -> None:
    assert domain.can_move(RunState.DRAFT, RunState.CALCULATED)
    assert domain.can_move(RunState.CALCULATED, RunState.CANCELLED)
    assert not domain.can_move(RunState.APPROVED, RunState.CANCELLED)
    assert not domain.can_move(RunState.RECONCILED, RunState.INSTRUCTED)
    assert domain.over_budget(10, 9) and not domain.over_budget(10, 10) and not domain.over_budget(10, None)


def test_a_programme_without_enrolment_pays_the_head_by_name() -> None:
    snapshot = household()
    unenrolled = COVID.model_copy(
        update={"target": COVID.target.model_copy(update={"requires_enrolment": False})}
    )

    planned = assess(snapshot, unenrolled, enrolment=None)

    assert isinstance(planned, domain.Planned)
    assert planned.payee == domain.Payee("សុខ ចាន់", "WING", None)


@pytest.mark.parametrize("key", ["2020-07", "2022-12", "2023-03", "2024-02"])
def test_the_projection_row_pays_what_the_validated_snapshot_pays(key: str) -> None:
    joined_late = member("2020-08-02", joined_on="2020-08-02")
    left_early = member("1970-01-01", relationship="SPOUSE", left_on="2020-06-01")
    disabled = member("2012-01-01", has_disability=True, lives_with_hiv=True, in_school=True)
    base = household()
    snapshot = household(
        household_id=base["household_id"],
        head_member_id=base["head_member_id"],
        members=[*base["members"], joined_late, left_early, disabled],
        location_history=[
            {"effective_from": "1900-01-01", "category": "RURAL"},
            {"effective_from": "2022-01-01", "category": "OTHER_URBAN"},
        ],
        card={"card_number": "c", "status": "ACTIVE", "issued_on": "2020-01-01", "valid_until": "2026-01-01"},
    )
    for programme in (COVID, INFLATION):
        payable_key = key if programme is COVID else "2022-12-10"
        planned = assess(snapshot, programme, payable_key)
        expected = calculate(programme, HouseholdSnapshot.model_validate(snapshot), payable_key)
        assert isinstance(planned, domain.Planned)
        paid = [(line.component, line.amount_riel, line.terms, line.explanation) for line, _ in planned.lines]
        assert paid == [(line.component, line.amount_riel, line.terms, line.explanation) for line in expected]


def test_the_fast_payment_ids_are_the_payment_ids() -> None:
    make = domain.payment_ids("COVID19_CT", "2020-07")
    for household_id in (uuid.uuid4() for _ in range(200)):
        for component, attempt in (("MONTHLY", 1), ("HIV", 2)):
            fast = make(household_id, component, attempt)
            assert fast == domain.payment_id("COVID19_CT", "2020-07", household_id, component, attempt)
            assert str(fast) == str(
                domain.payment_id("COVID19_CT", "2020-07", household_id, component, attempt)
            )


def test_payment_ids_follow_their_households_order() -> None:
    households = sorted(uuid.uuid4() for _ in range(1000))
    ids = [domain.payment_id("COVID19_CT", "2020-07", h, "MONTHLY", 1) for h in households]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert {i.version for i in ids} == {8}
    retry = domain.payment_id("COVID19_CT", "2020-07", households[0], "MONTHLY", 2)
    assert retry != ids[0]
