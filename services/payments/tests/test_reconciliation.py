import csv
import io
import uuid

from payments import reconciliation


def group(province: str, **values: int) -> dict:
    row = {"province_code": province, "location_category": "RURAL", "poverty_level": "POOR_1"}
    return {**row, **{name: values.get(name, 0) for name in reconciliation.VALUES}}


def test_groups_add_up_to_the_total_and_by_province() -> None:
    run = {"run_id": uuid.uuid4(), "programme_code": "X", "period": "2020-07", "state": "RECONCILED"}
    groups = [
        group(
            "01",
            expected_riel=300,
            expected_households=3,
            paid_riel=200,
            paid_households=2,
            failed_riel=100,
            failed_households=1,
        ),
        group("02", expected_riel=100, expected_households=1, unclaimed_riel=100, unclaimed_households=1),
    ]

    report = reconciliation.build(run, groups)

    assert report["total"]["expected_riel"] == 400 and report["total"]["paid_households"] == 2
    assert [r["province_code"] for r in report["by_province"]] == ["01", "02"]
    rows = list(csv.DictReader(io.StringIO(reconciliation.to_csv(report))))
    assert rows[-1]["province_code"] == "TOTAL" and rows[-1]["unclaimed_riel"] == "100"
