"""Simulator metrics."""

from prometheus_client import Counter

INSTRUCTIONS = Counter(
    "krousar_psp_instructions_total",
    "Payment instructions received, by outcome (new, or repeat of a payment id already held).",
    ["outcome"],
)
STATUSES_REPORTED = Counter(
    "krousar_psp_statuses_reported_total", "Statuses published, duplicates included.", ["status"]
)
