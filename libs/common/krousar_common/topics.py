"""Every Kafka topic of the system, with its partition count and message key.

The local stack and docker-compose both create exactly these topics (auto-create is off).
A deployment may prefix every name (``KROUSAR_TOPIC_PREFIX``), which tests use to isolate runs.
"""

from dataclasses import dataclass

DEFAULT_PARTITIONS = 12


@dataclass(frozen=True)
class Topic:
    name: str
    key: str
    partitions: int = DEFAULT_PARTITIONS

    @property
    def dlq(self) -> str:
        return f"{self.name}.dlq"


HOUSEHOLDS = Topic("registry.households.v1", key="household_id")
DECISIONS = Topic("eligibility.decisions.v1", key="household_id")
TOPUPS = Topic("programmes.topups.v1", key="programme_code")
INSTRUCTIONS = Topic("payments.instructions.v1", key="household_id")
RUNS = Topic("payments.runs.v1", key="run_id")
STATUSES = Topic("payments.status.v1", key="household_id")

ALL_TOPICS: tuple[Topic, ...] = (HOUSEHOLDS, DECISIONS, TOPUPS, INSTRUCTIONS, RUNS, STATUSES)


def all_topic_names(prefix: str = "") -> list[str]:
    """Every topic the stack creates, dead-letter topics included."""
    names = [t.name for t in ALL_TOPICS] + [t.dlq for t in ALL_TOPICS]
    return [prefix + n for n in names]
