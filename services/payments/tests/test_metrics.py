from payments.metrics import runs_past_claim_window


def test_runs_past_claim_window_counts_every_programme_with_runs() -> None:
    # (programme, state, INSTRUCTED runs past their claim window), as RUNS_SQL returns them
    rows = [
        {"programme_code": "FAMILY_PACKAGE", "state": "INSTRUCTED", "past_claim_window": 2},
        {"programme_code": "FAMILY_PACKAGE", "state": "RECONCILED", "past_claim_window": 0},
        {"programme_code": "COVID19_CT", "state": "RECONCILED", "past_claim_window": 0},
    ]
    assert sorted(runs_past_claim_window(rows)) == [(("COVID19_CT",), 0), (("FAMILY_PACKAGE",), 2)]
