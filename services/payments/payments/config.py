import os

from krousar_common.ports import SERVICE_PORTS
from krousar_common.settings import ServiceSettings
from pydantic import Field
from pydantic_settings import SettingsConfigDict


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PAYMENTS_", extra="ignore")

    service_name: str = "payments"
    port: int = SERVICE_PORTS["payments"]
    # Households calculated, and lines instructed, per step: one COPY and one outbox COPY per step.
    calculation_batch_size: int = 5000
    # A run of at least this many households is calculated in worker processes (payments/workers.py),
    # one a core: the calculator is Python. Fewer: in the service process, the next page read and
    # the last one written meanwhile.
    calculation_workers: int = Field(default_factory=lambda: os.cpu_count() or 1)
    calculation_workers_from: int = 50_000
    instruction_batch_size: int = 20_000
    # Consumers of eligibility's decisions in the process (they split the topic's partitions): a
    # national evaluation's decisions are decoded by one while another's are written. Three, so
    # that a topic of 3 or 12 partitions splits evenly: with two, one of 3 partitions' runners
    # was done early and the other went on alone (national run: 88.3 s after the evaluation
    # with two, 69.5 s with three).
    decision_consumer_runners: int = 3
    # Each runner decodes its batches of this many decisions or more in a worker process of its own
    # (``batch_consumer.Offload``): the service process only claims and writes them. 0: never.
    decision_workers_from: int = 100
    # PSP statuses applied per transaction (one UPDATE of the lines a batch).
    status_batch_size: int = 5000
    # A batch of statuses waits up to this long while a run's instructions are still being made or
    # published (``instruction.yield_to_instructions``).
    statuses_yield_seconds: float = 5.0
    # The Redis lock of a calculation expires this long after its last renewal (a dead process's
    # lock frees itself); the PostgreSQL guards hold regardless.
    calculation_lock_seconds: int = 60
    # How often unfinished work (a calculation or instruction cut short by a restart) is resumed,
    # and how often instructed runs are checked for reconciliation.
    resume_interval_seconds: float = 5.0
    reconcile_interval_seconds: float = 1.0
    # Lines the PSP has not reported on when a run's claim window has closed become UNCLAIMED, this
    # long after the window (the PSP's last reports may still be on their way); checked this often.
    unclaimed_grace_hours: float = 72.0
    claim_window_interval_seconds: float = 300.0
    # How often the period gauges (every line of each programme's last two payments) are read.
    period_metrics_refresh_seconds: float = 60.0
    # The paying account named in bank exports (ISO 20022 pain.001 debtor).
    debtor_name: str = "Ministry of Economy and Finance, Cambodia"
    debtor_account: str = "KROUSAR-DISBURSEMENT-KHR"
    debtor_agent: str = "NATIONAL-BANK-OF-CAMBODIA"
