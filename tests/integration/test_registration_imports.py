"""Bulk CSV import of a round on the real stack: bad households out, good ones written and published."""

import asyncio
import uuid

import pytest
from factories import (
    RURAL_POOR_ANSWERS,
    csv_file,
    household_csv_rows,
    make_household,
    make_member,
    random_khmer_name,
    random_national_id,
)
from household_events import HouseholdEvents
from krousar_common.testing import bearer, token, wait_for
from registration import cli
from typer.testing import CliRunner

ADMIN = bearer("admin-1", "registry_admin")
STAFF = bearer("staff-phnom-penh", "commune_staff", communes=["120101"])
OTHER_STAFF = bearer("staff-banteay-meanchey", "commune_staff", communes=["010201"])
VIEWER = bearer("viewer-1", "viewer")
PP_VILLAGE = "12010103"
RURAL_VILLAGE = "01020103"
CSV = {"Content-Type": "text/csv"}
TABLES = ("households", "members", "assessments", "cards", "audit_log")


@pytest.fixture(scope="module")
async def household_events(stack):
    async with HouseholdEvents(stack) as events:
        yield events


@pytest.fixture
async def api(registration):
    async with registration.client() as client:
        yield client


def two_members(**head: object) -> list[dict]:
    return [
        make_member(national_id=random_national_id(), **head),
        make_member(
            name_km="សុខ ដារ៉ា",
            sex="M",
            date_of_birth="2022-01-01",
            relationship="CHILD",
            national_id=random_national_id(),
        ),
    ]


async def upload(api, content: bytes, headers: dict = ADMIN):
    return await api.post("/v1/imports", params={"wait": "true"}, content=content, headers={**headers, **CSV})


async def table_counts(conn) -> dict[str, int]:
    counts = {table: await conn.fetchval(f"SELECT count(*) FROM {table}") for table in TABLES}
    # The relay deletes the rows it has sent: count the outbox rows ever written by their sequence.
    counts["outbox"] = await conn.fetchval("SELECT coalesce(pg_sequence_last_value('outbox_id_seq'), 0)")
    return counts


async def households_of(conn, national_ids: list[str]) -> set[str]:
    rows = await conn.fetch(
        "SELECT household_id FROM members WHERE national_id = ANY($1::text[])", national_ids
    )
    return {str(r["household_id"]) for r in rows}


async def test_import_writes_good_households_and_reports_bad_rows(api, stack, household_events) -> None:
    good_urban = make_household(
        village_code=PP_VILLAGE, members=two_members(name_km="សុខ\u200bណា\u200dរី\ufeff")
    )
    good_rural = make_household(village_code=RURAL_VILLAGE, answers=RURAL_POOR_ANSWERS, members=two_members())
    bad_member = make_household(village_code=PP_VILLAGE, members=two_members())
    bad_member["members"][1]["sex"] = "X"
    bad_village = make_household(village_code="12999999", members=two_members()[:1])
    bad_answer = make_household(
        village_code=RURAL_VILLAGE, answers={**RURAL_POOR_ANSWERS, "cattle": "many"}, members=two_members()
    )
    # In file order: lines 2-3, 4-5 (the bad member on 5), 6-7, 8, 9-10.
    households = {
        "G-URBAN": good_urban,
        "B-MEMBER": bad_member,
        "G-RURAL": good_rural,
        "B-VILLAGE": bad_village,
        "B-ANSWER": bad_answer,
    }
    rows = [row for ref, household in households.items() for row in household_csv_rows(ref, household)]
    ids = {ref: [m["national_id"] for m in h["members"]] for ref, h in households.items()}
    conn = await stack.connect("registration")
    try:
        before = await table_counts(conn)
        response = await upload(api, csv_file(rows))
        after = await table_counts(conn)
        written = {ref: await households_of(conn, nids) for ref, nids in ids.items()}
    finally:
        await conn.close()

    assert response.status_code == 200, response.text
    result = response.json()
    assert result["status"] == "SUCCEEDED"
    assert (result["households_total"], result["households_imported"], result["households_rejected"]) == (
        5,
        2,
        3,
    )
    errors = {(e["row"], e["household_ref"], e["field"]) for e in result["errors"]}
    assert errors == {(5, "B-MEMBER", "sex"), (8, "B-VILLAGE", "village_code"), (9, "B-ANSWER", "cattle")}
    assert {ref: len(found) for ref, found in written.items()} == {
        "G-URBAN": 1,
        "G-RURAL": 1,
        "B-MEMBER": 0,
        "B-VILLAGE": 0,
        "B-ANSWER": 0,
    }
    # Two households of two members, each scored poor: nothing at all of the three bad ones.
    delta = {table: after[table] - before[table] for table in after}
    assert delta == {"households": 2, "members": 4, "assessments": 2, "cards": 2, "audit_log": 2, "outbox": 2}
    (urban_id,) = written["G-URBAN"]
    (rural_id,) = written["G-RURAL"]
    urban = (await api.get(f"/v1/households/{urban_id}", headers=ADMIN)).json()
    rural = (await api.get(f"/v1/households/{rural_id}", headers=ADMIN)).json()
    assert urban["members"][0]["name_km"] == "សុខណារី"  # zero-width characters removed
    assert (urban["location_category"], urban["questionnaire"]) == ("PHNOM_PENH", "URBAN")
    assert (rural["location_category"], rural["questionnaire"]) == ("RURAL", "RURAL")
    for household in (urban, rural):
        assert household["card"]["status"] == "ACTIVE"
        (message,) = await household_events.wait(household["household_id"], "krousar.HouseholdRegistered")
        snapshot = message.event.household
        assert (snapshot.version, len(snapshot.members)) == (1, 2)
        assert snapshot.card.card_number == household["card"]["card_number"]
        assert snapshot.members[0].name_km == household["members"][0]["name_km"]


async def test_a_file_that_is_not_utf8_is_422(api) -> None:
    rows = household_csv_rows("H1", make_household(village_code=PP_VILLAGE))
    response = await upload(api, csv_file(rows).decode().encode("utf-16"))

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == ["body"]


async def test_a_field_too_large_to_read_rejects_the_file_naming_its_line(api) -> None:
    rows = household_csv_rows("H1", make_household(village_code=PP_VILLAGE))
    rows[1]["name_latin"] = "x" * 200_000
    response = await upload(api, csv_file(rows))

    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["status"], result["households_imported"]) == ("REJECTED", 0)
    assert result["message"].startswith("line 3: malformed CSV (field larger than field limit")


async def test_a_file_missing_a_required_column_is_422(api, stack) -> None:
    household = make_household(village_code=PP_VILLAGE)
    rows = household_csv_rows("H1", household)
    columns = [c for c in dict.fromkeys(k for row in rows for k in row) if c != "relationship"]
    response = await upload(api, csv_file(rows, columns))

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "relationship" in response.json()["detail"]
    conn = await stack.connect("registration")
    try:
        assert await households_of(conn, [household["members"][0]["national_id"]]) == set()
    finally:
        await conn.close()


async def test_commune_staff_cannot_import_outside_their_communes(api, stack) -> None:
    theirs = make_household(village_code=PP_VILLAGE, members=two_members())
    elsewhere = make_household(village_code=RURAL_VILLAGE, answers=RURAL_POOR_ANSWERS, members=two_members())
    content = csv_file([*household_csv_rows("MINE", theirs), *household_csv_rows("NOT-MINE", elsewhere)])

    response = await upload(api, content, STAFF)

    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["households_imported"], result["households_rejected"]) == (1, 1)
    (error,) = result["errors"]
    assert (error["row"], error["household_ref"]) == (4, "NOT-MINE")
    assert "010201" in error["message"]
    conn = await stack.connect("registration")
    try:
        assert len(await households_of(conn, [theirs["members"][0]["national_id"]])) == 1
        assert await households_of(conn, [m["national_id"] for m in elsewhere["members"]]) == set()
    finally:
        await conn.close()


async def test_commune_staff_read_only_the_imports_they_uploaded(api) -> None:
    bad = make_household(village_code="12999999", members=two_members()[:1])
    response = await upload(api, csv_file(household_csv_rows("H1", bad)), STAFF)
    reads = [response.headers["location"], f"{response.headers['location']}/errors.csv"]

    refused = [(await api.get(url, headers=OTHER_STAFF)).status_code for url in reads]
    allowed = [(await api.get(url, headers=h)).status_code for url in reads for h in (STAFF, VIEWER)]

    assert refused == [403, 403]
    assert allowed == [200] * 4


async def test_import_errors_are_downloadable_as_csv(api) -> None:
    bad = make_household(village_code="12999999", members=two_members()[:1])
    response = await upload(api, csv_file(household_csv_rows(f"REF-{uuid.uuid4().hex[:6]}", bad)))
    errors = await api.get(f"{response.headers['location']}/errors.csv", headers=ADMIN)

    assert errors.status_code == 200
    lines = errors.text.splitlines()
    assert lines[0] == "row,household_ref,field,message"
    assert lines[1].startswith("2,REF-") and ",village_code," in lines[1]


async def test_import_rejects_national_ids_held_elsewhere_or_repeated(api, stack) -> None:
    registered = await api.post("/v1/households", json=make_household(village_code=PP_VILLAGE), headers=ADMIN)
    assert registered.status_code == 201, registered.text
    held_id = registered.json()["members"][0]["national_id"]
    shared_id = random_national_id()
    households = {
        "HELD": make_household(village_code=PP_VILLAGE, members=[make_member(national_id=held_id)]),
        "TWICE-1": make_household(village_code=PP_VILLAGE, members=[make_member(national_id=shared_id)]),
        "TWICE-2": make_household(village_code=PP_VILLAGE, members=[make_member(national_id=shared_id)]),
        "FINE": make_household(village_code=PP_VILLAGE, members=two_members()),
    }
    rows = [row for ref, household in households.items() for row in household_csv_rows(ref, household)]

    response = await upload(api, csv_file(rows))

    assert response.status_code == 200, response.text
    result = response.json()
    assert result["households_imported"] == 1
    rejected = {(e["row"], e["household_ref"], e["field"]) for e in result["errors"]}
    assert rejected == {
        (2, "HELD", "national_id"),
        (3, "TWICE-1", "national_id"),
        (4, "TWICE-2", "national_id"),
    }
    assert registered.json()["household_id"] in next(
        e["message"] for e in result["errors"] if e["household_ref"] == "HELD"
    )
    conn = await stack.connect("registration")
    try:
        assert await households_of(conn, [held_id, shared_id]) == {registered.json()["household_id"]}
    finally:
        await conn.close()


async def test_a_retried_upload_with_the_same_idempotency_key_imports_nothing_again(api, stack) -> None:
    file_name = f"round-{uuid.uuid4().hex[:8]}.csv"
    household = make_household(village_code=PP_VILLAGE, members=[make_member(name_km=random_khmer_name())])
    content = csv_file(household_csv_rows("H1", household))
    headers = {**ADMIN, **CSV, "Idempotency-Key": str(uuid.uuid4())}
    head = household["members"][0]["name_km"]

    async def imported() -> tuple[int, int]:
        conn = await stack.connect("registration")
        try:
            imports = await conn.fetchval("SELECT count(*) FROM imports WHERE file_name = $1", file_name)
            heads = await conn.fetchval("SELECT count(*) FROM members WHERE name_km = $1", head)
            return imports, heads
        finally:
            await conn.close()

    params = {"wait": "true", "file_name": file_name}
    first = await api.post("/v1/imports", params=params, content=content, headers=headers)
    retry = await api.post("/v1/imports", params=params, content=content, headers=headers)
    other_file = await api.post("/v1/imports", params=params, content=content + content, headers=headers)

    assert first.status_code == retry.status_code == 200, (first.text, retry.text)
    assert first.json()["households_imported"] == 1
    assert retry.json()["import_id"] == first.json()["import_id"]
    assert retry.headers["location"] == first.headers["location"]
    assert retry.headers["idempotent-replayed"] == "true"
    assert other_file.status_code == 422
    assert [e["field"] for e in other_file.json()["errors"]] == ["Idempotency-Key"]
    assert await imported() == (1, 1)


async def test_uploads_are_spooled_to_disk_and_deleted_when_their_import_ends(api, import_spool) -> None:
    household = make_household(village_code=PP_VILLAGE, members=[make_member(name_km=random_khmer_name())])
    content = csv_file(household_csv_rows("H1", household))
    started = await api.post("/v1/imports", content=content, headers={**ADMIN, **CSV})
    refused = await api.post(
        "/v1/imports", content=content.decode().encode("utf-16"), headers={**ADMIN, **CSV}
    )
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first, replayed = [await upload(api, content, {**ADMIN, **key}) for _ in range(2)]

    async def finished() -> bool:
        return (await api.get(started.headers["location"], headers=ADMIN)).json()["status"] != "RUNNING"

    assert started.status_code == 202, started.text
    await wait_for(finished, timeout=30, what="the background import finished")
    assert (await api.get(started.headers["location"], headers=ADMIN)).json()["status"] == "SUCCEEDED"
    assert refused.status_code == 422
    assert first.status_code == replayed.status_code == 200
    assert replayed.headers["idempotent-replayed"] == "true"
    assert list(import_spool.iterdir()) == []


async def test_the_command_line_streams_a_file_and_follows_it_to_the_end(registration, tmp_path) -> None:
    first, second = (make_household(village_code=PP_VILLAGE, members=two_members()) for _ in range(2))
    path = tmp_path / "round.csv"
    path.write_bytes(csv_file(household_csv_rows("H1", first) + household_csv_rows("H2", second)))
    command = ["import", str(path), "--url", registration.url, "--token", token("admin-1", "registry_admin")]

    result = await asyncio.to_thread(CliRunner().invoke, cli.app, command)

    assert result.exit_code == 0, result.output
    assert "SUCCEEDED: 2 imported, 0 rejected" in result.output
