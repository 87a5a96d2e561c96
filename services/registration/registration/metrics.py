"""Registry metrics: coverage gauges read from the database, import counters."""

from datetime import UTC, date, datetime

from krousar_common.metrics import GAUGE_REFRESH_BUSY_SHARE, DatabaseGauges
from krousar_common.runtime import Runtime
from prometheus_client import Counter, Histogram

HOUSEHOLDS = DatabaseGauges(
    "krousar_registry_households",
    "Active registered households by province, poverty level, card status and sex of the head.",
    ["province", "poverty_level", "card_status", "head_sex"],
)
MEMBERS = DatabaseGauges(
    "krousar_registry_members",
    "Current members of active households by province and sex.",
    ["province", "sex"],
)
VULNERABLE_MEMBERS = DatabaseGauges(
    "krousar_registry_vulnerable_members",
    "Current members of active households by province, vulnerable category (today's ages) and sex;"
    " hiv by province only (no sex label).",
    ["province", "category", "sex"],
)
IMPORT_HOUSEHOLDS = Counter(
    "krousar_registry_import_households_total", "Households in imported files by outcome.", ["outcome"]
)
IMPORT_DURATION = Histogram(
    "krousar_registry_import_duration_seconds",
    "Duration of bulk imports.",
    buckets=(1, 5, 10, 30, 60, 120, 300, 600),
)

HOUSEHOLDS_SQL = """
SELECT h.province_code, coalesce(h.poverty_level, 'NONE'), coalesce(c.status, 'NONE'), head.sex, count(*)
FROM households h
JOIN members head ON head.member_id = h.head_member_id
LEFT JOIN LATERAL (
    SELECT status FROM cards WHERE household_id = h.household_id ORDER BY created_at DESC LIMIT 1
) c ON true
WHERE h.status = 'ACTIVE'
GROUP BY 1, 2, 3, 4
"""
MEMBERS_SQL = """
SELECT h.province_code, m.sex, count(*) FROM members m JOIN households h USING (household_id)
WHERE m.active GROUP BY 1, 2
"""
# HIV appears only by province, never split further (DOMAIN.md §2: never below province in
# metrics): its sex label is empty, which Prometheus stores as no label at all.
VULNERABLE_SQL = """
SELECT h.province_code, m.sex,
       count(*) FILTER (WHERE m.date_of_birth > $1::date - interval '5 years'),
       count(*) FILTER (WHERE m.date_of_birth <= $1::date - interval '60 years'),
       count(*) FILTER (WHERE m.has_disability),
       count(*) FILTER (WHERE m.lives_with_hiv)
FROM members m JOIN households h USING (household_id)
WHERE m.active GROUP BY 1, 2
"""
CATEGORIES = ("child_under_5", "elderly_60_plus", "disability")


def vulnerable_samples(rows: list) -> list[tuple[tuple[str, str, str], int]]:
    """(province, category, sex) counts from VULNERABLE_SQL rows; hiv summed over sexes."""
    samples = [((r[0], category, r[1]), r[i + 2]) for r in rows for i, category in enumerate(CATEGORIES)]
    hiv: dict[str, int] = {}
    for r in rows:
        hiv[r[0]] = hiv.get(r[0], 0) + r[5]
    return samples + [((province, "hiv", ""), count) for province, count in hiv.items()]


async def refresh(runtime: Runtime) -> None:
    today: date = datetime.now(UTC).date()
    async with runtime.pool.acquire() as conn:
        households = await conn.fetch(HOUSEHOLDS_SQL)
        members = await conn.fetch(MEMBERS_SQL)
        vulnerable = await conn.fetch(VULNERABLE_SQL, today)
    HOUSEHOLDS.replace((tuple(r[:4]), r[4]) for r in households)
    MEMBERS.replace((tuple(r[:2]), r[2]) for r in members)
    VULNERABLE_MEMBERS.replace(vulnerable_samples(vulnerable))


async def schedule(runtime: Runtime) -> None:
    runtime.every(runtime.settings.coverage_refresh_seconds, refresh, max_busy_share=GAUGE_REFRESH_BUSY_SHARE)  # type: ignore[attr-defined]
