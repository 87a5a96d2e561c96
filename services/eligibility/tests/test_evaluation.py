"""What makes a decision worth publishing again (pure parts of eligibility.evaluation)."""

from datetime import date

from eligibility import domain
from eligibility.evaluation import Facts, Publishing, _publishable, fingerprint
from eligibility_factories import COVID, ENROLLED, FAMILY, make_enrolment, make_household, make_member

DAY = date(2026, 11, 23)
LIVE = Publishing("eligibility.decisions.v1", "test")


def print_of(facts: Facts, programme=FAMILY) -> str:
    decision = domain.decide(programme, facts.household, facts.enrolment, DAY)
    return fingerprint(decision, facts, programme)


def test_an_ineligible_decision_does_not_change_with_the_household() -> None:
    household = make_household()
    newer = household.model_copy(update={"version": 2})

    assert print_of(Facts(household)) == print_of(Facts(newer))


def test_an_eligible_decision_changes_with_the_household_version_and_the_enrolment() -> None:
    household = make_household(make_member(date_of_birth=date(1950, 1, 1)))
    first = print_of(Facts(household, ENROLLED))

    assert print_of(Facts(household.model_copy(update={"version": 2}), ENROLLED)) != first
    assert print_of(Facts(household, make_enrolment())) != first
    assert print_of(Facts(household, ENROLLED)) == first


def test_a_first_decision_of_a_programme_not_running_is_not_published() -> None:
    household = make_household()
    not_running = domain.decide(COVID, household, ENROLLED, DAY)
    running = domain.decide(FAMILY, household, ENROLLED, DAY)

    assert not _publishable(LIVE, None, "x", not_running)
    assert _publishable(LIVE, None, "x", running)
    assert not _publishable(Publishing(None, "rehearsal"), None, "x", running)
