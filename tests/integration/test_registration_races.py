"""Registrations at the same moment on the real stack: one national ID, one village's card numbers."""

import asyncio

from factories import URBAN_POOR_ANSWERS, make_household, make_member, random_khmer_name, random_national_id
from krousar_common.testing import bearer

ADMIN = bearer("admin-1", "registry_admin")
VILLAGES = ["12010101", "12010102", "12010103", "12010104"]


async def test_one_national_id_registered_at_once_in_several_villages_wins_once(registration, stack) -> None:
    national_id = random_national_id()
    bodies = [
        make_household(
            village_code=village,
            members=[make_member(name_km=random_khmer_name(), national_id=national_id)],
        )
        for village in VILLAGES
    ]
    async with registration.client() as api:
        responses = await asyncio.gather(*(api.post("/v1/households", json=b, headers=ADMIN) for b in bodies))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 409, 409, 409], [r.text for r in responses]
    conn = await stack.connect("registration")
    try:
        households = await conn.fetchval(
            "SELECT count(DISTINCT household_id) FROM members WHERE national_id = $1", national_id
        )
        # Nothing of the three that lost: no household row without members, no card, no event.
        orphans = await conn.fetchval(
            "SELECT count(*) FROM households h WHERE NOT EXISTS"
            " (SELECT FROM members m WHERE m.household_id = h.household_id)"
        )
    finally:
        await conn.close()
    assert (households, orphans) == (1, 0)


async def test_cards_issued_at_once_in_one_village_are_numbered_without_gaps(registration, stack) -> None:
    village = "12010105"
    bodies = [
        make_household(
            village_code=village,
            answers=URBAN_POOR_ANSWERS,
            members=[make_member(name_km=random_khmer_name(), national_id=random_national_id())],
        )
        for _ in range(12)
    ]
    async with registration.client() as api:
        responses = await asyncio.gather(*(api.post("/v1/households", json=b, headers=ADMIN) for b in bodies))

    assert {r.status_code for r in responses} == {201}, [r.text for r in responses]
    numbers = sorted(r.json()["card"]["card_number"] for r in responses)
    conn = await stack.connect("registration")
    try:
        last = await conn.fetchval(
            "SELECT last_seq FROM village_card_sequences WHERE village_code = $1", village
        )
    finally:
        await conn.close()
    sequences = [int(number.split("-")[1]) for number in numbers]
    assert sequences == list(range(last - 11, last + 1))
