"""Bulk import in small batches on the real stack: households that depend on each other are decided
together wherever they sit in the file, and a village's card numbers stay a count of its cards."""

import pytest
from factories import (
    URBAN_NOT_POOR_ANSWERS,
    URBAN_POOR_ANSWERS,
    csv_file,
    household_csv_rows,
    make_household,
    make_member,
    random_khmer_name,
    random_national_id,
)
from krousar_common.testing import ServiceProcess, bearer

ADMIN = bearer("admin-1", "registry_admin")
VILLAGE = "12010104"


@pytest.fixture(scope="module")
async def api(stack):
    service = await ServiceProcess("registration", stack, REGISTRATION_IMPORT_BATCH_SIZE="2").start()
    async with service.client() as client:
        yield client
    service.stop()


def one_member(answers: dict, **member: object) -> dict:
    head = {"name_km": random_khmer_name(), "national_id": random_national_id(), **member}
    return make_household(village_code=VILLAGE, answers=answers, members=[make_member(**head)])


async def test_a_file_decided_across_batches_as_if_whole(api, stack) -> None:
    shared_id, twin = random_national_id(), random_khmer_name()
    households = {
        "A": one_member(URBAN_POOR_ANSWERS, national_id=shared_id),
        "B": one_member(URBAN_POOR_ANSWERS),
        "C": one_member(URBAN_POOR_ANSWERS, name_km=twin),
        "D": one_member(URBAN_NOT_POOR_ANSWERS),
        "E": one_member(URBAN_POOR_ANSWERS, national_id=shared_id),
        "F": one_member(URBAN_POOR_ANSWERS),
        "G": one_member(URBAN_POOR_ANSWERS, name_km=twin),
    }
    conn = await stack.connect("registration")
    try:
        last_before = await conn.fetchval(
            "SELECT coalesce(max(last_seq), 0) FROM village_card_sequences WHERE village_code = $1", VILLAGE
        )
        rows = [row for ref, household in households.items() for row in household_csv_rows(ref, household)]
        response = await api.post(
            "/v1/imports",
            params={"wait": "true"},
            content=csv_file(rows),
            headers={**ADMIN, "Content-Type": "text/csv"},
        )
        assert response.status_code == 200, response.text
        result = response.json()
        written = {
            ref: await conn.fetchrow(
                "SELECT h.household_id, h.possible_duplicate, c.card_number FROM members m"
                " JOIN households h USING (household_id) LEFT JOIN cards c USING (household_id)"
                " WHERE m.national_id = $1",
                household["members"][0]["national_id"],
            )
            for ref, household in households.items()
            if ref not in ("A", "E")
        }
        last_after = await conn.fetchval(
            "SELECT last_seq FROM village_card_sequences WHERE village_code = $1", VILLAGE
        )
    finally:
        await conn.close()

    assert (result["households_imported"], result["households_rejected"]) == (5, 2)
    assert {(e["household_ref"], e["field"]) for e in result["errors"]} == {
        ("A", "national_id"),
        ("E", "national_id"),
    }
    assert {ref: row["possible_duplicate"] for ref, row in written.items()} == {
        "B": False,
        "C": True,
        "D": False,
        "F": False,
        "G": True,
    }
    assert written["D"]["card_number"] is None
    numbers = sorted(int(row["card_number"].split("-")[1]) for ref, row in written.items() if ref != "D")
    assert numbers == list(range(last_before + 1, last_before + 5))
    assert last_after == last_before + 4
