import os

from krousar_common.ports import SERVICE_PORTS
from krousar_common.settings import ServiceSettings
from pydantic import Field
from pydantic_settings import SettingsConfigDict


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ELIGIBILITY_", extra="ignore")

    service_name: str = "eligibility"
    port: int = SERVICE_PORTS["eligibility"]
    pwyc_code: str = "PWYC"  # the programme whose conditions health staff record
    decider_batch_size: int = 1000  # queued households decided per transaction
    # Loops draining the queue side by side (each its own transaction, households they share are
    # skipped by the other): while one waits on PostgreSQL, the other decides.
    decider_loops: int = 2
    evaluation_batch_size: int = 2000  # households per transaction in a full re-evaluation
    # Processes a full re-evaluation is split over (deciding is Python: one core each); 1 decides
    # in the service process. Registers smaller than evaluation_workers_from are decided in the
    # service process too: starting processes would cost more than it saves.
    evaluation_workers: int = Field(default_factory=lambda: os.cpu_count() or 1)
    evaluation_workers_from: int = 20_000
    clock_check_seconds: float = 600  # how often the daily job looks whether the day changed
    coverage_refresh_seconds: float = 30
    # False: decide and store, publish nothing. For a rehearsal (a day held in the past) or a
    # replay check next to the live service: payments must not see its decisions.
    publish_decisions: bool = True
