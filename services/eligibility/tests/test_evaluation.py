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
from krousar_common.events.eligibility import EligibilityDecided, Enrolment, ProgrammeDecision

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


def test_the_event_built_from_plain_data_is_the_validated_decisions_of_the_household() -> None:
    snapshot = make_household(make_member(date_of_birth=date(1950, 1, 1)))
    facts = Facts(Household(projection_row(snapshot)), enrolment_of(ENROLLED.model_dump()))
    items = [
        Decided(facts, programme, decision, fingerprint(decision, facts, programme))
        for programme in (FAMILY, COVID)
        for decision in [domain.decide(programme, facts.household, facts.enrolment, DAY)]
    ]
    now = datetime.now(UTC)

    envelope = decision_envelope(items, snapshot.model_dump_json(), DAY, now, "test")
    decoded, event = decode(envelope.to_bytes())

    assert (decoded.subject, decoded.type) == (str(snapshot.household_id), "krousar.EligibilityDecided")
    assert event == EligibilityDecided(
        household_id=snapshot.household_id,
        effective_on=DAY,
        decided_at=now,
        household=snapshot,
        enrolment=ENROLLED,
        conditions=[],
        decisions=[  # in programme code order
            ProgrammeDecision(
                programme_code=item.decision.programme_code,
                programme_version=item.decision.programme_version,
                eligible=item.decision.eligible,
                reasons=list(item.decision.reasons),
            )
            for item in sorted(items, key=lambda i: i.decision.programme_code)
        ],
    )
    assert [d.programme_code for d in event.decisions] == ["COVID19_CT", "FAMILY_PACKAGE"]
    assert event.decisions[1].eligible
