"""Set-based SQL for imports: one statement for a whole file instead of one per household."""

from datetime import date
from typing import Any

import asyncpg


async def existing_heads(
    conn: asyncpg.Connection, heads: list[tuple[str, date, str]]
) -> set[tuple[str, date, str]]:
    """Which (head name_km, date of birth, village) already belong to an active household."""
    if not heads:
        return set()
    names, births, villages = zip(*heads, strict=True)
    rows = await conn.fetch(
        "SELECT m.name_km, m.date_of_birth, h.village_code"
        " FROM unnest($1::text[], $2::date[], $3::text[]) AS k(name_km, date_of_birth, village_code)"
        " JOIN members m ON m.name_km = k.name_km AND m.date_of_birth = k.date_of_birth"
        "   AND m.relationship = 'HEAD' AND m.active"
        " JOIN households h ON h.household_id = m.household_id AND h.village_code = k.village_code",
        list(names),
        list(births),
        list(villages),
    )
    return {(r["name_km"], r["date_of_birth"], r["village_code"]) for r in rows}


async def reserve_card_seqs(conn: asyncpg.Connection, counts: dict[str, int]) -> dict[str, int]:
    """Reserve ``counts[village]`` card numbers per village; returns the last reserved seq of each."""
    if not counts:
        return {}
    rows = await conn.fetch(
        "INSERT INTO village_card_sequences (village_code, last_seq)"
        " SELECT * FROM unnest($1::text[], $2::int[])"
        " ON CONFLICT (village_code)"
        " DO UPDATE SET last_seq = village_card_sequences.last_seq + EXCLUDED.last_seq"
        " RETURNING village_code, last_seq",
        list(counts),
        list(counts.values()),
    )
    return {r["village_code"]: r["last_seq"] for r in rows}


async def give_back_card_seqs(conn: asyncpg.Connection, unused: dict[str, int]) -> None:
    """Lower villages' last card numbers by what was reserved and not used."""
    if not unused:
        return
    await conn.execute(
        "UPDATE village_card_sequences s SET last_seq = s.last_seq - u.n"
        " FROM unnest($1::text[], $2::int[]) AS u(village_code, n) WHERE s.village_code = u.village_code",
        list(unused),
        list(unused.values()),
    )


async def classifications_of(conn: asyncpg.Connection, villages: set[str]) -> dict[str, list[Any]]:
    rows = await conn.fetch(
        "SELECT * FROM village_classifications WHERE village_code = ANY($1::text[]) ORDER BY effective_from",
        list(villages),
    )
    found: dict[str, list[Any]] = {}
    for row in rows:
        found.setdefault(row["village_code"], []).append(row)
    return found
