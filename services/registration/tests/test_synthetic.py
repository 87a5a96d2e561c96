import csv
import io
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from krousar_common.events.households import PovertyLevel, Relationship, Sex
from registration import synthetic
from registration.domain.geography import commune_unit, get_village, load_commune_units, questionnaire_for
from registration.domain.scoring import age_on, model_for_questionnaire, score_household
from registration.imports.csv_format import ALL_COLUMNS, ParsedHousehold, parse
from registration.synthetic import CASELOAD_SHARES, Stats, generate, iter_households, national_id, write_csv

HOUSEHOLDS = 2_000
SEED = 11
INTERVIEW = date(2023, 3, 1)


@dataclass
class Sample:
    stats: Stats
    raw: bytes
    households: list[ParsedHousehold]
    expected: dict[str, PovertyLevel]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    path = tmp_path_factory.mktemp("synthetic") / "households.csv"
    stats = write_csv(path, HOUSEHOLDS, seed=SEED)
    raw = path.read_bytes()
    households, errors = parse(raw)
    assert errors == []
    expected = {h.rows[0][0]: h.expected_level for h in iter_households(HOUSEHOLDS, seed=SEED)}
    return Sample(stats, raw, households, expected)


def members(sample: Sample) -> list[tuple[int, str, bool]]:
    """(age, sex, in_school) of every member in the sample."""
    return [
        (age_on(m.date_of_birth, h.command.interviewed_on), m.sex, m.in_school)
        for h in sample.households
        for m in h.command.members
    ]


def share(count: int, total: int) -> float:
    return count / total if total else 0.0


# --- format and determinism ---------------------------------------------------------------------


def test_same_seed_same_output_other_seed_other_output() -> None:
    first = list(generate(300, seed=5))
    assert first == list(generate(300, seed=5))
    assert first != list(generate(300, seed=6))


def test_generate_yields_the_rows_write_csv_writes(tmp_path: Path) -> None:
    path = tmp_path / "small.csv"
    write_csv(path, 150, seed=3, poor_share=0.5)
    written = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    generated = [row for household in generate(150, seed=3, poor_share=0.5) for row in household]
    assert written == generated
    assert all(list(row) == ALL_COLUMNS for row in generated)


def test_output_does_not_depend_on_the_number_of_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(synthetic, "CHUNK", 250)  # several chunks from a small file
    write_csv(tmp_path / "one.csv", 1_100, seed=9, workers=1)
    stats = write_csv(tmp_path / "two.csv", 1_100, seed=9, workers=2)
    assert (tmp_path / "one.csv").read_bytes() == (tmp_path / "two.csv").read_bytes()
    assert stats.households == 1_100
    households, errors = parse((tmp_path / "two.csv").read_bytes())
    assert errors == []
    ids = [m.national_id for h in households for m in h.command.members if m.national_id]
    assert len(ids) == len(set(ids))


def test_every_household_parses(sample: Sample) -> None:
    assert len(sample.households) == sample.stats.households == HOUSEHOLDS
    assert sum(len(h.command.members) for h in sample.households) == sample.stats.members
    refs = [h.ref for h in sample.households]
    assert refs == [f"H{n:07d}" for n in range(1, HOUSEHOLDS + 1)]
    for household in sample.households:
        command = household.command
        assert (command.identification_mode, command.round_no) == ("ROUND", 10)
        assert command.interviewed_on == INTERVIEW
        assert sum(m.relationship == Relationship.HEAD for m in command.members) == 1


def test_village_codes_exist(sample: Sample) -> None:
    codes = {h.command.village_code for h in sample.households}
    assert all(len(code) == 8 and get_village(code) is not None for code in codes)


def test_national_ids_are_unique_nine_digits(sample: Sample) -> None:
    ids = [m.national_id for h in sample.households for m in h.command.members if m.national_id]
    assert len(ids) == len(set(ids))
    assert all(len(i) == 9 and i.isdigit() for i in ids)
    assert len({national_id(k) for k in range(200_000)}) == 200_000


def test_names_are_khmer_with_a_transliteration(sample: Sample) -> None:
    for household in sample.households:
        names = [m.name_km for m in household.command.members]
        assert len(set(names)) == len(names)
        assert all(any("\u1780" <= ch <= "\u17ff" for ch in name) for name in names)
        assert all(m.name_latin and m.name_latin.isascii() for m in household.command.members)


# --- scoring ----------------------------------------------------------------------------------


def scored_level(household: ParsedHousehold, units: dict[str, str]) -> PovertyLevel:
    command = household.command
    village = get_village(command.village_code)
    assert village is not None
    questionnaire = questionnaire_for(commune_unit(village.commune_code, units))
    model = model_for_questionnaire(questionnaire, command.interviewed_on)
    return score_household(model, command.answers, command.members, command.interviewed_on).model_level


def test_expected_level_is_the_scored_level(sample: Sample) -> None:
    units = load_commune_units()
    mismatched = [h.ref for h in sample.households if scored_level(h, units) != sample.expected[h.ref]]
    assert mismatched == []


def test_poor_share_sets_the_not_poor_households(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    stats = write_csv(path, 600, seed=4, poor_share=0.5)
    assert 0.4 < share(stats.by_level[PovertyLevel.NOT_POOR], 600) < 0.6
    households, errors = parse(path.read_bytes())
    expected = {h.rows[0][0]: h.expected_level for h in iter_households(600, seed=4, poor_share=0.5)}
    units = load_commune_units()
    assert errors == []
    assert all(scored_level(h, units) == expected[h.ref] for h in households)


def test_both_questionnaires_are_asked(sample: Sample) -> None:
    urban = [h for h in sample.households if "tenure" in h.command.answers]
    assert 0.1 < share(len(urban), HOUSEHOLDS) < 0.35
    assert all("land_ha" not in h.command.answers for h in urban)
    assert sample.stats.urban == len(urban)


def test_poor_levels_split_about_40_60(sample: Sample) -> None:
    levels = sample.stats.by_level
    assert levels[PovertyLevel.NOT_POOR] == 0
    assert abs(share(levels[PovertyLevel.POOR_1], HOUSEHOLDS) - synthetic.POOR_1_OF_POOR) < 0.05


# --- distributions (DOMAIN.md §8) ---------------------------------------------------------------


def test_household_size(sample: Sample) -> None:
    sizes = Counter(len(h.command.members) for h in sample.households)
    assert abs(sample.stats.members / HOUSEHOLDS - 2_783_989 / 705_487) < 0.3
    assert min(sizes) == 1
    assert max(sizes) <= 12
    assert sizes[1] > 0.04 * HOUSEHOLDS and sum(n for size, n in sizes.items() if size >= 8) > 0


def test_vulnerable_shares_follow_the_caseload(sample: Sample) -> None:
    people = members(sample)
    assert len(people) == sample.stats.members
    under_5 = sum(age < 5 for age, _, _ in people)
    elderly = sum(age >= 60 for age, _, _ in people)
    assert (under_5, elderly) == (sample.stats.under_5, sample.stats.elderly_60)
    assert abs(share(under_5, len(people)) - CASELOAD_SHARES["under_5"]) < 0.02
    assert abs(share(elderly, len(people)) - CASELOAD_SHARES["elderly_60"]) < 0.03
    assert abs(share(sample.stats.with_disability, len(people)) - CASELOAD_SHARES["with_disability"]) < 0.01
    assert sample.stats.living_with_hiv < 0.003 * len(people)


def test_sexes_heads_and_relationships(sample: Sample) -> None:
    people = members(sample)
    assert 0.45 < share(sum(sex == Sex.F for _, sex, _ in people), len(people)) < 0.55
    assert 0.2 < share(sample.stats.female_headed, HOUSEHOLDS) < 0.33
    relationships = Counter(m.relationship for h in sample.households for m in h.command.members)
    for relationship in (
        Relationship.SPOUSE,
        Relationship.CHILD,
        Relationship.PARENT,
        Relationship.OTHER_RELATIVE,
    ):
        assert relationships[relationship] > 0


def test_children_are_younger_than_their_head(sample: Sample) -> None:
    for household in sample.households:
        day = household.command.interviewed_on
        ages = {m.relationship: age_on(m.date_of_birth, day) for m in household.command.members}
        head_age = ages[Relationship.HEAD]
        children = [m for m in household.command.members if m.relationship == Relationship.CHILD]
        assert all(age_on(child.date_of_birth, day) <= head_age - 15 for child in children)


def test_school_pregnancy_and_estimated_births(sample: Sample) -> None:
    people = members(sample)
    school_age = [in_school for age, _, in_school in people if 6 <= age <= 17]
    assert 0.7 < share(sum(school_age), len(school_age)) < 0.95
    assert not any(in_school for age, _, in_school in people if age < 6)
    everyone = [m for h in sample.households for m in h.command.members]
    pregnant = [m for m in everyone if m.is_pregnant]
    assert pregnant and all(m.sex == Sex.F and m.expected_delivery_date for m in pregnant)
    estimated = [m for m in everyone if m.dob_estimated]
    assert estimated and all(m.date_of_birth.month == 7 and m.date_of_birth.day == 1 for m in estimated)


def test_households_spread_over_provinces_by_population(sample: Sample) -> None:
    provinces = sample.stats.by_province
    assert len(provinces) == 25
    assert provinces.most_common(1)[0][0] == "12"  # Phnom Penh, the most populous
    assert provinces["23"] < provinces["08"]  # Kep is the smallest, Kandal large


# --- edges ------------------------------------------------------------------------------------


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="poor_share"):
        list(generate(1, poor_share=1.5))
    with pytest.raises(ValueError, match="n_households"):
        list(generate(-1))


def test_a_leap_day_interview_keeps_ages_and_levels() -> None:
    day = date(2024, 2, 29)
    households = list(iter_households(200, seed=8, interviewed_on=day))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(ALL_COLUMNS)
    writer.writerows(row for household in households for row in household.rows)
    parsed, errors = parse(out.getvalue().encode())
    units = load_commune_units()
    assert (len(parsed), errors) == (200, [])
    assert all(h.command.interviewed_on == day for h in parsed)
    assert [scored_level(h, units) for h in parsed] == [h.expected_level for h in households]


def test_cli_prints_the_stats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.csv"
    synthetic.main([str(out), "--households", "40", "--seed", "2", "--workers", "1"])
    printed = capsys.readouterr().out
    assert "households" in printed and "40" in printed and "households/s" in printed
    households, errors = parse(out.read_bytes())
    assert (len(households), errors) == (40, [])
