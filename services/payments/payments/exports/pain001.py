"""ISO 20022 pain.001.001.03 (customer credit transfer initiation), the file banks take.

One message per run, one payment information block (the run: one debtor account, one
requested execution date, the day the money becomes available) and one credit transfer per
payment line. Identifiers are the run id and payment id without dashes (32 characters, under the
35 the schema allows); amounts are whole riel with currency KHR.
"""

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

XSD = Path(__file__).with_name("pain.001.001.03.xsd")
NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"
CURRENCY = "KHR"


def _text(value: object, limit: int) -> str:
    return escape(str(value)[:limit])


def _account(account_id: str) -> str:
    return f"<Id><Othr><Id>{_text(account_id, 34)}</Id></Othr></Id>"


def _agent(agent_id: str) -> str:
    return f"<FinInstnId><Othr><Id>{_text(agent_id, 35)}</Id></Othr></FinInstnId>"


def header(
    run: Mapping[str, Any],
    *,
    transactions: int,
    total_riel: int,
    created_at: datetime,
    debtor: Mapping[str, str],
) -> str:
    """Everything before the first transaction."""
    run_ref = run["run_id"].hex
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Document xmlns={quoteattr(NAMESPACE)}><CstmrCdtTrfInitn>"
        f"<GrpHdr><MsgId>{run_ref}</MsgId><CreDtTm>{created_at.strftime('%Y-%m-%dT%H:%M:%S')}</CreDtTm>"
        f"<NbOfTxs>{transactions}</NbOfTxs><CtrlSum>{total_riel}</CtrlSum>"
        f"<InitgPty><Nm>{_text(debtor['name'], 140)}</Nm></InitgPty></GrpHdr>"
        f"<PmtInf><PmtInfId>{run_ref}</PmtInfId><PmtMtd>TRF</PmtMtd><BtchBookg>false</BtchBookg>"
        f"<NbOfTxs>{transactions}</NbOfTxs><CtrlSum>{total_riel}</CtrlSum>"
        f"<ReqdExctnDt>{run['available_from'].isoformat()}</ReqdExctnDt>"
        f"<Dbtr><Nm>{_text(debtor['name'], 140)}</Nm></Dbtr>"
        f"<DbtrAcct>{_account(debtor['account'])}<Ccy>{CURRENCY}</Ccy></DbtrAcct>"
        f"<DbtrAgt>{_agent(debtor['agent'])}</DbtrAgt><ChrgBr>SLEV</ChrgBr>\n"
    )


def transaction(run: Mapping[str, Any], line: Mapping[str, Any]) -> str:
    """One credit transfer: the payee, their PSP (channel) and account, the amount, a reference."""
    account = f"<CdtrAcct>{_account(line['account'])}</CdtrAcct>" if line["account"] else ""
    reference = (
        f"{run['programme_code']} {run['period']} {line['component']} household {line['household_id']}"
    )
    return (
        f"<CdtTrfTxInf><PmtId><InstrId>{line['payment_id'].hex}</InstrId>"
        f"<EndToEndId>{line['payment_id'].hex}</EndToEndId></PmtId>"
        f'<Amt><InstdAmt Ccy="{CURRENCY}">{line["amount_riel"]}</InstdAmt></Amt>'
        f"<CdtrAgt>{_agent(line['channel'])}</CdtrAgt>"
        f"<Cdtr><Nm>{_text(line['payee_name'], 140)}</Nm></Cdtr>{account}"
        f"<RmtInf><Ustrd>{_text(reference, 140)}</Ustrd></RmtInf></CdtTrfTxInf>\n"
    )


FOOTER = "</PmtInf></CstmrCdtTrfInitn></Document>\n"
