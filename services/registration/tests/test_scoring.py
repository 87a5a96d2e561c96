import json
from collections.abc import Callable
from datetime import date
from importlib import resources
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st
from krousar_common.events.households import MemberSnapshot, PovertyLevel, Relationship, Sex
from registration.domain.scoring import (
    Adjustment,
    ChoiceQuestion,
    InvalidAnswersError,
    MemberFacts,
    NumberQuestion,
    Question,
    Questionnaire,
    ScoringModel,
    ScoringModelNotFoundError,
    YesNoQuestion,
    age_on,
    apply_special_circumstances,
    load_model,
    model_for_questionnaire,
    parse_model,
    score_household,
    validate_answers,
)

INTERVIEW = date(2024, 3, 1)
RURAL = load_model("SYNTH-RURAL-1")
URBAN = load_model("SYNTH-URBAN-1")
LEVEL_RANK = {PovertyLevel.NOT_POOR: 0, PovertyLevel.POOR_2: 1, PovertyLevel.POOR_1: 2}


def member(age: int, *, in_school: bool = False) -> MemberFacts:
    """A member who is exactly ``age`` on the interview date."""
    return MemberFacts(INTERVIEW.replace(year=INTERVIEW.year - age), in_school)


def rural_answers(**over: Any) -> dict[str, Any]:
    answers = {
        "roof": "TILE_OR_CONCRETE",
        "walls": "BRICK_OR_CONCRETE",
        "floor_area_m2": 100,
        "house_condition": "GOOD",
        "land_ha": 2,
        "cattle": 5,
        "transport": "CAR_OR_TRACTOR",
        "valuables": 5,
        "food_shortage_months": 0,
        "shock_12m": False,
    }
    return answers | over


def urban_answers(**over: Any) -> dict[str, Any]:
    answers = rural_answers() | {"tenure": "OWNED", "earners": 2}
    del answers["land_ha"], answers["cattle"]
    return answers | over


def points(model: ScoringModel, item: str, answers: dict[str, Any], members: list[MemberFacts]) -> int:
    assessment = score_household(model, answers, members, INTERVIEW)
    return next(line.points for line in assessment.items if line.item == item)


# --- the model files ------------------------------------------------------------------------


def test_shipped_models() -> None:
    for model, questionnaire in ((RURAL, Questionnaire.RURAL), (URBAN, Questionnaire.URBAN)):
        assert model.synthetic
        assert model.questionnaire == questionnaire
        assert model.cutoffs == ((PovertyLevel.POOR_1, 40), (PovertyLevel.POOR_2, 28))
        assert model.max_score == 64
        assert model_for_questionnaire(questionnaire) == model
        assert model_for_questionnaire(questionnaire.value, on=INTERVIEW) == model
    assert {q.key for q in RURAL.questions} - {q.key for q in URBAN.questions} == {"land_ha", "cattle"}
    assert {q.key for q in URBAN.questions} - {q.key for q in RURAL.questions} == {"tenure", "earners"}


def model_json(model_id: str) -> dict[str, Any]:
    path = resources.files("registration").joinpath("data", "scoring", f"{model_id}.json")
    return json.loads(path.read_text(encoding="utf-8"))


def rural_model_json() -> dict[str, Any]:
    return model_json("SYNTH-RURAL-1")


def test_model_file_round_trips() -> None:
    assert parse_model(rural_model_json()) == RURAL


@pytest.mark.parametrize(
    "break_it",
    [
        lambda raw: raw["items"][0].update(kind="slider"),
        lambda raw: raw["items"][2]["bands"][0].update(op="~"),
        lambda raw: raw["items"].append(raw["items"][0]),  # duplicate key
        lambda raw: raw.update(cutoffs={"POOR_1": 28, "POOR_2": 40}),
        lambda raw: raw.update(cutoffs={"POOR_1": 40}),
        lambda raw: raw.update(questionnaire="PERI_URBAN"),
        lambda raw: raw["items"][0].pop("points"),
    ],
)
def test_malformed_models_are_rejected(break_it: Callable[[dict[str, Any]], object]) -> None:
    raw = rural_model_json()
    break_it(raw)
    with pytest.raises((KeyError, TypeError, ValueError)):
        parse_model(raw)


@pytest.mark.parametrize("model_id", ["SYNTH-RURAL-9", "../scoring/SYNTH-RURAL-1", ""])
def test_unknown_model(model_id: str) -> None:
    with pytest.raises(ScoringModelNotFoundError):
        load_model(model_id)


def test_no_model_before_its_effective_date() -> None:
    with pytest.raises(ScoringModelNotFoundError):
        model_for_questionnaire(Questionnaire.RURAL, on=date(1999, 12, 31))


@pytest.mark.parametrize(
    ("score", "level"),
    [
        (0, PovertyLevel.NOT_POOR),
        (27, PovertyLevel.NOT_POOR),
        (28, PovertyLevel.POOR_2),
        (39, PovertyLevel.POOR_2),
        (40, PovertyLevel.POOR_1),
        (64, PovertyLevel.POOR_1),
    ],
)
def test_level_cutoffs(score: int, level: PovertyLevel) -> None:
    assert RURAL.level_for(score) == level
    assert URBAN.level_for(score) == level


# --- hand-computed households, one per model and level ---------------------------------------

HAND_COMPUTED = [
    pytest.param(
        RURAL,
        rural_answers(
            roof="THATCH",  # 6
            walls="WOOD_OR_METAL",  # 3
            floor_area_m2=20,  # 6.67 m² each: 2
            house_condition="POOR",  # 4
            land_ha=0.3,  # 5
            cattle=1,  # 2
            transport="BICYCLE",  # 3
            valuables=1,  # 1
            food_shortage_months=2,  # 3
            shock_12m=True,  # 5
        ),
        # 2 dependants per working-age member: 3; an 8-year-old out of school: 4
        [member(44), member(8), member(12, in_school=True)],
        41,
        PovertyLevel.POOR_1,
        id="rural-poor-1",
    ),
    pytest.param(
        RURAL,
        rural_answers(
            roof="METAL_OR_FIBRE",  # 3
            walls="WOOD_OR_METAL",  # 3
            floor_area_m2=16,  # 4 m² each: 4
            house_condition="FAIR",  # 2
            land_ha=0.5,  # 2
            cattle=2,  # 2
            transport="MOTORBIKE",  # 1
            valuables=2,  # 1
            food_shortage_months=1,  # 3
            shock_12m=True,  # 5
        ),
        [member(35), member(33), member(7, in_school=True), member(3)],  # ratio 1: 3
        29,
        PovertyLevel.POOR_2,
        id="rural-poor-2",
    ),
    pytest.param(
        RURAL,
        rural_answers(house_condition="FAIR", valuables=1),  # 2 + 1
        [member(45), member(43), member(16), member(12, in_school=True)],  # ratio 1/3: 0
        3,
        PovertyLevel.NOT_POOR,
        id="rural-not-poor",
    ),
    pytest.param(
        URBAN,
        urban_answers(
            roof="METAL_OR_FIBRE",  # 3
            walls="THATCH_OR_BAMBOO",  # 6
            floor_area_m2=10,  # 2.5 m² each: 6
            house_condition="POOR",  # 4
            tenure="INFORMAL",  # 8
            earners=1,  # 2
            transport="NONE",  # 4
            valuables=1,  # 1
        ),
        # 3 dependants per working-age member: 6; a 6-year-old out of school: 4
        [member(30), member(6), member(2), member(1)],
        44,
        PovertyLevel.POOR_1,
        id="urban-poor-1",
    ),
    pytest.param(
        URBAN,
        urban_answers(
            roof="METAL_OR_FIBRE",  # 3
            walls="WOOD_OR_METAL",  # 3
            floor_area_m2=18,  # 6 m² each: 2
            house_condition="FAIR",  # 2
            tenure="RENTED",  # 5
            earners=0,  # 4
            transport="BICYCLE",  # 3
            valuables=2,  # 1
            food_shortage_months=3,  # 6
        ),
        [member(68), member(70), member(14, in_school=True)],  # nobody of working age: 8
        37,
        PovertyLevel.POOR_2,
        id="urban-poor-2",
    ),
    pytest.param(
        URBAN,
        urban_answers(transport="MOTORBIKE", shock_12m=True),  # 1 + 5
        [member(30), member(28)],
        6,
        PovertyLevel.NOT_POOR,
        id="urban-not-poor",
    ),
]


@pytest.mark.parametrize(("model", "answers", "members", "score", "level"), HAND_COMPUTED)
def test_hand_computed_households(
    model: ScoringModel, answers: dict[str, Any], members: list[MemberFacts], score: int, level: PovertyLevel
) -> None:
    assessment = score_household(model, answers, members, INTERVIEW)
    assert (assessment.model_id, assessment.score, assessment.model_level) == (model.model_id, score, level)
    assert [line.item for line in assessment.items] == [item.key for item in model.items]


def test_breakdown_explains_each_line() -> None:
    answers = rural_answers(roof="THATCH", floor_area_m2=20, land_ha=0.3)
    lines = score_household(RURAL, answers, [member(44), member(8), member(12)], INTERVIEW).items
    explained = {line.item: (line.value, line.points) for line in lines}
    assert explained["roof"] == ("THATCH", 6)
    assert explained["floor_area_m2"] == (6.67, 2)
    assert explained["land_ha"] == (0.3, 5)
    assert explained["dependency_ratio"] == (2.0, 3)
    assert explained["school_age_not_in_school"] == (2, 4)


def test_member_snapshots_can_be_scored() -> None:
    head = MemberSnapshot(
        member_id=uuid4(),
        name_km="សុខ ដារ៉ា",
        sex=Sex.F,
        date_of_birth=date(1980, 5, 1),
        relationship=Relationship.HEAD,
    )
    assert score_household(RURAL, rural_answers(), [head], INTERVIEW).score == 0


# --- item bands -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("area", "members", "expected"),
    [(14.9, 5, 6), (15, 5, 4), (24.9, 5, 4), (25, 5, 2), (49.9, 5, 2), (50, 5, 0), (0, 1, 6), (9.99, 1, 2)],
)
def test_floor_area_per_member(area: float, members: int, expected: int) -> None:
    household = [member(30)] * members
    assert points(RURAL, "floor_area_m2", rural_answers(floor_area_m2=area), household) == expected


@pytest.mark.parametrize(
    ("item", "table"),
    [
        ("land_ha", [(0, 8), (0.0, 8), (0.1, 5), (0.49, 5), (0.5, 2), (0.99, 2), (1, 0), (12.5, 0)]),
        ("cattle", [(0, 4), (1, 2), (2, 2), (3, 0)]),
        ("valuables", [(0, 3), (1, 1), (2, 1), (3, 0)]),
        ("food_shortage_months", [(0, 0), (1, 3), (2, 3), (3, 6), (12, 6)]),
    ],
)
def test_rural_numeric_bands(item: str, table: list[tuple[float, int]]) -> None:
    for answer, expected in table:
        assert points(RURAL, item, rural_answers(**{item: answer}), [member(30)]) == expected, answer


@pytest.mark.parametrize(("earners", "expected"), [(0, 4), (1, 2), (2, 0), (7, 0)])
def test_urban_earners(earners: int, expected: int) -> None:
    assert points(URBAN, "earners", urban_answers(earners=earners), [member(30)]) == expected


@pytest.mark.parametrize(("tenure", "expected"), [("INFORMAL", 8), ("RENTED", 5), ("OWNED", 0)])
def test_urban_tenure(tenure: str, expected: int) -> None:
    assert points(URBAN, "tenure", urban_answers(tenure=tenure), [member(30)]) == expected


# --- derived items --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ages", "expected"),
    [
        ([40], 0),
        ([40, 64], 0),
        ([40, 10], 3),  # ratio 1
        ([40, 65], 3),  # 65 is a dependant
        ([40, 10, 5], 3),  # ratio 2 is not above 2
        ([40, 10, 5, 1], 6),
        ([40, 50, 10], 0),  # ratio 1/2
        ([70, 80], 8),
        ([10], 8),
        ([14, 66], 8),
    ],
)
def test_dependency_ratio(ages: list[int], expected: int) -> None:
    household = [member(age, in_school=True) for age in ages]
    assert points(RURAL, "dependency_ratio", rural_answers(), household) == expected


def test_dependency_ratio_ages_on_the_interview_date() -> None:
    turns_15_today = MemberFacts(date(2009, 3, 1), in_school=True)
    turns_15_tomorrow = MemberFacts(date(2009, 3, 2), in_school=True)
    assert points(RURAL, "dependency_ratio", rural_answers(), [member(40), turns_15_today]) == 0
    assert points(RURAL, "dependency_ratio", rural_answers(), [member(40), turns_15_tomorrow]) == 3


@pytest.mark.parametrize(
    ("age", "in_school", "expected"),
    [(5, False, 0), (6, False, 4), (10, False, 4), (14, False, 4), (15, False, 0), (10, True, 0)],
)
def test_school_age_child_not_in_school(age: int, in_school: bool, expected: int) -> None:
    household = [member(40), member(age, in_school=in_school)]
    assert points(RURAL, "school_age_not_in_school", rural_answers(), household) == expected


@pytest.mark.parametrize(
    ("born", "on", "age"),
    [
        (date(2008, 2, 29), date(2023, 2, 28), 14),
        (date(2008, 2, 29), date(2023, 3, 1), 15),
        (date(2008, 2, 29), date(2024, 2, 29), 16),
        (date(1990, 12, 31), date(2024, 12, 30), 33),
        (date(1990, 12, 31), date(2024, 12, 31), 34),
    ],
)
def test_age_on(born: date, on: date, age: int) -> None:
    assert age_on(born, on) == age


def test_household_needs_members_born_by_the_interview() -> None:
    with pytest.raises(ValueError):
        score_household(RURAL, rural_answers(), [], INTERVIEW)
    with pytest.raises(ValueError):
        score_household(RURAL, rural_answers(), [member(30), MemberFacts(date(2024, 3, 2))], INTERVIEW)


# --- validation -----------------------------------------------------------------------------


def test_valid_answers_have_no_errors() -> None:
    assert validate_answers(RURAL, rural_answers()) == []
    assert validate_answers(URBAN, urban_answers()) == []


def test_answer_of_the_other_questionnaire_names_the_field() -> None:
    errors = validate_answers(RURAL, rural_answers(tenure="OWNED"))
    assert errors == [("tenure", "is not a question of the RURAL questionnaire (SYNTH-RURAL-1)")]
    assert [field for field, _ in validate_answers(URBAN, urban_answers(land_ha=1))] == ["land_ha"]


def test_missing_answer() -> None:
    answers = rural_answers()
    del answers["walls"]
    assert validate_answers(RURAL, answers) == [("walls", "is required")]


def test_invalid_choice_names_the_allowed_values() -> None:
    [(field, message)] = validate_answers(RURAL, rural_answers(roof="PALM"))
    assert field == "roof"
    assert all(value in message for value in ("THATCH", "METAL_OR_FIBRE", "TILE_OR_CONCRETE"))


@pytest.mark.parametrize(
    ("field", "answer", "message"),
    [
        ("land_ha", "two", "must be a number"),
        ("land_ha", True, "must be a number"),
        ("land_ha", float("nan"), "must be a number"),
        ("land_ha", -0.1, "must be at least 0"),
        ("cattle", 1.5, "must be a whole number"),
        ("food_shortage_months", 13, "must be at most 12"),
        ("shock_12m", "yes", "must be true or false"),
        ("shock_12m", 1, "must be true or false"),
        ("transport", None, "must be one of NONE, BICYCLE, MOTORBIKE, CAR_OR_TRACTOR"),
    ],
)
def test_invalid_answers(field: str, answer: object, message: str) -> None:
    assert validate_answers(RURAL, rural_answers(**{field: answer})) == [(field, message)]


def test_whole_number_written_as_float_is_accepted() -> None:
    assert validate_answers(RURAL, rural_answers(cattle=2.0)) == []


def test_a_number_is_shown_as_written_whatever_was_scored_before() -> None:
    score_household(RURAL, rural_answers(cattle=2.0, land_ha=1.0), [member(30)], INTERVIEW)
    lines = score_household(RURAL, rural_answers(cattle=2, land_ha=1), [member(30)], INTERVIEW).items
    shown = {line.item: line.value for line in lines}
    assert (type(shown["cattle"]), type(shown["land_ha"])) == (int, int)
    assert validate_answers(RURAL, rural_answers(cattle=2.5)) == [("cattle", "must be a whole number")]


def test_scoring_invalid_answers_raises_with_the_errors() -> None:
    with pytest.raises(InvalidAnswersError) as raised:
        score_household(RURAL, rural_answers(roof="PALM", tenure="OWNED"), [member(30)], INTERVIEW)
    assert [field for field, _ in raised.value.errors] == ["roof", "tenure"]


# --- special circumstances ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "direction", "expected"),
    [
        (PovertyLevel.NOT_POOR, Adjustment.UP, PovertyLevel.POOR_2),
        (PovertyLevel.POOR_2, "UP", PovertyLevel.POOR_1),
        (PovertyLevel.POOR_1, Adjustment.DOWN, PovertyLevel.POOR_2),
        (PovertyLevel.POOR_2, "DOWN", PovertyLevel.NOT_POOR),
    ],
)
def test_special_circumstances_move_one_step(
    level: PovertyLevel, direction: str, expected: PovertyLevel
) -> None:
    assert apply_special_circumstances(level, direction) == expected


@pytest.mark.parametrize(
    ("level", "direction"),
    [(PovertyLevel.POOR_1, "UP"), (PovertyLevel.NOT_POOR, "DOWN"), (PovertyLevel.POOR_2, "SIDEWAYS")],
)
def test_special_circumstances_cannot_leave_the_scale(level: PovertyLevel, direction: str) -> None:
    with pytest.raises(ValueError):
        apply_special_circumstances(level, direction)


# --- properties -----------------------------------------------------------------------------


def answer_strategy(question: Question) -> st.SearchStrategy[Any]:
    if isinstance(question, ChoiceQuestion):
        return st.sampled_from(list(question.points))
    if isinstance(question, YesNoQuestion):
        return st.booleans()
    assert isinstance(question, NumberQuestion)
    upper = 12 if question.maximum is not None else 40
    if question.integer:
        return st.integers(min_value=0, max_value=upper)
    return st.integers(min_value=0, max_value=200) | st.floats(min_value=0, max_value=200, allow_nan=False)


def answers_for(model: ScoringModel) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({q.key: answer_strategy(q) for q in model.questions})


members_strategy = st.lists(
    st.builds(MemberFacts, st.dates(min_value=date(1920, 1, 1), max_value=INTERVIEW), st.booleans()),
    min_size=1,
    max_size=12,
)
households = st.sampled_from([RURAL, URBAN]).flatmap(
    lambda model: st.tuples(st.just(model), answers_for(model), members_strategy)
)


@given(households)
def test_score_is_the_sum_of_item_points_within_bounds(
    household: tuple[ScoringModel, dict[str, Any], list[MemberFacts]],
) -> None:
    model, answers, members = household
    assessment = score_household(model, answers, members, INTERVIEW)
    assert assessment.score == sum(line.points for line in assessment.items)
    assert 0 <= assessment.score <= model.max_score
    assert all(line.points >= 0 for line in assessment.items)


@given(households)
def test_level_follows_the_cutoffs(household: tuple[ScoringModel, dict[str, Any], list[MemberFacts]]) -> None:
    model, answers, members = household
    assessment = score_household(model, answers, members, INTERVIEW)
    expected = (
        PovertyLevel.POOR_1
        if assessment.score >= 40
        else PovertyLevel.POOR_2
        if assessment.score >= 28
        else PovertyLevel.NOT_POOR
    )
    assert assessment.model_level == expected


@given(households)
def test_remembered_item_scores_equal_a_fresh_models(
    household: tuple[ScoringModel, dict[str, Any], list[MemberFacts]],
) -> None:
    """Items remember their scores across households; a model just read has remembered nothing."""
    model, answers, members = household
    fresh = parse_model(model_json(model.model_id))
    remembered = score_household(model, answers, members, INTERVIEW)
    computed = score_household(fresh, answers, members, INTERVIEW)
    assert remembered == computed
    assert [type(line.value) for line in remembered.items] == [type(line.value) for line in computed.items]


@given(st.sampled_from([RURAL, URBAN]), st.integers(-10, 100), st.integers(-10, 100))
def test_level_is_monotonic_in_score(model: ScoringModel, low: int, high: int) -> None:
    low, high = sorted((low, high))
    assert LEVEL_RANK[model.level_for(low)] <= LEVEL_RANK[model.level_for(high)]


@given(households)
def test_a_thatch_roof_never_lowers_the_score(
    household: tuple[ScoringModel, dict[str, Any], list[MemberFacts]],
) -> None:
    model, answers, members = household
    before = score_household(model, answers, members, INTERVIEW).score
    after = score_household(model, answers | {"roof": "THATCH"}, members, INTERVIEW).score
    assert after >= before


@given(households, st.integers(min_value=0, max_value=12))
def test_more_food_shortage_never_lowers_the_score(
    household: tuple[ScoringModel, dict[str, Any], list[MemberFacts]], extra_months: int
) -> None:
    model, answers, members = household
    worse = answers | {"food_shortage_months": min(12, answers["food_shortage_months"] + extra_months)}
    before = score_household(model, answers, members, INTERVIEW).score
    assert score_household(model, worse, members, INTERVIEW).score >= before


@given(households, st.sampled_from(["tenure", "land_ha", "dependency_ratio", "surprise"]))
def test_generated_answers_validate_and_foreign_keys_do_not(
    household: tuple[ScoringModel, dict[str, Any], list[MemberFacts]], extra: str
) -> None:
    model, answers, _ = household
    assert validate_answers(model, answers) == []
    if extra not in answers:
        assert [field for field, _ in validate_answers(model, answers | {extra: 1})] == [extra]


@given(st.sampled_from(list(PovertyLevel)), st.sampled_from(list(Adjustment)))
def test_special_circumstances_can_be_undone(level: PovertyLevel, direction: Adjustment) -> None:
    opposite = Adjustment.DOWN if direction is Adjustment.UP else Adjustment.UP
    try:
        moved = apply_special_circumstances(level, direction)
    except ValueError:
        return
    assert apply_special_circumstances(moved, opposite) == level
