from datetime import UTC, date, datetime, timedelta

from payments.metrics import runs_past_claim_window

GRACE = timedelta(hours=72)
# COVID19_CT 2020-07: available from the 25th for 30 days; its window ends at midnight after
# 23 August in Cambodia (17:00 UTC), and the PSP has 72 hours more.
JULY = {"available_from": date(2020, 7, 25), "claim_until": date(2020, 8, 23)}
INSTRUCTED = datetime(2020, 7, 20, tzinfo=UTC)


def past_at(now: datetime) -> list:
    instructed = [
        {"programme_code": "COVID19_CT", **JULY, "instructed_at": INSTRUCTED},
        {"programme_code": "COVID19_CT", **JULY, "instructed_at": INSTRUCTED},
    ]
    programmes = {"COVID19_CT", "FAMILY_PACKAGE"}
    return sorted(runs_past_claim_window(programmes, instructed, now=now, grace=GRACE))


def test_runs_count_past_their_claim_window_once_the_psp_grace_is_over() -> None:
    closes = datetime(2020, 8, 23, 17, tzinfo=UTC) + GRACE
    assert past_at(closes - timedelta(seconds=1)) == [(("COVID19_CT",), 0), (("FAMILY_PACKAGE",), 0)]
    assert past_at(closes) == [(("COVID19_CT",), 2), (("FAMILY_PACKAGE",), 0)]
