"""The household as deciding reads it: its projection row (``krousar_common.household_facts``,
shared with payments, which reads its decisions the same way)."""

from krousar_common.household_facts import (
    COLUMNS,
    Card,
    Household,
    LocationPeriod,
    Member,
    facts_of,
)

__all__ = ["COLUMNS", "Card", "Household", "LocationPeriod", "Member", "facts_of"]
