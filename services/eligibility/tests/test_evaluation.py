"""What makes a decision worth publishing again (pure parts of eligibility.evaluation)."""

from datetime import UTC, date, datetime

from eligibility import domain
from eligibility.evaluation import (
    Decided,
    Facts,
    Publishing,
    StoredEnrolment,
    _publishable,
    decision_envelope,
    enrolment_of,
    fingerprint,
)
from eligibility.household import Household
from eligibility_factories import (
    COVID,
    ENROLLED,
    FAMILY,
    make_enrolment,
    make_household,
    make_member,
    projection_row,
)
from krousar_common.events import decode
from krousar_common.events.eligibility import EligibilityDecided, Enrolment

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


def test_a_stored_enrolment_is_the_enrolment_a_decision_carries() -> None:
    stored = StoredEnrolment(*(getattr(ENROLLED, name) for name in Enrolment.model_fields))

    assert StoredEnrolment._fields == tuple(Enrolment.model_fields)
    assert stored.data() == ENROLLED.model_dump(mode="json")


def test_the_event_built_from_plain_data_is_the_validated_decision() -> None:
    snapshot = make_household(make_member(date_of_birth=date(1950, 1, 1)))
    facts = Facts(Household(projection_row(snapshot)), enrolment_of(ENROLLED.model_dump()))
    decision = domain.decide(FAMILY, facts.household, facts.enrolment, DAY)
    item = Decided(facts, FAMILY, decision, fingerprint(decision, facts, FAMILY))
    now = datetime.now(UTC)

    envelope = decision_envelope(item, snapshot.model_dump_json(), DAY, now, "test")
    decoded, event = decode(envelope.to_bytes())

    assert (decoded.subject, decoded.type) == (str(snapshot.household_id), "krousar.EligibilityDecided")
    assert event == EligibilityDecided(
        household_id=snapshot.household_id,
        programme_code="FAMILY_PACKAGE",
        programme_version=FAMILY.version,
        eligible=True,
        reasons=[],
        effective_on=DAY,
        decided_at=now,
        household=snapshot,
        enrolment=ENROLLED,
        conditions=[],
    )
