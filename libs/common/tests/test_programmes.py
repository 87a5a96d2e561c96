import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from krousar_common.events.households import LocationCategory, PovertyLevel
from krousar_common.programmes import (
    FamilyComponents,
    MonthlyCalendar,
    PaymentDatesCalendar,
    ProgrammeKind,
    ProgrammeVersion,
    first_day_of_period,
    load_programme,
)
from pydantic import ValidationError

SEED = Path(__file__).resolve().parents[3] / "services" / "topups" / "topups" / "seed"
SEED_FILES = [SEED / f"{code}.json" for code in ("COVID19_CT", "PWYC", "FAMILY_PACKAGE")] + [
    SEED / "examples" / f"{code}.json" for code in ("FLOOD_2022", "INFLATION_2022")
]
PP, OU, RURAL = LocationCategory.PHNOM_PENH, LocationCategory.OTHER_URBAN, LocationCategory.RURAL
L1, L2 = PovertyLevel.POOR_1, PovertyLevel.POOR_2


def seed_data(name: str = "COVID19_CT") -> dict[str, Any]:
    path = next(p for p in SEED_FILES if p.stem == name)
    return json.loads(path.read_text())


def make_programme_data(name: str = "COVID19_CT", **over: Any) -> dict[str, Any]:
    data = copy.deepcopy(seed_data(name))
    data.update(over)
    return data


def error_locs(exc: pytest.ExceptionInfo[ValidationError]) -> list[tuple[Any, ...]]:
    return [tuple(e["loc"]) for e in exc.value.errors()]


# --- seeds -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", SEED_FILES, ids=lambda p: p.stem)
def test_seed_loads_and_round_trips_through_json(path: Path) -> None:
    programme = load_programme(path)

    assert programme.code == path.stem
    assert ProgrammeVersion.model_validate_json(programme.model_dump_json()) == programme
    assert ProgrammeVersion.model_validate(programme.model_dump(mode="json")) == programme


def test_covid19_ct_seed_is_monthly_from_june_2020_to_march_2024() -> None:
    programme = load_programme(SEED / "COVID19_CT.json")

    assert programme.kind is ProgrammeKind.ROUTINE
    assert isinstance(programme.calendar, MonthlyCalendar)
    assert (programme.calendar.start, programme.calendar.end) == ("2020-06", "2024-03")
    assert [(t.effective_from, t.effective_to) for t in programme.rate_tables] == [
        (date(2020, 6, 1), date(2023, 12, 31)),
        (date(2024, 1, 1), date(2024, 3, 31)),
    ]


def test_top_up_examples_pay_on_the_domain_dates() -> None:
    flood = load_programme(SEED / "examples" / "FLOOD_2022.json")
    inflation = load_programme(SEED / "examples" / "INFLATION_2022.json")

    assert isinstance(flood.calendar, PaymentDatesCalendar)
    assert isinstance(inflation.calendar, PaymentDatesCalendar)
    assert flood.calendar.payment_dates == [date(2022, 12, 10), date(2023, 1, 10), date(2023, 2, 10)]
    assert inflation.calendar.payment_dates == [date(2022, 12, 10), date(2023, 4, 10), date(2023, 7, 10)]
    assert flood.kind is inflation.kind is ProgrammeKind.TOPUP


def test_family_components_ship_the_domain_defaults() -> None:
    assert FamilyComponents() == FamilyComponents(
        hiv_per_member=28_000,
        scholarship_age_6_14=20_000,
        scholarship_age_15_17=30_000,
        disability_per_member=40_000,
        elderly_per_member=40_000,
        household_base=0,
    )
    assert load_programme(SEED / "FAMILY_PACKAGE.json").components == FamilyComponents()


# --- calendars -------------------------------------------------------------------------------------


def test_monthly_claim_window_opens_on_the_25th_for_30_days() -> None:
    calendar = load_programme(SEED / "COVID19_CT.json").calendar

    assert calendar.claim_window("2020-06") == (date(2020, 6, 25), date(2020, 7, 24))
    assert calendar.claim_window("2024-03") == (date(2024, 3, 25), date(2024, 4, 23))


@pytest.mark.parametrize("period", ["2020-05", "2024-04", "2020-13", "2020-6", "June"])
def test_monthly_calendar_refuses_periods_outside_it(period: str) -> None:
    calendar = load_programme(SEED / "COVID19_CT.json").calendar

    with pytest.raises(ValueError):
        calendar.first_day(period)


def test_payment_date_claim_window_starts_on_the_payment_date() -> None:
    calendar = load_programme(SEED / "examples" / "FLOOD_2022.json").calendar

    assert calendar.claim_window("2022-12-10") == (date(2022, 12, 10), date(2023, 1, 8))
    with pytest.raises(ValueError, match="not a payment date"):
        calendar.first_day("2022-12-11")


def test_payment_key_accepts_a_date_or_its_iso_string() -> None:
    flood = load_programme(SEED / "examples" / "FLOOD_2022.json")

    assert flood.payment_key(date(2023, 1, 10)) == ("2023-01-10", date(2023, 1, 10))
    assert flood.payment_key("2023-01-10") == ("2023-01-10", date(2023, 1, 10))


def test_first_day_of_period() -> None:
    assert first_day_of_period("2024-01") == date(2024, 1, 1)
    with pytest.raises(ValueError, match="YYYY-MM"):
        first_day_of_period("2024-1")


# --- rates -----------------------------------------------------------------------------------------


def test_rates_switch_on_1_january_2024() -> None:
    programme = load_programme(SEED / "COVID19_CT.json")

    assert programme.rates_on(date(2023, 12, 31), PP, L1).per_member == 52_000
    assert programme.rates_on(date(2024, 1, 1), PP, L1).per_member == 0


def test_rates_on_names_what_is_missing() -> None:
    programme = load_programme(SEED / "COVID19_CT.json")

    with pytest.raises(ValueError, match="no rate table in force on 2024-04-01"):
        programme.rates_on(date(2024, 4, 1), PP, L1)
    with pytest.raises(ValueError, match="RURAL/NOT_POOR"):
        programme.rates_on(date(2023, 1, 1), RURAL, PovertyLevel.NOT_POOR)


# --- validation: money -----------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [120_000.0, 120_000.5, "120000", True, -1, 2**63])
def test_money_must_be_a_non_negative_int_that_storage_holds(bad: Any) -> None:
    data = make_programme_data()
    data["rate_tables"][0]["rates"]["PHNOM_PENH"]["POOR_1"]["base"] = bad

    with pytest.raises(ValidationError) as exc:
        ProgrammeVersion.model_validate(data)

    assert ("rate_tables", 0, "rates", "PHNOM_PENH", "POOR_1", "base") in error_locs(exc)


def test_money_float_is_rejected_from_json_too() -> None:
    text = json.dumps(make_programme_data(budget_ceiling_riel=1.0))

    with pytest.raises(ValidationError) as exc:
        ProgrammeVersion.model_validate_json(text)

    assert ("budget_ceiling_riel",) in error_locs(exc)


def test_component_amounts_are_strict_ints() -> None:
    with pytest.raises(ValidationError) as exc:
        FamilyComponents(hiv_per_member=28_000.0)  # type: ignore[arg-type]

    assert ("hiv_per_member",) in error_locs(exc)


# --- validation: dates and tables ------------------------------------------------------------------


def test_effective_to_before_effective_from_is_rejected() -> None:
    data = make_programme_data()
    data["rate_tables"][0]["effective_to"] = "2020-05-31"

    with pytest.raises(ValidationError, match="before effective_from") as exc:
        ProgrammeVersion.model_validate(data)

    assert ("rate_tables", 0) in error_locs(exc)


@pytest.mark.parametrize(
    ("second_from", "message"),
    [("2023-12-31", "must start the day after"), ("2024-01-02", "must start the day after")],
)
def test_rate_tables_must_neither_overlap_nor_leave_gaps(second_from: str, message: str) -> None:
    data = make_programme_data()
    data["rate_tables"][1]["effective_from"] = second_from

    with pytest.raises(ValidationError, match=message) as exc:
        ProgrammeVersion.model_validate(data)

    assert ("rate_tables",) in error_locs(exc)


def test_rate_tables_must_cover_every_targeted_cell() -> None:
    data = make_programme_data()
    del data["rate_tables"][1]["rates"]["RURAL"]["POOR_2"]

    with pytest.raises(ValidationError, match=r"\[1\] has no rates for targeted RURAL/POOR_2"):
        ProgrammeVersion.model_validate(data)


def test_rate_tables_must_cover_the_calendar() -> None:
    data = make_programme_data()
    data["calendar"]["end"] = "2024-06"

    with pytest.raises(ValidationError, match="no rates in force after 2024-03-31"):
        ProgrammeVersion.model_validate(data)


def test_monthly_calendar_end_not_before_start() -> None:
    with pytest.raises(ValidationError, match="before start"):
        MonthlyCalendar(start="2024-03", end="2020-06")


@pytest.mark.parametrize("dates", [["2023-01-10", "2022-12-10"], ["2022-12-10", "2022-12-10"], []])
def test_payment_dates_must_be_increasing_and_present(dates: list[str]) -> None:
    data = make_programme_data("FLOOD_2022")
    data["calendar"]["payment_dates"] = dates

    with pytest.raises(ValidationError) as exc:
        ProgrammeVersion.model_validate(data)

    assert ("calendar", "PAYMENT_DATES", "payment_dates") in error_locs(exc)


def test_bad_period_names_the_field() -> None:
    data = make_programme_data()
    data["calendar"]["start"] = "2020-13"

    with pytest.raises(ValidationError) as exc:
        ProgrammeVersion.model_validate(data)

    assert ("calendar", "MONTHLY", "start") in error_locs(exc)


# --- validation: shape ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "over",
    [{"components": FamilyComponents().model_dump()}, {"rate_tables": []}],
    ids=["two formulas", "no formula"],
)
def test_exactly_one_benefit_formula(over: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="exactly one of rate_tables, components, conditions"):
        ProgrammeVersion.model_validate(make_programme_data(**over))


def test_unknown_fields_are_rejected() -> None:
    data = make_programme_data()
    data["rate_tables"][0]["rates"]["RURAL"]["POOR_1"]["per_vulnrable"] = 1

    with pytest.raises(ValidationError) as exc:
        ProgrammeVersion.model_validate(data)

    assert ("rate_tables", 0, "rates", "RURAL", "POOR_1", "per_vulnrable") in error_locs(exc)


def test_programme_versions_are_immutable() -> None:
    programme = load_programme(SEED / "COVID19_CT.json")

    with pytest.raises(ValidationError):
        programme.status = "CLOSED"  # type: ignore[assignment]


@pytest.mark.parametrize("code", ["covid", "1ABC", "A B"])
def test_codes_are_upper_snake_case(code: str) -> None:
    with pytest.raises(ValidationError) as exc:
        ProgrammeVersion.model_validate(make_programme_data(code=code))

    assert ("code",) in error_locs(exc)


def test_target_codes_are_zero_padded() -> None:
    data = make_programme_data("FLOOD_2022")
    data["target"]["communes"] = ["80101"]

    with pytest.raises(ValidationError) as exc:
        ProgrammeVersion.model_validate(data)

    assert ("target", "communes", 0) in error_locs(exc)


# --- target and exclusions -------------------------------------------------------------------------


def test_flood_targets_its_communes_only() -> None:
    target = load_programme(SEED / "examples" / "FLOOD_2022.json").target

    assert target.covers_area("08", "080101")
    assert not target.covers_area("08", "080201")


def test_inflation_excludes_december_flood_payees_from_its_first_payment_only() -> None:
    inflation = load_programme(SEED / "examples" / "INFLATION_2022.json")

    [exclusion] = inflation.target.exclusions_for("2022-12-10")
    assert inflation.target.exclusions_for("2023-04-10") == []
    assert inflation.target.exclusions_for("2023-07-10") == []
    assert exclusion.covers("FLOOD_2022", "2022-12-10")
    assert not exclusion.covers("FLOOD_2022", "2023-01-10")
    assert not exclusion.covers("COVID19_CT", "2022-12")


def test_exclusion_on_a_date_that_is_not_a_payment_names_the_target() -> None:
    data = make_programme_data("INFLATION_2022")
    data["target"]["exclusions"][0]["applies_to"] = ["2022-12-11"]

    with pytest.raises(ValidationError, match="2022-12-11 is not a payment of this programme") as exc:
        ProgrammeVersion.model_validate(data)

    assert ("target",) in error_locs(exc)


def test_a_programme_cannot_exclude_its_own_payees() -> None:
    data = make_programme_data("INFLATION_2022")
    data["target"]["exclusions"][0]["programme_code"] = "INFLATION_2022"

    with pytest.raises(ValidationError, match="cannot exclude its own payees"):
        ProgrammeVersion.model_validate(data)


def test_exclusion_paid_in_must_be_a_period_or_a_date() -> None:
    data = make_programme_data("INFLATION_2022")
    data["target"]["exclusions"][0]["paid_in"] = ["December"]

    with pytest.raises(ValidationError) as exc:
        ProgrammeVersion.model_validate(data)

    assert ("target", "exclusions", 0, "paid_in", 0) in error_locs(exc)
