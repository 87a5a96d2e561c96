"""The pain.001 export is valid ISO 20022 (against the official pain.001.001.03 schema)."""

import uuid
from datetime import UTC, date, datetime

import xmlschema
from payments.exports import pain001

RUN = {
    "run_id": uuid.uuid4(),
    "programme_code": "COVID19_CT",
    "period": "2020-07",
    "available_from": date(2020, 7, 25),
}
DEBTOR = {"name": "Ministry of Economy & Finance", "account": "KHR-0001", "agent": "NBC"}


def line(amount: int, account: str | None = "012345678", payee: str = "សុខ ចាន់ <Sok>") -> dict:
    return {
        "payment_id": uuid.uuid4(),
        "household_id": uuid.uuid4(),
        "component": "MONTHLY",
        "amount_riel": amount,
        "payee_name": payee,
        "channel": "WING",
        "account": account,
    }


def test_a_run_is_one_valid_message_with_one_transfer_per_line() -> None:
    lines = [line(592_000), line(120_000, account=None), line(80_000, payee="x" * 300)]
    xml = (
        pain001.header(
            RUN,
            transactions=3,
            total_riel=792_000,
            created_at=datetime(2020, 7, 20, tzinfo=UTC),
            debtor=DEBTOR,
        )
        + "".join(pain001.transaction(RUN, item) for item in lines)
        + pain001.FOOTER
    )

    schema = xmlschema.XMLSchema(str(pain001.XSD))
    schema.validate(xml)
    document = schema.to_dict(xml)["CstmrCdtTrfInitn"]
    assert document["GrpHdr"]["NbOfTxs"] == "3"
    assert document["GrpHdr"]["InitgPty"]["Nm"] == "Ministry of Economy & Finance"
    transfers = document["PmtInf"][0]["CdtTrfTxInf"]
    assert [t["Amt"]["InstdAmt"]["$"] for t in transfers] == [592000, 120000, 80000]
    assert transfers[0]["Cdtr"]["Nm"] == "សុខ ចាន់ <Sok>"
    assert transfers[0]["PmtId"]["EndToEndId"] == lines[0]["payment_id"].hex
    assert "CdtrAcct" not in transfers[1]
