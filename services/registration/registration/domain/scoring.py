"""Proxy-means test: versioned scoring models kept as data, and one generic evaluator.

A model is ``registration/data/scoring/<model_id>.json`` (format in ``data/README.md``). The
shipped models are synthetic (DOMAIN.md §3): the official IDPoor weights are not public.
Higher score = poorer.
"""

import json
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from fractions import Fraction
from functools import cache, cached_property, lru_cache
from importlib import resources
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol

from krousar_common.events.households import PovertyLevel

FieldError = tuple[str, str]
ItemValue = str | int | float | bool | None

# Poorest last, so one step UP (toward POOR_1) is index + 1.
_LEVEL_SCALE = (PovertyLevel.NOT_POOR, PovertyLevel.POOR_2, PovertyLevel.POOR_1)


class Questionnaire(StrEnum):
    RURAL = "RURAL"
    URBAN = "URBAN"


class Adjustment(StrEnum):
    """A special-circumstances move by the commune council; UP means poorer (toward POOR_1)."""

    UP = "UP"
    DOWN = "DOWN"


class ScoringModelNotFoundError(LookupError):
    pass


class InvalidAnswersError(ValueError):
    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors))
        self.errors = errors


class Member(Protocol):
    """What scoring needs from a member; ``MemberFacts`` and the event ``MemberSnapshot`` fit."""

    @property
    def date_of_birth(self) -> date: ...

    @property
    def in_school(self) -> bool: ...


@dataclass(frozen=True)
class MemberFacts:
    date_of_birth: date
    in_school: bool = False


@dataclass(frozen=True)
class ItemScore:
    """One line of the breakdown: the answer (or derived value) and the points it earned."""

    item: str
    value: ItemValue
    points: int


@dataclass(frozen=True)
class Assessment:
    model_id: str
    score: int
    model_level: PovertyLevel
    items: tuple[ItemScore, ...]


class _MemberOnDay(NamedTuple):
    age: int
    in_school: bool


@dataclass(frozen=True)
class _Household:
    answers: Mapping[str, Any]  # already validated against the model
    members: tuple[_MemberOnDay, ...]


def age_on(date_of_birth: date, day: date) -> int:
    """Whole years; someone born on 29 February gets a year older on 1 March in common years."""
    before_birthday = (day.month, day.day) < (date_of_birth.month, date_of_birth.day)
    return day.year - date_of_birth.year - before_birthday


# --- bands: numeric thresholds, first match wins ---------------------------------------------

_COMPARISONS: dict[str, Callable[[Fraction, Fraction], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    ">=": operator.ge,
    ">": operator.gt,
}


@lru_cache(maxsize=65536)
def _exact(number: int | float) -> Fraction:
    # Through the decimal text, so 0.5 ha or 14.9 m² compare exactly as written on the form.
    return Fraction(str(number)) if isinstance(number, float) else Fraction(number)


def _show(number: Fraction) -> str:
    return str(number.numerator) if number.denominator == 1 else str(float(number))


@dataclass(frozen=True)
class Band:
    op: str
    value: Fraction
    points: int

    def matches(self, number: Fraction) -> bool:
        return _COMPARISONS[self.op](number, self.value)


@dataclass(frozen=True)
class Bands:
    bands: tuple[Band, ...]
    otherwise: int

    def points_for(self, number: Fraction) -> int:
        return next((band.points for band in self.bands if band.matches(number)), self.otherwise)

    @property
    def max_points(self) -> int:
        return max(self.otherwise, *(band.points for band in self.bands))


# --- memos: an item's score depends on a few small values that repeat across a round ---------


class _Memo(dict[Any, Any]):
    """Results of a pure function by its argument. A national round asks for the same few answers
    hundreds of thousands of times, and exact (Fraction) arithmetic is what scoring costs
    otherwise. Bounded, so arbitrary numbers sent to the API cannot grow it without end."""

    LIMIT = 65536

    def __init__(self, compute: Callable[[Any], Any]) -> None:
        super().__init__()
        self.compute = compute

    def __missing__(self, key: Any) -> Any:
        if len(self) >= self.LIMIT:
            self.clear()
        value = self[key] = self.compute(key)
        return value


def _memoise(item: object, name: str, compute: Callable[[Any], Any]) -> None:
    """Give a frozen item its memo (a field declared ``init=False, compare=False, repr=False``)."""
    object.__setattr__(item, name, _Memo(compute))


# --- item kinds -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChoiceQuestion:
    key: str
    points: Mapping[str, int]
    _scores: _Memo = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        _memoise(self, "_scores", lambda answer: ItemScore(self.key, answer, self.points[answer]))

    @property
    def max_points(self) -> int:
        return max(self.points.values())

    def answer_error(self, answer: object) -> str | None:
        if isinstance(answer, str) and answer in self.points:
            return None
        return f"must be one of {', '.join(self.points)}"

    def evaluate(self, household: _Household) -> ItemScore:
        return self._scores[str(household.answers[self.key])]


@dataclass(frozen=True)
class YesNoQuestion:
    key: str
    points_if_true: int
    _scores: _Memo = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        _memoise(
            self, "_scores", lambda answer: ItemScore(self.key, answer, self.points_if_true if answer else 0)
        )

    @property
    def max_points(self) -> int:
        return self.points_if_true

    def answer_error(self, answer: object) -> str | None:
        return None if isinstance(answer, bool) else "must be true or false"

    def evaluate(self, household: _Household) -> ItemScore:
        return self._scores[bool(household.answers[self.key])]


@dataclass(frozen=True)
class NumberQuestion:
    key: str
    bands: Bands
    per_member: bool = False
    integer: bool = False
    minimum: Fraction | None = None
    maximum: Fraction | None = None
    _errors: _Memo = field(init=False, compare=False, repr=False)
    _scores: _Memo = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        _memoise(self, "_errors", self._number_error)
        _memoise(self, "_scores", self._score)

    @property
    def max_points(self) -> int:
        return self.bands.max_points

    def answer_error(self, answer: object) -> str | None:
        if isinstance(answer, bool) or not isinstance(answer, int | float):
            return "must be a number"
        return self._errors[answer]  # 2 and 2.0 are one key: they have the same error

    def _number_error(self, answer: int | float) -> str | None:
        if not math.isfinite(answer):
            return "must be a number"
        if self.integer and not float(answer).is_integer():
            return "must be a whole number"
        if self.minimum is not None and _exact(answer) < self.minimum:
            return f"must be at least {_show(self.minimum)}"
        if self.maximum is not None and _exact(answer) > self.maximum:
            return f"must be at most {_show(self.maximum)}"
        return None

    def evaluate(self, household: _Household) -> ItemScore:
        answer = household.answers[self.key]
        members = len(household.members) if self.per_member else 1
        # The type is part of the key: the breakdown shows 2 as written, not 2.0.
        return self._scores[type(answer), answer, members]

    def _score(self, key: tuple[type, int | float, int]) -> ItemScore:
        _, answer, members = key
        if not self.per_member:
            return ItemScore(self.key, answer, self.bands.points_for(_exact(answer)))
        per_member = _exact(answer) / members
        return ItemScore(self.key, round(float(per_member), 2), self.bands.points_for(per_member))


@dataclass(frozen=True)
class DependencyRatio:
    """Dependants (outside working age) per working-age member, from ages on the interview date."""

    key: str
    working_age_from: int
    working_age_to: int
    no_working_age_points: int
    bands: Bands
    _scores: _Memo = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        _memoise(self, "_scores", self._score)

    @property
    def max_points(self) -> int:
        return max(self.no_working_age_points, self.bands.max_points)

    def evaluate(self, household: _Household) -> ItemScore:
        working = sum(
            self.working_age_from <= member.age <= self.working_age_to for member in household.members
        )
        return self._scores[len(household.members) - working, working]

    def _score(self, key: tuple[int, int]) -> ItemScore:
        dependants, working = key
        if working == 0:
            return ItemScore(self.key, None, self.no_working_age_points)
        ratio = Fraction(dependants, working)
        return ItemScore(self.key, round(float(ratio), 2), self.bands.points_for(ratio))


@dataclass(frozen=True)
class SchoolAgeNotInSchool:
    key: str
    age_from: int
    age_to: int
    points: int
    _scores: _Memo = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        _memoise(self, "_scores", lambda count: ItemScore(self.key, count, self.points if count else 0))

    @property
    def max_points(self) -> int:
        return self.points

    def evaluate(self, household: _Household) -> ItemScore:
        out_of_school = sum(
            self.age_from <= member.age <= self.age_to and not member.in_school
            for member in household.members
        )
        return self._scores[out_of_school]


Question = ChoiceQuestion | YesNoQuestion | NumberQuestion
Item = Question | DependencyRatio | SchoolAgeNotInSchool


@dataclass(frozen=True)
class ScoringModel:
    model_id: str
    version: int
    questionnaire: Questionnaire
    effective_from: date
    synthetic: bool
    cutoffs: tuple[tuple[PovertyLevel, int], ...]  # poorest level first
    items: tuple[Item, ...]

    @cached_property
    def questions(self) -> tuple[Question, ...]:
        return tuple(item for item in self.items if isinstance(item, Question))

    @cached_property
    def question_keys(self) -> frozenset[str]:
        return frozenset(question.key for question in self.questions)

    @property
    def max_score(self) -> int:
        return sum(item.max_points for item in self.items)

    def level_for(self, score: int) -> PovertyLevel:
        return next((level for level, cutoff in self.cutoffs if score >= cutoff), PovertyLevel.NOT_POOR)


# --- parsing model files ----------------------------------------------------------------------


def _parse_bands(raw: Mapping[str, Any]) -> Bands:
    bands = tuple(Band(b["op"], _exact(b["value"]), int(b["points"])) for b in raw["bands"])
    unknown_ops = {band.op for band in bands} - _COMPARISONS.keys()
    if unknown_ops:
        raise ValueError(f"unknown band operators {sorted(unknown_ops)}")
    return Bands(bands, int(raw.get("otherwise", 0)))


def _optional_exact(raw: Mapping[str, Any], key: str) -> Fraction | None:
    return None if raw.get(key) is None else _exact(raw[key])


def _parse_number(raw: Mapping[str, Any], *, per_member: bool) -> NumberQuestion:
    return NumberQuestion(
        key=raw["key"],
        bands=_parse_bands(raw),
        per_member=per_member,
        integer=bool(raw.get("integer", False)),
        minimum=_optional_exact(raw, "minimum"),
        maximum=_optional_exact(raw, "maximum"),
    )


_ITEM_PARSERS: dict[str, Callable[[Mapping[str, Any]], Item]] = {
    "choice": lambda raw: ChoiceQuestion(
        raw["key"], MappingProxyType({str(k): int(v) for k, v in raw["points"].items()})
    ),
    "bool": lambda raw: YesNoQuestion(raw["key"], int(raw["points_if_true"])),
    "bands": lambda raw: _parse_number(raw, per_member=False),
    "per_member_bands": lambda raw: _parse_number(raw, per_member=True),
    "dependency_ratio": lambda raw: DependencyRatio(
        raw["key"],
        int(raw["working_age"]["from"]),
        int(raw["working_age"]["to"]),
        int(raw["no_working_age_points"]),
        _parse_bands(raw),
    ),
    "school_age_not_in_school": lambda raw: SchoolAgeNotInSchool(
        raw["key"], int(raw["ages"]["from"]), int(raw["ages"]["to"]), int(raw["points"])
    ),
}


def _parse_item(raw: Mapping[str, Any]) -> Item:
    kind = raw["kind"]
    if kind not in _ITEM_PARSERS:
        raise ValueError(f"item {raw.get('key')!r}: unknown kind {kind!r}")
    return _ITEM_PARSERS[kind](raw)


def _parse_cutoffs(raw: Mapping[str, Any]) -> tuple[tuple[PovertyLevel, int], ...]:
    poor_1, poor_2 = int(raw[PovertyLevel.POOR_1]), int(raw[PovertyLevel.POOR_2])
    if set(raw) != {PovertyLevel.POOR_1, PovertyLevel.POOR_2} or poor_1 <= poor_2:
        raise ValueError("cutoffs must give POOR_1 and POOR_2 only, with POOR_1 > POOR_2")
    return ((PovertyLevel.POOR_1, poor_1), (PovertyLevel.POOR_2, poor_2))


def parse_model(raw: Mapping[str, Any]) -> ScoringModel:
    """Build a model from its JSON form; KeyError, TypeError or ValueError when malformed."""
    items = tuple(_parse_item(item) for item in raw["items"])
    keys = [item.key for item in items]
    if len(set(keys)) != len(keys):
        raise ValueError("item keys must be unique")
    return ScoringModel(
        model_id=raw["model_id"],
        version=int(raw["version"]),
        questionnaire=Questionnaire(raw["questionnaire"]),
        effective_from=date.fromisoformat(raw["effective_from"]),
        synthetic=bool(raw["synthetic"]),
        cutoffs=_parse_cutoffs(raw["cutoffs"]),
        items=items,
    )


# --- loading ----------------------------------------------------------------------------------


def _models_dir() -> Any:
    return resources.files("registration").joinpath("data", "scoring")


@cache
def available_model_ids() -> list[str]:
    return sorted(
        entry.name.removesuffix(".json") for entry in _models_dir().iterdir() if entry.name.endswith(".json")
    )


@cache
def load_model(model_id: str) -> ScoringModel:
    # Checked against the directory listing, so a model id can never name a path.
    if model_id not in available_model_ids():
        raise ScoringModelNotFoundError(f"unknown scoring model {model_id!r}")
    raw = json.loads(_models_dir().joinpath(f"{model_id}.json").read_text(encoding="utf-8"))
    try:
        model = parse_model(raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"scoring model {model_id} is malformed: {exc!r}") from exc
    if model.model_id != model_id:
        raise ValueError(f"scoring model file {model_id}.json declares {model.model_id}")
    return model


@lru_cache(maxsize=4096)  # model files do not change while the service runs; dates repeat
def model_for_questionnaire(questionnaire: Questionnaire | str, on: date | None = None) -> ScoringModel:
    """The latest model for the questionnaire in force on ``on`` (any date when None)."""
    wanted = Questionnaire(questionnaire)
    candidates = [
        model
        for model in map(load_model, available_model_ids())
        if model.questionnaire == wanted and (on is None or model.effective_from <= on)
    ]
    if not candidates:
        raise ScoringModelNotFoundError(f"no scoring model for {wanted} in force on {on}")
    return max(candidates, key=lambda model: (model.effective_from, model.version))


# --- use ----------------------------------------------------------------------------------------


def _question_error(question: Question, answers: Mapping[str, object]) -> str | None:
    if question.key not in answers:
        return "is required"
    return question.answer_error(answers[question.key])


def validate_answers(model: ScoringModel, answers: Mapping[str, object]) -> list[FieldError]:
    """(field, message) for every missing, invalid or not-asked answer, in the model's order."""
    errors = [(q.key, message) for q in model.questions if (message := _question_error(q, answers))]
    asked = model.question_keys
    not_asked = f"is not a question of the {model.questionnaire} questionnaire ({model.model_id})"
    errors.extend((key, not_asked) for key in answers if key not in asked)
    return errors


def _household_on(answers: Mapping[str, Any], members: Sequence[Member], day: date) -> _Household:
    if not members:
        raise ValueError("a household has at least one member")
    if any(member.date_of_birth > day for member in members):
        raise ValueError("a member was born after the interview date")
    on_day = tuple(_MemberOnDay(age_on(m.date_of_birth, day), m.in_school) for m in members)
    return _Household(answers, on_day)


def score_household(
    model: ScoringModel, answers: Mapping[str, object], members: Sequence[Member], interviewed_on: date
) -> Assessment:
    """Score the members present on the interview date. Raises ``InvalidAnswersError``."""
    errors = validate_answers(model, answers)
    if errors:
        raise InvalidAnswersError(errors)
    household = _household_on(answers, members, interviewed_on)
    items = tuple(item.evaluate(household) for item in model.items)
    score = sum(item.points for item in items)
    return Assessment(model.model_id, score, model.level_for(score), items)


def apply_special_circumstances(model_level: PovertyLevel, direction: Adjustment | str) -> PovertyLevel:
    """One step along NOT_POOR <-> POOR_2 <-> POOR_1; moving past either end is a ValueError."""
    step = 1 if Adjustment(direction) is Adjustment.UP else -1
    position = _LEVEL_SCALE.index(PovertyLevel(model_level)) + step
    if not 0 <= position < len(_LEVEL_SCALE):
        raise ValueError(f"cannot move {model_level} further {Adjustment(direction)}")
    return _LEVEL_SCALE[position]
