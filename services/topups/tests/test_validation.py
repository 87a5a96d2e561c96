import copy
import json
from pathlib import Path
from typing import Any

import pytest
from krousar_common.programmes import ProgrammeVersion
from topups.validation import FieldError, check_topup

EXAMPLES = Path(__file__).resolve().parents[1] / "topups" / "seed" / "examples"


def example(code: str, **over: Any) -> dict[str, Any]:
    data = json.loads((EXAMPLES / f"{code}.json").read_text())
    return copy.deepcopy(data) | over


def programme(data: dict[str, Any]) -> ProgrammeVersion:
    return ProgrammeVersion.model_validate(data)


FLOOD = programme(example("FLOOD_2022"))
CATALOGUE = {"FLOOD_2022": FLOOD}


def fields(errors: list[FieldError]) -> list[str]:
    return [e.field for e in errors]


def test_the_examples_are_valid_top_ups() -> None:
    assert check_topup(FLOOD, {}) == []
    assert check_topup(programme(example("INFLATION_2022")), CATALOGUE) == []


def test_an_exclusion_must_name_an_existing_top_up() -> None:
    errors = check_topup(programme(example("INFLATION_2022")), {})

    assert fields(errors) == ["target.exclusions.0.programme_code"]
    assert "FLOOD_2022" in errors[0].message


def test_an_exclusion_must_name_a_month_or_date_the_other_top_up_pays() -> None:
    data = example("INFLATION_2022")
    data["target"]["exclusions"][0]["paid_in"] = ["2022-12", "2022-11", "2023-01-11"]

    assert fields(check_topup(programme(data), CATALOGUE)) == [
        "target.exclusions.0.paid_in.1",
        "target.exclusions.0.paid_in.2",
    ]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ({"communes": ["129999"]}, ["target.communes.0"]),
        ({"provinces": ["26"]}, ["target.provinces.0"]),
        ({"provinces": ["01", "25"]}, []),
        ({"provinces": ["08"], "communes": ["080101", "121101"]}, ["target.communes.1"]),
    ],
)
def test_target_areas_must_exist(target: dict[str, Any], expected: list[str]) -> None:
    data = example("FLOOD_2022")
    data["target"] = {**data["target"], "communes": None, **target}

    assert fields(check_topup(programme(data), {})) == expected


def test_routine_kind_is_refused() -> None:
    assert fields(check_topup(programme(example("FLOOD_2022", kind="ROUTINE")), {})) == ["kind"]
