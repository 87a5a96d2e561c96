"""Programme versions (DOMAIN.md §5): routine programmes and top-ups share one model.

A programme version is data, not code: operators define and version it, the topups service
publishes it on ``programmes.topups.v1``, other services store it, and the benefit calculator
(``krousar_common.benefits``) reads it. Money is integer riel, never a float.

A payment is keyed by a string: the period ``YYYY-MM`` of a monthly programme or the payment
date ``YYYY-MM-DD`` of a programme paid on fixed dates.
"""

from collections.abc import Sequence
from datetime import date, timedelta
from enum import StrEnum
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from krousar_common.db import BIGINT_MAX
from krousar_common.events.households import LocationCategory, PovertyLevel


@lru_cache(maxsize=4096)
def first_day_of_period(period: str) -> date:
    """First day of a ``YYYY-MM`` period; ValueError when it is not one."""
    if len(period) != 7 or period[4] != "-" or not (period[:4] + period[5:]).isdigit():
        raise ValueError(f"period must be YYYY-MM, got {period!r}")
    return date(int(period[:4]), int(period[5:]), 1)


def _check_period(value: str) -> str:
    first_day_of_period(value)
    return value


def _check_payment_key(value: str) -> str:
    if len(value) == 7:
        first_day_of_period(value)
    else:
        date.fromisoformat(value)
    return value


Riel = Annotated[int, Field(strict=True, ge=0, le=BIGINT_MAX)]
StrictPositiveInt = Annotated[int, Field(strict=True, ge=1, le=BIGINT_MAX)]
Code = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]{1,39}$")]
Period = Annotated[str, AfterValidator(_check_period)]
PaymentKey = Annotated[
    str,
    AfterValidator(_check_payment_key),
    Field(description="A period YYYY-MM or a payment date YYYY-MM-DD."),
]


class ProgrammeKind(StrEnum):
    ROUTINE = "ROUTINE"
    TOPUP = "TOPUP"


class ProgrammeStatus(StrEnum):
    DRAFT = "DRAFT"
    ACTIVE = "ACTIVE"
    CLOSED = "CLOSED"


class _Model(BaseModel):
    # Operators write these definitions by hand: a misspelt field silently defaulting to 0 would
    # pay the wrong amount, so unknown fields are errors.
    model_config = ConfigDict(frozen=True, extra="forbid")


class EffectiveDated(_Model):
    effective_from: date
    effective_to: date | None = Field(None, description="Last day in force (inclusive); None = open-ended.")

    @model_validator(mode="after")
    def _to_not_before_from(self) -> "EffectiveDated":
        if self.effective_to is not None and self.effective_to < self.effective_from:
            raise ValueError(
                f"effective_to {self.effective_to} is before effective_from {self.effective_from}"
            )
        return self

    def in_force_on(self, day: date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day <= self.effective_to)


def _check_contiguous(items: Sequence[EffectiveDated]) -> None:
    """Each item starts the day after the previous one ends: no overlap, no gap."""
    for index, (previous, current) in enumerate(pairwise(items), start=1):
        if previous.effective_to is None:
            raise ValueError(f"[{index - 1}] is open-ended but [{index}] follows it")
        if current.effective_from != previous.effective_to + timedelta(days=1):
            raise ValueError(
                f"[{index}] starts {current.effective_from}; it must start the day after [{index - 1}] "
                f"ends ({previous.effective_to + timedelta(days=1)})"
            )


Dated = TypeVar("Dated", bound=EffectiveDated)


def _in_force(items: Sequence[Dated], day: date) -> Dated | None:
    for item in items:
        if item.in_force_on(day):
            return item
    return None


# --- household rate tables (COVID19_CT, top-ups) -------------------------------------------------


class Rates(_Model):
    base: Riel
    per_member: Riel
    per_vulnerable: Riel


class RateTable(EffectiveDated):
    rates: dict[LocationCategory, dict[PovertyLevel, Rates]]

    def missing_cells(
        self, locations: Sequence[LocationCategory], levels: Sequence[PovertyLevel]
    ) -> list[str]:
        return [f"{loc}/{lvl}" for loc in locations for lvl in levels if lvl not in self.rates.get(loc, {})]


# --- FAMILY_PACKAGE components ---------------------------------------------------------------------


class FamilyComponents(_Model):
    """Per-member component amounts; each component is its own payment line (DOMAIN §5.3)."""

    hiv_per_member: Riel = 28_000
    scholarship_age_6_14: Riel = Field(20_000, description="Per in-school child aged 6 to 14.")
    scholarship_age_15_17: Riel = Field(30_000, description="Per in-school child aged 15 to 17.")
    disability_per_member: Riel = Field(40_000, description="Configurable; 40,000 is the shipped default.")
    elderly_per_member: Riel = Field(40_000, description="Configurable; 40,000 is the shipped default.")
    household_base: Riel = Field(0, description="Configurable; 0 is the shipped default.")


# --- PWYC conditions -------------------------------------------------------------------------------


class ConditionKind(StrEnum):
    ANTENATAL_VISIT = "ANTENATAL_VISIT"
    FACILITY_DELIVERY = "FACILITY_DELIVERY"
    POSTNATAL_OR_VACCINATION = "POSTNATAL_OR_VACCINATION"


class ConditionRates(EffectiveDated):
    antenatal_visit: Riel
    facility_delivery: Riel
    delivery_paid_per_baby: bool = Field(
        description="True: facility_delivery is paid per baby born (twins twice); False: once per birth."
    )
    postnatal_or_vaccination: Riel

    def rate_for(self, kind: ConditionKind) -> int:
        if kind is ConditionKind.ANTENATAL_VISIT:
            return self.antenatal_visit
        if kind is ConditionKind.FACILITY_DELIVERY:
            return self.facility_delivery
        return self.postnatal_or_vaccination


class ConditionRules(_Model):
    rate_tables: list[ConditionRates] = Field(min_length=1)
    max_antenatal_visits_per_pregnancy: StrictPositiveInt = 4
    max_deliveries_per_birth: StrictPositiveInt = 1
    max_postnatal_or_vaccinations_per_child: StrictPositiveInt = 10
    postnatal_child_age_limit: StrictPositiveInt = Field(
        2, description="Postnatal checks and vaccinations until this age."
    )

    @field_validator("rate_tables")
    @classmethod
    def _contiguous(cls, tables: list[ConditionRates]) -> list[ConditionRates]:
        _check_contiguous(tables)
        return tables

    def rates_on(self, day: date) -> ConditionRates | None:
        return _in_force(self.rate_tables, day)

    def maximum(self, kind: ConditionKind) -> int:
        if kind is ConditionKind.ANTENATAL_VISIT:
            return self.max_antenatal_visits_per_pregnancy
        if kind is ConditionKind.FACILITY_DELIVERY:
            return self.max_deliveries_per_birth
        return self.max_postnatal_or_vaccinations_per_child


# --- calendars -------------------------------------------------------------------------------------


class MonthlyCalendar(_Model):
    type: Literal["MONTHLY"] = "MONTHLY"
    start: Period
    end: Period | None = Field(None, description="Last period paid; None = until closed.")
    available_from_day: int = Field(25, strict=True, ge=1, le=28)
    claim_window_days: StrictPositiveInt = 30

    @model_validator(mode="after")
    def _end_not_before_start(self) -> "MonthlyCalendar":
        if self.end is not None and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self

    def first_day(self, period: str) -> date:
        day = first_day_of_period(period)
        if period < self.start or (self.end is not None and period > self.end):
            raise ValueError(f"period {period} is outside the calendar {self.start}..{self.end or ''}")
        return day

    def claim_window(self, period: str) -> tuple[date, date]:
        """First and last day the money can be claimed; unclaimed after the last."""
        opens = self.first_day(period).replace(day=self.available_from_day)
        return opens, opens + timedelta(days=self.claim_window_days - 1)

    def first_payment_day(self) -> date:
        return first_day_of_period(self.start)

    def last_payment_day(self) -> date | None:
        return None if self.end is None else first_day_of_period(self.end)


class PaymentDatesCalendar(_Model):
    type: Literal["PAYMENT_DATES"] = "PAYMENT_DATES"
    payment_dates: list[date] = Field(min_length=1)
    claim_window_days: StrictPositiveInt = 30

    @field_validator("payment_dates")
    @classmethod
    def _increasing(cls, dates: list[date]) -> list[date]:
        for earlier, later in pairwise(dates):
            if later <= earlier:
                raise ValueError(f"payment dates must be increasing and unique: {later} follows {earlier}")
        return dates

    def first_day(self, payment_date: str) -> date:
        day = date.fromisoformat(payment_date)
        if day not in self.payment_dates:
            raise ValueError(f"{payment_date} is not a payment date of this programme")
        return day

    def claim_window(self, payment_date: str) -> tuple[date, date]:
        opens = self.first_day(payment_date)
        return opens, opens + timedelta(days=self.claim_window_days - 1)

    def first_payment_day(self) -> date:
        return self.payment_dates[0]

    def last_payment_day(self) -> date | None:
        return self.payment_dates[-1]


Calendar = Annotated[MonthlyCalendar | PaymentDatesCalendar, Field(discriminator="type")]


# --- target ----------------------------------------------------------------------------------------


def _covers(entry: str, paid_key: str) -> bool:
    """A month entry covers the period and every payment date in it; a date entry only that date."""
    return paid_key == entry or (len(entry) == 7 and paid_key.startswith(entry + "-"))


class Exclusion(_Model):
    """Households paid by ``programme_code`` in ``paid_in`` are not paid by this programme."""

    programme_code: Code
    paid_in: list[PaymentKey] = Field(min_length=1, description="The other programme's periods or dates.")
    applies_to: list[PaymentKey] | None = Field(
        None, description="This programme's payments the exclusion applies to; None = all of them."
    )

    def applies_to_payment(self, key: str) -> bool:
        return self.applies_to is None or key in self.applies_to

    def covers(self, programme_code: str, paid_key: str) -> bool:
        return programme_code == self.programme_code and any(_covers(e, paid_key) for e in self.paid_in)


class Target(_Model):
    poverty_levels: list[PovertyLevel] = Field(min_length=1)
    location_categories: list[LocationCategory] = Field(default_factory=lambda: list(LocationCategory))
    provinces: list[Annotated[str, Field(pattern=r"^\d{2}$")]] | None = None
    communes: list[Annotated[str, Field(pattern=r"^\d{6}$")]] | None = None
    requires_enrolment: bool = True
    requires_active_card: bool = True
    exclusions: list[Exclusion] = Field(default_factory=list)

    def covers_area(self, province_code: str, commune_code: str) -> bool:
        in_province = self.provinces is None or province_code in self.provinces
        return in_province and (self.communes is None or commune_code in self.communes)

    def exclusions_for(self, key: str) -> list[Exclusion]:
        return [e for e in self.exclusions if e.applies_to_payment(key)]


# --- the programme version -------------------------------------------------------------------------


class ProgrammeVersion(_Model):
    """One version of a programme. Exactly one benefit formula is set: ``rate_tables`` (household
    rates), ``components`` (FAMILY_PACKAGE lines) or ``conditions`` (PWYC entitlements)."""

    code: Code
    version: StrictPositiveInt
    kind: ProgrammeKind
    title: str = Field(min_length=1)
    legal_reference: str = Field(min_length=1)
    status: ProgrammeStatus = ProgrammeStatus.DRAFT
    # Field order matters: later validators read the calendar and target validated before them.
    calendar: Calendar
    target: Target
    rate_tables: list[RateTable] = Field(default_factory=list)
    components: FamilyComponents | None = None
    conditions: ConditionRules | None = None
    child_age_limit: StrictPositiveInt = Field(
        5, description="A vulnerable child is younger than this (configurable)."
    )
    budget_ceiling_riel: Riel | None = None

    @field_validator("target")
    @classmethod
    def _exclusions_name_own_payments(cls, target: Target, info: ValidationInfo) -> Target:
        calendar = info.data.get("calendar")
        for index, exclusion in enumerate(target.exclusions):
            if exclusion.programme_code == info.data.get("code"):
                raise ValueError(f"exclusions[{index}]: a programme cannot exclude its own payees")
            unknown = [k for k in exclusion.applies_to or [] if calendar and not _is_payment_of(calendar, k)]
            if unknown:
                raise ValueError(
                    f"exclusions[{index}].applies_to: {unknown[0]} is not a payment of this programme"
                )
        return target

    @field_validator("rate_tables")
    @classmethod
    def _rate_tables_cover_target_and_calendar(
        cls, tables: list[RateTable], info: ValidationInfo
    ) -> list[RateTable]:
        if not tables:
            return tables
        _check_contiguous(tables)
        target, calendar = info.data.get("target"), info.data.get("calendar")
        if target is not None:
            _check_cells(tables, target)
        if calendar is not None:
            _check_calendar_covered(tables, calendar)
        return tables

    @model_validator(mode="after")
    def _one_formula(self) -> "ProgrammeVersion":
        formulas = [bool(self.rate_tables), self.components is not None, self.conditions is not None]
        if formulas.count(True) != 1:
            raise ValueError("set exactly one of rate_tables, components, conditions")
        return self

    def payment_key(self, period_or_date: str | date) -> tuple[str, date]:
        """The payment key (``YYYY-MM`` or ``YYYY-MM-DD``) and the day its rules are evaluated on."""
        key = period_or_date.isoformat() if isinstance(period_or_date, date) else period_or_date
        return key, self.calendar.first_day(key)

    def rates_on(self, day: date, location: LocationCategory, level: PovertyLevel) -> Rates:
        table = _in_force(self.rate_tables, day)
        if table is None:
            raise ValueError(f"{self.code} v{self.version} has no rate table in force on {day}")
        try:
            return table.rates[location][level]
        except KeyError:
            raise ValueError(
                f"{self.code} v{self.version} has no rate for {location}/{level} on {day}"
            ) from None


def _is_payment_of(calendar: MonthlyCalendar | PaymentDatesCalendar, key: str) -> bool:
    try:
        calendar.first_day(key)
    except ValueError:
        return False
    return True


def _check_cells(tables: list[RateTable], target: Target) -> None:
    for index, table in enumerate(tables):
        missing = table.missing_cells(target.location_categories, target.poverty_levels)
        if missing:
            raise ValueError(f"[{index}] has no rates for targeted {', '.join(missing)}")


def _check_calendar_covered(
    tables: list[RateTable], calendar: MonthlyCalendar | PaymentDatesCalendar
) -> None:
    first, last = calendar.first_payment_day(), calendar.last_payment_day()
    if tables[0].effective_from > first:
        raise ValueError(f"no rates in force on the first payment day {first}")
    ends = tables[-1].effective_to
    if ends is not None and (last is None or ends < last):
        raise ValueError(f"no rates in force after {ends}, but the calendar pays until {last or 'closed'}")


def load_programme(path: str | Path) -> ProgrammeVersion:
    """Read one programme version from its JSON file (the seed and example definitions)."""
    return ProgrammeVersion.model_validate_json(Path(path).read_bytes())
