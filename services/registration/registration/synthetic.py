"""Reproducible synthetic IDPoor households, written in the import CSV format.

For benchmarks (the national caseload: 705,487 households) and tests. Distributions follow the
March 2023 caseload (DOMAIN.md §8). Each household is given a poverty level first; its answers
are then drawn, and nudged one step at a time, until the scoring model in force puts it at that
level. The point tables come from the shipped models, so a re-weighted model still lands.

Households are made in chunks of ``CHUNK`` with a random stream each, so the output depends on
the seed only: not on how many processes wrote it.

Usage: ``python -m registration.synthetic OUT.csv --households 705487 --seed 2023 --workers 2``
"""

import argparse
import csv
import io
import os
import random
import sys
import time
import unicodedata
from bisect import bisect
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import date, timedelta
from fractions import Fraction
from functools import cache
from itertools import accumulate
from pathlib import Path
from typing import Any, NamedTuple

from krousar_common.collector import collector_paused
from krousar_common.events.households import PovertyLevel

from registration.domain.geography import (
    commune_unit,
    get_village,
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
SIZE_WEIGHTS = (10.0, 17.0, 19.5, 19.0, 14.0, 9.0, 5.0, 3.0, 1.7, 1.0, 0.5, 0.3)
MAX_SIZE = len(SIZE_WEIGHTS)
# Heads' ages: (from, to inclusive, weight) bands, for heads living with others and heads alone.
HEAD_AGES = {
    False: ((20, 29, 7), (30, 39, 19), (40, 49, 24), (50, 59, 22), (60, 69, 17), (70, 79, 9), (80, 90, 3)),
    True: ((20, 39, 6), (40, 59, 24), (60, 74, 40), (75, 92, 30)),
}
FEMALE_HEAD = {False: 0.22, True: 0.65}  # by living alone
SPOUSE_OF_HEAD = {"M": 0.9, "F": 0.25}  # by the head's sex
PARENT = 0.12  # per household whose head is under 60
OTHER_RELATIVE = 0.14  # per remaining place (a grandchild when the head is 45 or older)
NON_RELATIVE = 0.004
# Children under 5 are only ~4% of the caseload (§8): keep this share of draws landing under 5.
KEEP_UNDER_5 = 0.29
# Shares by age, keyed by the first age they apply to.
IN_SCHOOL = {6: 0.88, 15: 0.6, 18: 0.08, 23: 0.0}
DISABILITY = {0: 0.0168, 60: 0.053}  # 60,660 of 2,783,989 people overall
HIV = {0: 0.0, 15: 0.00112, 65: 0.0}  # 2,030 of 2,783,989 people overall
PREGNANT = {0: 0.0, 18: 0.035, 45: 0.0}  # women only
DISABILITY_CARD = 0.6
NATIONAL_ID_ADULT = 0.6  # members aged 18 or over
DOB_ESTIMATED_40 = 0.25  # members aged 40 or over
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
AT_MOST_MEMBERS = frozenset({"earners"})  # no more regular earners than members
# Answer group i of k (cheapest first) is drawn with weight prior × TILT[level] ** i: poorer levels
# lean toward the answers that earn more points, so few nudges are needed. Priors (default 1) keep
# rare answers rare: few IDPoor households own a car, many a motorbike.
ANSWER_PRIORS: dict[str, dict[Any, float]] = {
    "transport": {"CAR_OR_TRACTOR": 0.04, "MOTORBIKE": 1.0, "BICYCLE": 0.5, "NONE": 0.4},
    "roof": {"TILE_OR_CONCRETE": 0.3, "METAL_OR_FIBRE": 1.0, "THATCH": 0.5},
    "walls": {"BRICK_OR_CONCRETE": 0.2, "WOOD_OR_METAL": 1.0, "THATCH_OR_BAMBOO": 0.6},
    "tenure": {"OWNED": 1.0, "RENTED": 0.5, "INFORMAL": 0.4},
}
TILT = {PovertyLevel.NOT_POOR: 0.35, PovertyLevel.POOR_2: 1.25, PovertyLevel.POOR_1: 2.6}
MAX_NUDGES = 200
OLDEST = 100
CHUNK = 10_000  # households per random stream
_IDS_PER_CHUNK = CHUNK * MAX_SIZE  # at most one national id (or disability card) per member
_IDS_MULTIPLIER = 797_003_437  # coprime with 9 * 10**8, so k -> id is one-to-one
MAX_HOUSEHOLDS = 900_000_000 // _IDS_PER_CHUNK * CHUNK

# March 2023 caseload (DOMAIN.md §8).
CASELOAD_HOUSEHOLDS = 705_487
CASELOAD_PEOPLE = 2_783_989
CASELOAD_SHARES = {  # of people
    "under_5": 109_965 / CASELOAD_PEOPLE,
    "elderly_60": 386_035 / CASELOAD_PEOPLE,
    "with_disability": 60_660 / CASELOAD_PEOPLE,
    "living_with_hiv": 2_030 / CASELOAD_PEOPLE,
}


MemberSpec = tuple[str, str, int]  # relationship, sex, age


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
    by_province: Counter[str] = field(default_factory=Counter)  # households
    by_level: Counter[str] = field(default_factory=Counter)  # households, by expected level

    def add(self, household: SyntheticHousehold) -> None:
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

    def merge(self, other: "Stats") -> None:
        for name in (f.name for f in fields(self)):
            setattr(self, name, getattr(self, name) + getattr(other, name))  # counts and Counters


# --- answer tables from the scoring models ----------------------------------------------------


class _Step(NamedTuple):
    """One question, for one level and household size: its answers grouped by points, cheapest first."""

    cumulative: list[float]  # weights of the groups
    total: float
    nearest: tuple[int, ...]  # the group drawn -> the nearest one a household of this size can give
    floor: int  # the lowest and highest of those
    cap: int
    points: tuple[int, ...]
    texts: tuple[tuple[str, ...], ...]  # [group] -> answers as written
    column: int  # position among ANSWER_COLUMNS


Plan = tuple[_Step, ...]


class _Model(NamedTuple):
    plans: dict[tuple[PovertyLevel, int], Plan]  # by level and household size
    targets: dict[PovertyLevel, tuple[int, int]]  # score range of each level
    ratio_points: tuple[tuple[int, ...], ...]  # [dependants][working-age members]
    working_age: tuple[int, int]
    school: tuple[int, int, int]  # ages from, to, and points when a child that age is out of school


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
    return question.bands.points_for(Fraction(str(value)))  # per member for the floor area


def _answer_text(key: str, value: Any, size: int) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if key == "floor_area_m2":
        value = value * size  # candidates are per member, multiples of 0.5: the division is exact
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _steps(question: Any) -> dict[tuple[PovertyLevel, int], _Step]:
    groups: dict[int, list[Any]] = {}
    for value in _candidates(question):
        groups.setdefault(_points(question, value), []).append(value)
    points = tuple(sorted(groups))
    values = [groups[p] for p in points]
    limited = question.key in AT_MOST_MEMBERS
    column = list(ANSWER_COLUMNS).index(question.key)
    priors = [sum(ANSWER_PRIORS.get(question.key, {}).get(v, 1.0) for v in group) for group in values]
    steps = {}
    for size in range(1, MAX_SIZE + 1):
        texts = tuple(
            tuple(_answer_text(question.key, v, size) for v in group if not limited or v <= size)
            for group in values
        )
        allowed = [g for g, options in enumerate(texts) if options]
        floor, cap = allowed[0], allowed[-1]
        if allowed != list(range(floor, cap + 1)):
            raise ValueError(f"{question.key}: the answers a household of {size} can give skip a group")
        nearest = tuple(min(max(g, floor), cap) for g in range(len(points)))
        for level, base in TILT.items():
            cumulative = list(accumulate(prior * base**g for g, prior in enumerate(priors)))
            steps[level, size] = _Step(cumulative, cumulative[-1], nearest, floor, cap, points, texts, column)
    return steps


def _targets(model: ScoringModel) -> dict[PovertyLevel, tuple[int, int]]:
    cutoff = dict(model.cutoffs)
    poor_1, poor_2 = cutoff[PovertyLevel.POOR_1], cutoff[PovertyLevel.POOR_2]
    return {
        PovertyLevel.POOR_1: (poor_1, model.max_score),
        PovertyLevel.POOR_2: (poor_2, poor_1 - 1),
        PovertyLevel.NOT_POOR: (0, poor_2 - 1),
    }


def _ratio_points(ratio: DependencyRatio, dependants: int, working: int) -> int:
    if working == 0:
        return ratio.no_working_age_points
    return ratio.bands.points_for(Fraction(dependants, working))


def _load_model(questionnaire: Questionnaire, on: date) -> _Model:
    model = model_for_questionnaire(questionnaire, on)
    ratios = [item for item in model.items if isinstance(item, DependencyRatio)]
    schools = [item for item in model.items if isinstance(item, SchoolAgeNotInSchool)]
    if len(ratios) != 1 or len(schools) != 1 or len(model.items) != len(model.questions) + 2:
        raise ValueError(f"{model.model_id}: the generator knows one dependency ratio and one school item")
    ratio, school = ratios[0], schools[0]
    sizes = range(MAX_SIZE + 1)
    steps = [_steps(question) for question in model.questions]
    return _Model(
        {key: tuple(by_key[key] for by_key in steps) for key in steps[0]},
        _targets(model),
        tuple(tuple(_ratio_points(ratio, d, w) for w in sizes) for d in sizes),
        (ratio.working_age_from, ratio.working_age_to),
        (school.age_from, school.age_to, school.points),
    )


def _derived_points(model: _Model, people: list[MemberSpec], schooling: list[bool]) -> int:
    """The points the model derives from the members: dependency ratio and children out of school."""
    (work_from, work_to), (school_from, school_to, school_points) = model.working_age, model.school
    working, out_of_school = 0, False
    for (_, _, age), in_school in zip(people, schooling, strict=True):
        working += work_from <= age <= work_to
        out_of_school = out_of_school or (school_from <= age <= school_to and not in_school)
    return model.ratio_points[len(people) - working][working] + (school_points if out_of_school else 0)


# --- fixed tables: geography, calendar, names ---------------------------------------------------


@cache
def villages_by_province() -> dict[str, tuple[tuple[str, Questionnaire], ...]]:
    """Every village the registry accepts, with its questionnaire, by province, in code order."""
    units = load_commune_units()
    result: dict[str, tuple[tuple[str, Questionnaire], ...]] = {}
    for province in list_provinces():
        codes = [
            village.code
            for district in list_districts(province.code) or []
            for commune in list_communes(district.code) or []
            for village in list_villages(commune.code) or []
        ]
        # A few codes are listed under two communes: the registry rejects them, so skip them.
        villages = [village for village in map(get_village, sorted(set(codes))) if village is not None]
        result[province.code] = tuple(
            (village.code, questionnaire_for(commune_unit(village.commune_code, units)))
            for village in villages
        )
    return result


def _by_age(shares: dict[int, float]) -> list[float]:
    """A share for every age 0..OLDEST from shares keyed by the first age they apply to."""
    starts = sorted(shares)
    return [shares[starts[bisect(starts, age) - 1]] if age >= starts[0] else 0.0 for age in range(OLDEST + 1)]


def _birth_days(interviewed_on: date) -> list[list[str]]:
    """For each age on the interview day, the ISO dates of birth giving it (as scoring counts ages)."""
    by_age: list[list[str]] = [[] for _ in range(OLDEST + 1)]
    day = interviewed_on
    while (age := age_on(day, interviewed_on)) <= OLDEST:
        by_age[age].append(day.isoformat())
        day -= timedelta(days=1)
    return by_age


class _AgeFacts(NamedTuple):
    birth_days: list[str]  # ISO dates of birth giving this age on the interview day
    estimated_dob: str | None  # YYYY-07-01, for ages at which a year-only birth date is common
    in_school: float
    disability: float
    hiv: float
    pregnancy: float  # women


def _age_facts(interviewed_on: date) -> list[_AgeFacts]:
    birth_days = _birth_days(interviewed_on)
    # A year-only date is recorded as YYYY-07-01: pick YYYY so that it gives the same age.
    year = interviewed_on.year - ((interviewed_on.month, interviewed_on.day) < (7, 1))
    shares = zip(*map(_by_age, (IN_SCHOOL, DISABILITY, HIV, PREGNANT)), strict=True)
    return [
        _AgeFacts(birth_days[age], f"{year - age}-07-01" if age >= 40 else None, *share)
        for age, share in enumerate(shares)
    ]


FullNames = dict[str, list[tuple[str, str]]]  # by sex: ("family given" in Khmer, in Latin)
FULL_NAMES: list[FullNames] = [
    {
        sex: [(f"{km} {given_km}", f"{latin} {given_latin}") for given_km, given_latin in given]
        for sex, given in (("M", MALE_NAMES), ("F", FEMALE_NAMES))
    }
    for km, latin in FAMILY_NAMES
]


class _Tables(NamedTuple):
    """Everything fixed for an interview date: built once, shared by every chunk."""

    day: str
    villages: list[tuple[tuple[str, Questionnaire], ...]]  # by province
    province_weights: list[float]  # cumulative
    size_weights: list[float]  # cumulative
    head_ages: dict[bool, tuple[Sequence[tuple[int, int, float]], list[float]]]  # by living alone
    models: dict[Questionnaire, _Model]
    ages: list[_AgeFacts]
    due_dates: list[str]


@cache
def _tables(interviewed_on: date) -> _Tables:
    villages = villages_by_province()
    provinces = [code for code in sorted(PROVINCE_POPULATION) if villages.get(code)]
    return _Tables(
        interviewed_on.isoformat(),
        [villages[code] for code in provinces],
        list(accumulate(PROVINCE_POPULATION[code] for code in provinces)),
        list(accumulate(SIZE_WEIGHTS)),
        {alone: (bands, list(accumulate(w for *_, w in bands))) for alone, bands in HEAD_AGES.items()},
        {q: _load_model(q, interviewed_on) for q in Questionnaire},
        _age_facts(interviewed_on),
        [(interviewed_on + timedelta(days=d)).isoformat() for d in range(7, 280)],
    )


def national_id(k: int) -> str:
    """The k-th national id: 9 digits, distinct for k < 900,000,000."""
    return str(100_000_000 + (k * _IDS_MULTIPLIER) % 900_000_000)


# --- the generator ----------------------------------------------------------------------------


_HAS_DISABILITY = MEMBER_COLUMNS.index("has_disability")
_LIVES_WITH_HIV = MEMBER_COLUMNS.index("lives_with_hiv")


class _Generator:
    """One chunk's households: its own random stream and its own block of ids."""

    def __init__(self, tables: _Tables, seed: int, chunk: int, poor_share: float) -> None:
        self.t = tables
        self.random = random.Random(f"krousar-synthetic:{seed}:{chunk}").random  # str seeds are stable
        self.poor_share = poor_share
        self.ids = self.cards = chunk * _IDS_PER_CHUNK

    def pick(self, seq: Sequence[Any]) -> Any:
        return seq[int(self.random() * len(seq))]

    def between(self, low: int, high: int) -> int:
        return low + int(self.random() * (high - low + 1))

    def weighted(self, cumulative: list[float]) -> int:
        return bisect(cumulative, self.random() * cumulative[-1])

    def household(self, number: int) -> SyntheticHousehold:
        village, questionnaire = self.pick(self.t.villages[self.weighted(self.t.province_weights)])
        level = self.level()
        people = self.people(self.weighted(self.t.size_weights) + 1)
        schooling = [self.random() < self.t.ages[age].in_school for _, _, age in people]
        model = self.t.models[questionnaire]
        answers = self.answers(model, level, len(people), _derived_points(model, people, schooling))
        prefix = [f"H{number:07d}", village, self.t.day, "ROUND", ROUND_NO]
        rows, disabled, hiv = self.rows(prefix, answers, people, schooling)
        under_5 = elderly = 0
        for _, _, age in people:
            under_5 += age < 5
            elderly += age >= 60
        female_head = people[0][1] == "F"
        return SyntheticHousehold(
            rows, village, questionnaire, level, under_5, elderly, disabled, hiv, female_head
        )

    def level(self) -> PovertyLevel:
        if self.random() >= self.poor_share:
            return PovertyLevel.NOT_POOR
        return PovertyLevel.POOR_1 if self.random() < POOR_1_OF_POOR else PovertyLevel.POOR_2

    # members

    def people(self, size: int) -> list[MemberSpec]:
        alone = size == 1
        head_sex = "F" if self.random() < FEMALE_HEAD[alone] else "M"
        bands, cumulative = self.t.head_ages[alone]
        low, high, _ = bands[self.weighted(cumulative)]
        head_age = self.between(low, high)
        people = [("HEAD", head_sex, head_age)]
        mother_age = head_age if head_sex == "F" else head_age - 4
        if size > 1 and self.random() < SPOUSE_OF_HEAD[head_sex]:
            gap = -self.between(0, 8) if head_sex == "M" else self.between(0, 6)  # husbands are older
            spouse_age = min(OLDEST, max(18, head_age + gap))
            people.append(("SPOUSE", "F" if head_sex == "M" else "M", spouse_age))
            mother_age = min(spouse_age, head_age)
        if len(people) < size and head_age < 60 and self.random() < PARENT:
            people.append(("PARENT", self.sex(), min(OLDEST, head_age + self.between(20, 32))))
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
            return ("OTHER_RELATIVE", self.sex(), self.between(10, min(OLDEST, head_age + 10)))
        return ("CHILD", self.sex(), self.young_age(max(0, mother_age - 44), max(0, mother_age - 17)))

    def young_age(self, low: int, high: int) -> int:
        age = self.between(low, high)
        if age < 5 and high >= 5 and self.random() > KEEP_UNDER_5:
            age = self.between(max(low, 5), high)
        return age

    def rows(
        self, prefix: list[str], answers: list[str], people: list[MemberSpec], schooling: list[bool]
    ) -> tuple[list[list[str]], int, int]:
        head_family = father = self.pick(FULL_NAMES)
        rows, disabled, hiv, taken = [], 0, 0, set()
        later_rows = prefix + [""] * len(answers)
        for spec, in_school in zip(people, schooling, strict=True):
            # Children take their father's family name; everyone else has their own.
            relationship = spec[0]
            if relationship == "HEAD":
                family = head_family
            elif relationship == "CHILD":
                family = father
            else:
                family = self.pick(FULL_NAMES)
                father = family if relationship == "SPOUSE" and spec[1] == "M" else father
            member = self.member(spec, family, in_school, taken)
            rows.append((later_rows if rows else prefix + answers) + member)
            disabled += member[_HAS_DISABILITY] == "true"
            hiv += member[_LIVES_WITH_HIV] == "true"
        return rows, disabled, hiv

    def member(self, spec: MemberSpec, family: FullNames, in_school: bool, taken: set[str]) -> list[str]:
        """The member columns, in MEMBER_COLUMNS order."""
        relationship, sex, age = spec
        random_ = self.random
        births, estimated_dob, _, disability, hiv, pregnancy = self.t.ages[age]
        names = family[sex]
        name_km, name_latin = names[int(random_() * len(names))]
        while name_km in taken:  # brothers and sisters don't share a name
            name_km, name_latin = names[int(random_() * len(names))]
        taken.add(name_km)
        if estimated_dob and random_() < DOB_ESTIMATED_40:
            dob, estimated = estimated_dob, "true"
        else:
            dob, estimated = births[int(random_() * len(births))], ""
        national = ""
        if age >= 18 and random_() < NATIONAL_ID_ADULT:
            self.ids += 1
            national = national_id(self.ids)
        disabled = random_() < disability
        pregnant = sex == "F" and pregnancy and random_() < pregnancy
        return [
            name_km,
            name_latin,
            sex,
            dob,
            estimated,
            relationship,
            national,
            "true" if disabled else "",
            self.next_card() if disabled and random_() < DISABILITY_CARD else "",
            "true" if hiv and random_() < hiv else "",
            "true" if pregnant else "",
            self.pick(self.t.due_dates) if pregnant else "",
            "true" if in_school else "",
        ]

    def next_card(self) -> str:
        self.cards += 1
        return f"PWD-{self.cards:09d}"

    # answers

    def answers(self, model: _Model, level: PovertyLevel, size: int, derived: int) -> list[str]:
        """Answers scoring, with the points ``derived`` from the members, within the level's range."""
        plan = model.plans[level, size]
        answers = [""] * len(ANSWER_COLUMNS)
        groups, total = [], derived
        random_ = self.random
        for cumulative, weight, nearest, _, _, points, texts, column in plan:
            group = nearest[bisect(cumulative, random_() * weight)]
            groups.append(group)
            total += points[group]
            options = texts[group]
            answers[column] = options[0] if len(options) == 1 else options[int(random_() * len(options))]
        low, high = model.targets[level]
        if not low <= total <= high:
            for i in self.nudge(plan, groups, total, (low, high)):
                answers[plan[i].column] = self.pick(plan[i].texts[groups[i]])
        return answers

    def nudge(self, plan: Plan, groups: list[int], total: int, target: tuple[int, int]) -> list[int]:
        """Move one answer at a time a group up (or down) until the total is in range; which moved.

        Every step is smaller than the POOR_2 range in the shipped models, so it is never jumped over.
        """
        low, high = target
        moved = set()
        for _ in range(MAX_NUDGES):
            up = total < low
            movable = [i for i, g in enumerate(groups) if (g < plan[i].cap if up else g > plan[i].floor)]
            if not movable:
                break
            i = self.pick(movable)
            before = plan[i].points[groups[i]]
            groups[i] += 1 if up else -1
            total += plan[i].points[groups[i]] - before
            moved.add(i)
            if low <= total <= high:
                return sorted(moved)
        raise RuntimeError(f"could not reach a score in {target}")


# --- public API -------------------------------------------------------------------------------


class _Job(NamedTuple):
    chunk: int
    first: int  # household number
    count: int
    seed: int
    interviewed_on: date
    poor_share: float


def _jobs(n_households: int, seed: int, interviewed_on: date, poor_share: float) -> list[_Job]:
    if not 0 <= n_households <= MAX_HOUSEHOLDS:
        raise ValueError(f"n_households must be between 0 and {MAX_HOUSEHOLDS:,}")
    if not 0.0 <= poor_share <= 1.0:
        raise ValueError("poor_share must be between 0 and 1")
    return [
        _Job(chunk, start + 1, min(CHUNK, n_households - start), seed, interviewed_on, poor_share)
        for chunk, start in enumerate(range(0, n_households, CHUNK))
    ]


def _chunk(job: _Job) -> Iterator[SyntheticHousehold]:
    generator = _Generator(_tables(job.interviewed_on), job.seed, job.chunk, job.poor_share)
    for number in range(job.first, job.first + job.count):
        yield generator.household(number)


def iter_households(
    n_households: int, *, seed: int = 2023, interviewed_on: date = date(2023, 3, 1), poor_share: float = 1.0
) -> Iterator[SyntheticHousehold]:
    """Households ``H0000001`` … with their CSV rows (lists in ``ALL_COLUMNS`` order) and facts."""
    for job in _jobs(n_households, seed, interviewed_on, poor_share):
        yield from _chunk(job)


def generate(
    n_households: int, *, seed: int = 2023, interviewed_on: date = date(2023, 3, 1), poor_share: float = 1.0
) -> Iterator[list[dict[str, str]]]:
    """Per household, its import CSV rows keyed by column. Same arguments, same output."""
    for household in iter_households(
        n_households, seed=seed, interviewed_on=interviewed_on, poor_share=poor_share
    ):
        yield [dict(zip(ALL_COLUMNS, row, strict=True)) for row in household.rows]


def _chunk_csv(job: _Job) -> tuple[str, Stats]:
    out, stats = io.StringIO(), Stats()
    writer = csv.writer(out)
    with collector_paused():  # households make no reference cycles
        for household in _chunk(job):
            writer.writerows(household.rows)
            stats.add(household)
    return out.getvalue(), stats


def write_csv(
    path: str | Path,
    n_households: int,
    *,
    seed: int = 2023,
    interviewed_on: date = date(2023, 3, 1),
    poor_share: float = 1.0,
    workers: int = 1,
) -> Stats:
    """Write the header and every household's rows; ``workers`` processes make chunks in parallel."""
    jobs = _jobs(n_households, seed, interviewed_on, poor_share)
    _tables(interviewed_on)  # built before the workers fork, so they inherit it
    with open(path, "w", encoding="utf-8", newline="") as out:
        csv.writer(out).writerow(ALL_COLUMNS)
        if workers <= 1 or len(jobs) <= 1:
            return _write_chunks(out, map(_chunk_csv, jobs))
        with ProcessPoolExecutor(max_workers=workers) as pool:
            return _write_chunks(out, pool.map(_chunk_csv, jobs))  # in job order


def _write_chunks(out: io.TextIOBase, chunks: Iterator[tuple[str, Stats]]) -> Stats:
    stats = Stats()
    for text, chunk_stats in chunks:
        out.write(text)
        stats.merge(chunk_stats)
    return stats


# --- CLI --------------------------------------------------------------------------------------


def format_stats(stats: Stats) -> str:
    people, households = max(stats.members, 1), max(stats.households, 1)
    lines = [
        f"households       {stats.households:>10,}",
        f"members          {stats.members:>10,}   mean size {stats.members / households:.2f}"
        f" (caseload {CASELOAD_PEOPLE / CASELOAD_HOUSEHOLDS:.2f})",
    ]
    for name, target in CASELOAD_SHARES.items():
        count = getattr(stats, name)
        lines.append(f"{name:<16} {count:>10,}   {count / people:7.3%} of members (caseload {target:.3%})")
    lines += [
        f"female-headed    {stats.female_headed:>10,}   {stats.female_headed / households:.1%} of households",
        f"urban            {stats.urban:>10,}   {stats.urban / households:.1%} of households",
        "by level         " + ", ".join(f"{k} {v:,}" for k, v in sorted(stats.by_level.items())),
        "by province      " + ", ".join(f"{k} {v:,}" for k, v in sorted(stats.by_province.items())),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m registration.synthetic", description=__doc__)
    parser.add_argument("out", type=Path, help="CSV file to write")
    parser.add_argument("--households", type=int, default=CASELOAD_HOUSEHOLDS)
    parser.add_argument("--seed", type=int, default=2023)
    parser.add_argument("--poor-share", type=float, default=1.0)
    parser.add_argument("--interviewed-on", type=date.fromisoformat, default=date(2023, 3, 1))
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    stats = write_csv(
        args.out,
        args.households,
        seed=args.seed,
        interviewed_on=args.interviewed_on,
        poor_share=args.poor_share,
        workers=args.workers,
    )
    elapsed = time.perf_counter() - started
    print(format_stats(stats))
    size = args.out.stat().st_size / 2**20
    rate = stats.households / max(elapsed, 1e-9)
    print(f"wrote {args.out} ({size:,.1f} MiB) in {elapsed:.1f} s ({rate:,.0f} households/s)")


# Rows are assembled by position: fail at import rather than write a shifted file.
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
# The importer normalises names to NFC; written that way, they come back unchanged.
if any(
    unicodedata.normalize("NFC", km) != km
    for table in (FAMILY_NAMES, MALE_NAMES, FEMALE_NAMES)
    for km, _ in table
):
    raise ImportError("synthetic Khmer names must be NFC")

if __name__ == "__main__":
    main(sys.argv[1:])
