"""Reproducible synthetic IDPoor households, written in the import CSV format.

For benchmarks (the national caseload: 705,487 households) and tests. Distributions follow the
March 2023 caseload (DOMAIN.md §8). Each household is given a poverty level first; its answers
are then drawn, and nudged one step at a time, until the scoring model in force puts it at that
level. The point tables come from the shipped models, so a re-weighted model still lands.

Usage: ``python -m registration.synthetic OUT.csv --households 705487 --seed 2023``
"""

import argparse
import csv
import random
import sys
import time
import unicodedata
from bisect import bisect
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from fractions import Fraction
from functools import cache
from itertools import accumulate
from pathlib import Path
from typing import Any, NamedTuple

from krousar_common.events.households import PovertyLevel

from registration.domain.geography import (
    commune_unit,
    list_communes,
    list_districts,
    list_provinces,
    list_villages,
    load_commune_units,
    questionnaire_for,
)
from registration.domain.scoring import (
    ChoiceQuestion,
    DependencyRatio,
    NumberQuestion,
    Questionnaire,
    SchoolAgeNotInSchool,
    ScoringModel,
    YesNoQuestion,
    age_on,
    model_for_questionnaire,
)
from registration.imports.csv_format import ALL_COLUMNS, ANSWER_COLUMNS, HOUSEHOLD_COLUMNS, MEMBER_COLUMNS

# 2019 General Population Census of Cambodia, final results (National Institute of Statistics),
# rounded; keyed by today's province codes.
PROVINCE_POPULATION: dict[str, int] = {
    "01": 861_900, "02": 997_200, "03": 899_800, "04": 527_000, "05": 877_500,
    "06": 677_300, "07": 592_800, "08": 1_201_600, "09": 123_600, "10": 372_800,
    "11": 88_600, "12": 2_282_000, "13": 254_800, "14": 1_057_400, "15": 411_800,
    "16": 204_000, "17": 1_014_200, "18": 310_100, "19": 165_700, "20": 525_500,
    "21": 900_900, "22": 276_000, "23": 41_800, "24": 75_100, "25": 776_800,
}  # fmt: skip

# (Khmer, Latin). Khmer order: family name first.
FAMILY_NAMES = (
    ("សុខ", "Sok"), ("ចាន់", "Chan"), ("កែវ", "Keo"), ("ហេង", "Heng"), ("លី", "Ly"),
    ("ម៉ៅ", "Mao"), ("ជា", "Chea"), ("សេង", "Seng"), ("ទេព", "Tep"), ("ពេជ្រ", "Pech"),
    ("អ៊ុក", "Ouk"), ("ឈឹម", "Chhim"), ("យឹម", "Yim"), ("ខៀវ", "Khiev"), ("ម៉ម", "Mom"),
    ("ស៊ុន", "Sun"), ("គឹម", "Kim"), ("ពៅ", "Pov"), ("ឡុង", "Long"), ("នួន", "Nuon"),
)  # fmt: skip
MALE_NAMES = (
    ("ដារ៉ា", "Dara"), ("វណ្ណា", "Vanna"), ("សំណាង", "Samnang"), ("វិចិត្រ", "Vichet"),
    ("ពិសិដ្ឋ", "Piseth"), ("បូរ៉ា", "Bora"), ("សម្បត្តិ", "Sambath"), ("រិទ្ធី", "Rithy"),
    ("វាសនា", "Veasna"), ("សុផល", "Sophal"), ("សុធា", "Sothea"), ("ចំរើន", "Chamroeun"),
    ("វុទ្ធី", "Vuthy"), ("សុភ័ក្រ", "Sopheak"), ("មករា", "Makara"), ("ភក្ដី", "Pheakdey"),
)  # fmt: skip
FEMALE_NAMES = (
    ("ស្រីមុំ", "Sreymom"), ("ចាន់ធូ", "Chanthou"), ("សុគន្ធា", "Sokunthea"), ("ធីតា", "Thida"),
    ("ស្រីពៅ", "Sreypov"), ("ដាវី", "Davy"), ("ចរិយា", "Chariya"), ("ណារី", "Nary"),
    ("ស្រីល័ក្ខ", "Sreyleak"), ("សុខា", "Sokha"), ("បុប្ផា", "Bopha"), ("រតនា", "Ratana"),
    ("សុភា", "Sophea"), ("កញ្ញា", "Kanha"), ("ផល្លា", "Phalla"), ("លក្ខិណា", "Leakhena"),
)  # fmt: skip

# Household size 1..12; mean about 3.95 people (2,783,989 / 705,487).
SIZE_WEIGHTS = (9.0, 14.5, 17.0, 19.0, 15.0, 10.5, 6.5, 4.0, 2.2, 1.2, 0.6, 0.5)
# Age bands (from, to inclusive, weight) of heads living with others and of heads living alone.
HEAD_AGES = ((20, 29, 7), (30, 39, 19), (40, 49, 24), (50, 59, 22), (60, 69, 16), (70, 79, 9), (80, 90, 3))
LONE_HEAD_AGES = ((20, 39, 6), (40, 59, 24), (60, 74, 40), (75, 92, 30))
FEMALE_HEAD = 0.22
LONE_FEMALE_HEAD = 0.65
WIFE_OF_MALE_HEAD = 0.9
HUSBAND_OF_FEMALE_HEAD = 0.25
PARENT = 0.12  # per household whose head is under 60
OTHER_RELATIVE = 0.14  # per remaining place
NON_RELATIVE = 0.004
# Children under 5 are only ~4% of the caseload (§8): keep that share of draws that land under 5.
KEEP_UNDER_5 = 0.25
DISABILITY = {True: 0.052, False: 0.0165}  # elderly 60+ or not: 60,660 / 2,783,989 overall
DISABILITY_CARD = 0.6
HIV_15_64 = 0.00115  # 2,030 / 2,783,989 overall
PREGNANT_18_44 = 0.035
IN_SCHOOL = {6: 0.88, 15: 0.6, 18: 0.08, 23: 0.0}  # by age band start
NATIONAL_ID_ADULT = 0.6
DOB_ESTIMATED_40 = 0.25
POOR_1_OF_POOR = 0.4
ROUND_NO = "10"

# Candidate answers for number questions; per-member floor area in m² (multiples of 0.5 so that
# area ÷ members is exact). Choice and yes/no questions take every answer of the model.
NUMBER_ANSWERS: dict[str, tuple[float, ...]] = {
    "floor_area_m2": (1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 6, 7, 8, 9, 10, 12, 15, 20),
    "land_ha": (0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1, 1.5, 2, 3),
    "cattle": (0, 1, 2, 3, 4, 6),
    "earners": (0, 1, 2, 3),
    "valuables": (0, 1, 2, 3, 4, 5),
    "food_shortage_months": (0, 1, 2, 3, 4, 6),
}
AT_MOST_MEMBERS = frozenset({"earners"})
# Answer group i of k (cheapest first) is drawn with weight TILT[level] ** i: poorer levels lean
# toward the answers that earn more points, so few nudges are needed.
TILT = {PovertyLevel.NOT_POOR: 0.35, PovertyLevel.POOR_2: 1.25, PovertyLevel.POOR_1: 2.6}
MAX_NUDGES = 200
_IDS_MULTIPLIER = 797_003_437  # coprime with 9 * 10**8, so k -> id is one-to-one


@dataclass
class Stats:
    households: int = 0
    members: int = 0
    under_5: int = 0
    elderly_60: int = 0
    with_disability: int = 0
    living_with_hiv: int = 0
    female_headed: int = 0
    urban: int = 0
    by_province: Counter[str] = field(default_factory=Counter)
    by_level: Counter[str] = field(default_factory=Counter)

    def add(self, household: "SyntheticHousehold") -> None:
        self.households += 1
        self.members += len(household.rows)
        self.under_5 += household.under_5
        self.elderly_60 += household.elderly_60
        self.with_disability += household.with_disability
        self.living_with_hiv += household.living_with_hiv
        self.female_headed += household.female_head
        self.urban += household.questionnaire is Questionnaire.URBAN
        self.by_province[household.village_code[:2]] += 1
        self.by_level[household.expected_level] += 1


class SyntheticHousehold(NamedTuple):
    rows: list[list[str]]  # in csv_format.ALL_COLUMNS order
    village_code: str
    questionnaire: Questionnaire
    expected_level: PovertyLevel
    under_5: int
    elderly_60: int
    with_disability: int
    living_with_hiv: int
    female_head: bool


class _Item(NamedTuple):
    """A question's candidate answers grouped by points, cheapest group first."""

    key: str
    points: tuple[int, ...]
    values: tuple[tuple[Any, ...], ...]
    tilt: dict[PovertyLevel, list[float]]  # cumulative weights of the groups


class _Model(NamedTuple):
    model: ScoringModel
    items: tuple[_Item, ...]
    targets: dict[PovertyLevel, tuple[int, int]]  # score range of each level


# --- model tables -----------------------------------------------------------------------------


def _candidates(question: Any) -> tuple[Any, ...]:
    if isinstance(question, ChoiceQuestion):
        return tuple(question.points)
    if isinstance(question, YesNoQuestion):
        return (False, True)
    if isinstance(question, NumberQuestion) and question.key in NUMBER_ANSWERS:
        return NUMBER_ANSWERS[question.key]
    raise ValueError(f"the synthetic generator has no answers for question {question.key!r}")


def _points(question: Any, value: Any) -> int:
    if isinstance(question, ChoiceQuestion):
        return question.points[value]
    if isinstance(question, YesNoQuestion):
        return question.points_if_true if value else 0
    if question.answer_error(value) is not None:
        raise ValueError(f"candidate answer {value!r} is invalid for {question.key}")
    return question.bands.points_for(Fraction(str(value)))  # per member for floor area


def _item(question: Any) -> _Item:
    groups: dict[int, list[Any]] = {}
    for value in _candidates(question):
        groups.setdefault(_points(question, value), []).append(value)
    points = tuple(sorted(groups))
    tilt = {level: list(accumulate(base**i for i in range(len(points)))) for level, base in TILT.items()}
    return _Item(question.key, points, tuple(tuple(groups[p]) for p in points), tilt)


def _targets(model: ScoringModel) -> dict[PovertyLevel, tuple[int, int]]:
    cutoff = dict(model.cutoffs)
    poor_1, poor_2 = cutoff[PovertyLevel.POOR_1], cutoff[PovertyLevel.POOR_2]
    return {
        PovertyLevel.POOR_1: (poor_1, model.max_score),
        PovertyLevel.POOR_2: (poor_2, poor_1 - 1),
        PovertyLevel.NOT_POOR: (0, poor_2 - 1),
    }


def _load_model(questionnaire: Questionnaire, on: date) -> _Model:
    model = model_for_questionnaire(questionnaire, on)
    return _Model(model, tuple(_item(q) for q in model.questions), _targets(model))


def _derived_items(model: ScoringModel) -> tuple[DependencyRatio, SchoolAgeNotInSchool]:
    ratio = [item for item in model.items if isinstance(item, DependencyRatio)]
    school = [item for item in model.items if isinstance(item, SchoolAgeNotInSchool)]
    if len(ratio) != 1 or len(school) != 1 or len(model.items) != len(model.questions) + 2:
        raise ValueError(f"{model.model_id}: the generator knows one dependency ratio and one school item")
    return ratio[0], school[0]


# --- geography and calendar -------------------------------------------------------------------


@cache
def villages_by_province() -> dict[str, tuple[tuple[str, Questionnaire], ...]]:
    """Every gazetteer village with its questionnaire, by province, in code order."""
    units = load_commune_units()
    result: dict[str, tuple[tuple[str, Questionnaire], ...]] = {}
    for province in list_provinces():
        villages = [
            (village.code, questionnaire_for(commune_unit(commune.code, units)))
            for district in list_districts(province.code) or []
            for commune in list_communes(district.code) or []
            for village in list_villages(commune.code) or []
        ]
        result[province.code] = tuple(sorted(villages))
    return result


def _birth_days(interviewed_on: date, oldest: int = 100) -> list[list[str]]:
    """For each age on the interview day, the ISO dates of birth that give it (as scoring counts)."""
    by_age: list[list[str]] = [[] for _ in range(oldest + 1)]
    day = interviewed_on
    while (age := age_on(day, interviewed_on)) <= oldest:
        by_age[age].append(day.isoformat())
        day -= timedelta(days=1)
    return by_age


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def national_id(k: int) -> str:
    """The k-th national id of an output: 9 digits, distinct for k < 900,000,000."""
    return str(100_000_000 + (k * _IDS_MULTIPLIER) % 900_000_000)


def _cumulative(weights: Sequence[float]) -> list[float]:
    return list(accumulate(weights))


# --- the generator ----------------------------------------------------------------------------

MemberSpec = tuple[str, str, int]  # relationship, sex, age


class _Generator:
    def __init__(self, seed: int, interviewed_on: date, poor_share: float) -> None:
        self.rng = random.Random(seed)
        self.random = self.rng.random
        self.day = interviewed_on.isoformat()
        self.poor_share = poor_share
        villages = villages_by_province()
        self.provinces = [code for code in sorted(PROVINCE_POPULATION) if villages.get(code)]
        self.villages = [villages[code] for code in self.provinces]
        self.province_cum = _cumulative([PROVINCE_POPULATION[code] for code in self.provinces])
        self.models = {q: _load_model(q, interviewed_on) for q in Questionnaire}
        self.derived = {q: _derived_items(m.model) for q, m in self.models.items()}
        self.size_cum = _cumulative(SIZE_WEIGHTS)
        self.births = _birth_days(interviewed_on)
        self.estimated_year = interviewed_on.year - ((interviewed_on.month, interviewed_on.day) < (7, 1))
        self.due_dates = [(interviewed_on + timedelta(days=d)).isoformat() for d in range(7, 280)]
        self.ids = 0
        self.cards = 0
        self.blank_answers = [""] * len(ANSWER_COLUMNS)

    def pick(self, seq: Sequence[Any]) -> Any:
        return seq[int(self.random() * len(seq))]

    def between(self, low: int, high: int) -> int:
        return low + int(self.random() * (high - low + 1))

    def weighted(self, cumulative: list[float]) -> int:
        return bisect(cumulative, self.random() * cumulative[-1])

    def banded_age(self, bands: Sequence[tuple[int, int, float]]) -> int:
        low, high, _ = bands[self.weighted(_cumulative([w for _, _, w in bands]))]
        return self.between(low, high)

    # members

    def people(self, size: int) -> list[MemberSpec]:
        alone = size == 1
        head_sex = "F" if self.random() < (LONE_FEMALE_HEAD if alone else FEMALE_HEAD) else "M"
        head_age = self.banded_age(LONE_HEAD_AGES if alone else HEAD_AGES)
        people = [("HEAD", head_sex, head_age)]
        mother_age = head_age if head_sex == "F" else head_age - 4
        if size > 1 and self.random() < (WIFE_OF_MALE_HEAD if head_sex == "M" else HUSBAND_OF_FEMALE_HEAD):
            gap = -self.between(0, 8) if head_sex == "M" else self.between(0, 6)  # husbands are older
            spouse_age = max(18, head_age + gap)
            people.append(("SPOUSE", "F" if head_sex == "M" else "M", spouse_age))
            mother_age = spouse_age if head_sex == "M" else head_age
        if len(people) < size and head_age < 60 and self.random() < PARENT:
            people.append(("PARENT", self.sex(), min(95, head_age + self.between(20, 32))))
        while len(people) < size:
            people.append(self.relative(head_age, mother_age))
        return people

    def sex(self) -> str:
        return "F" if self.random() < 0.5 else "M"

    def relative(self, head_age: int, mother_age: int) -> MemberSpec:
        draw = self.random()
        if draw < NON_RELATIVE:
            return ("NON_RELATIVE", self.sex(), self.between(15, 60))
        if draw < OTHER_RELATIVE:
            if head_age >= 45:  # a grandchild
                return ("OTHER_RELATIVE", self.sex(), self.young_age(0, min(17, head_age - 38)))
            return ("OTHER_RELATIVE", self.sex(), self.between(10, head_age + 10))
        return ("CHILD", self.sex(), self.young_age(max(0, mother_age - 44), max(0, mother_age - 17)))

    def young_age(self, low: int, high: int) -> int:
        age = self.between(low, high)
        if age < 5 and high >= 5 and self.random() > KEEP_UNDER_5:
            age = self.between(max(low, 5), high)
        return age

    def birth_date(self, age: int) -> tuple[str, str]:
        if age >= 40 and self.random() < DOB_ESTIMATED_40:
            return f"{self.estimated_year - age}-07-01", "true"
        return self.pick(self.births[age]), ""

    def in_school(self, age: int) -> bool:
        if age < 6:
            return False
        share = IN_SCHOOL[6 if age < 15 else 15 if age < 18 else 18 if age < 23 else 23]
        return self.random() < share

    def member_row(
        self, spec: MemberSpec, family: tuple[str, str], in_school: bool
    ) -> tuple[list[str], int, int]:
        relationship, sex, age = spec
        given = self.pick(FEMALE_NAMES if sex == "F" else MALE_NAMES)
        dob, estimated = self.birth_date(age)
        elderly = age >= 60
        disabled = self.random() < DISABILITY[elderly]
        hiv = 15 <= age <= 64 and self.random() < HIV_15_64
        pregnant = sex == "F" and 18 <= age <= 44 and self.random() < PREGNANT_18_44
        row = [
            f"{family[0]} {given[0]}",
            f"{family[1]} {given[1]}",
            sex,
            dob,
            estimated,
            relationship,
            self.next_national_id() if age >= 18 and self.random() < NATIONAL_ID_ADULT else "",
            "true" if disabled else "",
            self.next_card() if disabled and self.random() < DISABILITY_CARD else "",
            "true" if hiv else "",
            "true" if pregnant else "",
            self.pick(self.due_dates) if pregnant else "",
            "true" if in_school else "",
        ]
        return row, disabled, hiv

    def next_national_id(self) -> str:
        self.ids += 1
        return national_id(self.ids)

    def next_card(self) -> str:
        self.cards += 1
        return f"PWD-{self.cards:07d}"

    # answers

    def derived_points(
        self, questionnaire: Questionnaire, people: list[MemberSpec], schooling: list[bool]
    ) -> int:
        ratio, school = self.derived[questionnaire]
        ages = [age for _, _, age in people]
        working = sum(ratio.working_age_from <= age <= ratio.working_age_to for age in ages)
        out = any(
            school.age_from <= a <= school.age_to and not s for a, s in zip(ages, schooling, strict=True)
        )
        return _ratio_points(ratio, len(ages) - working, working) + (school.points if out else 0)

    def answers(self, model: _Model, level: PovertyLevel, size: int, derived: int) -> list[str]:
        items = model.items
        caps = [self.cap(item, size) for item in items]
        groups = [min(self.weighted(item.tilt[level]), cap) for item, cap in zip(items, caps, strict=True)]
        total = derived + sum(item.points[g] for item, g in zip(items, groups, strict=True))
        low, high = model.targets[level]
        for _ in range(MAX_NUDGES):
            if low <= total <= high:
                return self.answer_texts(items, groups, size)
            up = total < low
            movable = [i for i, g in enumerate(groups) if (g < caps[i] if up else g > 0)]
            i = self.pick(movable)
            before = items[i].points[groups[i]]
            groups[i] += 1 if up else -1
            total += items[i].points[groups[i]] - before
        raise RuntimeError(f"{model.model.model_id}: could not reach a {level} score")

    @staticmethod
    def cap(item: _Item, size: int) -> int:
        if item.key not in AT_MOST_MEMBERS:
            return len(item.points) - 1
        return max(i for i, values in enumerate(item.values) if min(values) <= size)

    def answer_texts(self, items: tuple[_Item, ...], groups: list[int], size: int) -> list[str]:
        by_key = {}
        for item, group in zip(items, groups, strict=True):
            value = self.pick(item.values[group])
            if item.key == "floor_area_m2":
                value = value * size
            elif item.key in AT_MOST_MEMBERS:
                value = min(value, size)
            by_key[item.key] = _answer_text(value)
        return [by_key.get(column, "") for column in ANSWER_COLUMNS]

    # households

    def level(self) -> PovertyLevel:
        if self.random() >= self.poor_share:
            return PovertyLevel.NOT_POOR
        return PovertyLevel.POOR_1 if self.random() < POOR_1_OF_POOR else PovertyLevel.POOR_2

    def household(self, number: int) -> SyntheticHousehold:
        village, questionnaire = self.pick(self.villages[self.weighted(self.province_cum)])
        level = self.level()
        people = self.people(self.weighted(self.size_cum) + 1)
        schooling = [self.in_school(age) for _, _, age in people]
        derived = self.derived_points(questionnaire, people, schooling)
        answers = self.answers(self.models[questionnaire], level, len(people), derived)
        prefix = [f"H{number:07d}", village, self.day, "ROUND", ROUND_NO]
        rows, disabled, hiv = self.rows(prefix, answers, people, schooling)
        ages = [age for _, _, age in people]
        return SyntheticHousehold(
            rows,
            village,
            questionnaire,
            level,
            sum(age < 5 for age in ages),
            sum(age >= 60 for age in ages),
            disabled,
            hiv,
            people[0][1] == "F",
        )

    def rows(
        self, prefix: list[str], answers: list[str], people: list[MemberSpec], schooling: list[bool]
    ) -> tuple[list[list[str]], int, int]:
        families = [self.pick(FAMILY_NAMES) for _ in people]
        father = (
            families[1]
            if people[0][1] == "F" and len(people) > 1 and people[1][0] == "SPOUSE"
            else families[0]
        )
        rows, disabled, hiv = [], 0, 0
        for spec, family, in_school in zip(people, families, schooling, strict=True):
            # Children take their father's family name; everyone else keeps their own.
            member, is_disabled, has_hiv = self.member_row(
                spec, father if spec[0] == "CHILD" else family, in_school
            )
            rows.append(prefix + (answers if not rows else self.blank_answers) + member)
            disabled += is_disabled
            hiv += has_hiv
        return rows, disabled, hiv


@cache
def _ratio_points_cached(ratio: DependencyRatio, dependants: int, working: int) -> int:
    if working == 0:
        return ratio.no_working_age_points
    return ratio.bands.points_for(Fraction(dependants, working))


def _ratio_points(ratio: DependencyRatio, dependants: int, working: int) -> int:
    return _ratio_points_cached(ratio, dependants, working)


def _answer_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number_text(value)
    return str(value)


# --- public API -------------------------------------------------------------------------------


def iter_households(
    n_households: int, *, seed: int = 2023, interviewed_on: date = date(2023, 3, 1), poor_share: float = 1.0
) -> Iterator[SyntheticHousehold]:
    """Households ``H0000001`` … with their CSV rows (lists in ``ALL_COLUMNS`` order) and facts."""
    if not 0.0 <= poor_share <= 1.0:
        raise ValueError("poor_share must be between 0 and 1")
    generator = _Generator(seed, interviewed_on, poor_share)
    for number in range(1, n_households + 1):
        yield generator.household(number)


def generate(
    n_households: int, *, seed: int = 2023, interviewed_on: date = date(2023, 3, 1), poor_share: float = 1.0
) -> Iterator[list[dict[str, str]]]:
    """Per household, its import CSV rows keyed by column. Same arguments, same output."""
    for household in iter_households(
        n_households, seed=seed, interviewed_on=interviewed_on, poor_share=poor_share
    ):
        yield [dict(zip(ALL_COLUMNS, row, strict=True)) for row in household.rows]


def write_csv(
    path: str | Path,
    n_households: int,
    *,
    seed: int = 2023,
    interviewed_on: date = date(2023, 3, 1),
    poor_share: float = 1.0,
) -> Stats:
    stats = Stats()
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(ALL_COLUMNS)
        for household in iter_households(
            n_households, seed=seed, interviewed_on=interviewed_on, poor_share=poor_share
        ):
            writer.writerows(household.rows)
            stats.add(household)
    return stats


# --- CLI --------------------------------------------------------------------------------------

# March 2023 caseload (DOMAIN.md §8), people in each group per person registered.
CASELOAD_PEOPLE = 2_783_989
CASELOAD_SHARES = {
    "under_5": 109_965 / CASELOAD_PEOPLE,
    "elderly_60": 386_035 / CASELOAD_PEOPLE,
    "with_disability": 60_660 / CASELOAD_PEOPLE,
    "living_with_hiv": 2_030 / CASELOAD_PEOPLE,
}


def format_stats(stats: Stats) -> str:
    people = max(stats.members, 1)
    lines = [
        f"households       {stats.households:>10,}",
        f"members          {stats.members:>10,}   mean size {stats.members / max(stats.households, 1):.2f}"
        f" (caseload {CASELOAD_PEOPLE / 705_487:.2f})",
    ]
    for name, target in CASELOAD_SHARES.items():
        count = getattr(stats, name)
        lines.append(f"{name:<16} {count:>10,}   {count / people:7.3%} of members (caseload {target:.3%})")
    lines.append(
        f"female-headed    {stats.female_headed:>10,}   {stats.female_headed / max(stats.households, 1):.1%}"
    )
    lines.append(f"urban            {stats.urban:>10,}   {stats.urban / max(stats.households, 1):.1%}")
    lines.append("by level         " + ", ".join(f"{k} {v:,}" for k, v in sorted(stats.by_level.items())))
    lines.append("by province      " + ", ".join(f"{k} {v:,}" for k, v in sorted(stats.by_province.items())))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m registration.synthetic", description=__doc__.splitlines()[0]
    )
    parser.add_argument("out", type=Path, help="CSV file to write")
    parser.add_argument("--households", type=int, default=705_487)
    parser.add_argument("--seed", type=int, default=2023)
    parser.add_argument("--poor-share", type=float, default=1.0)
    parser.add_argument("--interviewed-on", type=date.fromisoformat, default=date(2023, 3, 1))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    stats = write_csv(
        args.out,
        args.households,
        seed=args.seed,
        interviewed_on=args.interviewed_on,
        poor_share=args.poor_share,
    )
    elapsed = time.perf_counter() - started
    print(format_stats(stats))
    print(
        f"wrote {args.out} ({args.out.stat().st_size / 2**20:,.1f} MiB) in {elapsed:.1f} s"
        f" ({stats.households / max(elapsed, 1e-9):,.0f} households/s)"
    )


# Rows are assembled positionally: fail at import, not with a silently shifted file.
_MEMBER_ORDER = [
    "name_km", "name_latin", "sex", "date_of_birth", "dob_estimated", "relationship", "national_id",
    "has_disability", "disability_card_no", "lives_with_hiv", "is_pregnant", "expected_delivery_date",
    "in_school",
]  # fmt: skip
if (
    _MEMBER_ORDER != MEMBER_COLUMNS
    or HOUSEHOLD_COLUMNS + list(ANSWER_COLUMNS) + MEMBER_COLUMNS != ALL_COLUMNS
):
    raise ImportError("registration.synthetic is out of step with the import CSV columns")
_NAME_TABLES = (FAMILY_NAMES, MALE_NAMES, FEMALE_NAMES)
if any(unicodedata.normalize("NFC", km) != km for table in _NAME_TABLES for km, _ in table):
    raise ImportError("Khmer names must be NFC, as the importer normalises them")

if __name__ == "__main__":
    main(sys.argv[1:])
