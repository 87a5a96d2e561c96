"""The CSV a bank or PSP gets for an approved run: one row per payment line."""

import csv
import io
from collections.abc import Iterable, Mapping
from typing import Any

COLUMNS = [
    "payment_id",
    "run_id",
    "programme_code",
    "period",
    "household_id",
    "component",
    "amount_riel",
    "currency",
    "payee_name",
    "channel",
    "account",
    "province_code",
    "commune_code",
    "village_code",
    "available_from",
    "claim_until",
    "status",
    "explanation",
]


def rows_to_csv(run: Mapping[str, Any], lines: Iterable[Mapping[str, Any]], *, header: bool) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(COLUMNS)
    for line in lines:
        writer.writerow(
            [
                line["payment_id"],
                run["run_id"],
                run["programme_code"],
                run["period"],
                line["household_id"],
                line["component"],
                line["amount_riel"],
                "KHR",
                line["payee_name"],
                line["channel"],
                line["account"] or "",
                line["province_code"],
                line["commune_code"],
                line["village_code"],
                run["available_from"],
                run["claim_until"],
                line["status"],
                line["explanation"],
            ]
        )
    return out.getvalue()
