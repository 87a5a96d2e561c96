"""The eligibility benchmark plans its caseload with registration's import code: a change there must
not leave the benchmark broken until someone runs `make bench`."""

from pathlib import Path

import orjson
from eligibility import household
from registration import synthetic

from bench import eligibility_data


def test_planned_snapshots_are_what_eligibility_stores(tmp_path: Path) -> None:
    source = tmp_path / "households.csv"
    synthetic.write_csv(source, 60, seed=7, workers=1)
    [text] = eligibility_data.csv_chunks(source)

    lines = eligibility_data.plan_chunk((0, text)).splitlines()

    assert len(lines) == 60
    snapshots = [orjson.loads(line) for line in lines]
    assert all(s["members"] and s["village_code"] for s in snapshots)
    poor = [s for s in snapshots if s["poverty_level"] != "NOT_POOR"]
    assert poor and all(s["card"]["card_number"].startswith(s["village_code"]) for s in poor)
    row = eligibility_data.household_row(snapshots[0], lines[0].decode())
    assert orjson.loads(row[-1]) == household.facts_of(snapshots[0])
