from pathlib import Path

from krousar_common.ports import SERVICE_PORTS
from krousar_common.settings import ServiceSettings
from pydantic_settings import SettingsConfigDict


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REGISTRATION_", extra="ignore")

    service_name: str = "registration"
    port: int = SERVICE_PORTS["registration"]
    card_valid_years: int = 3  # configurable by law's absence: DOMAIN.md §4 default
    coverage_refresh_seconds: float = 15  # how often the registry gauges are read from the database
    import_batch_size: int = 5000  # households an import prepares while the batch before is written
    import_spool_dir: Path | None = None  # where uploads wait for their import (None: the system's temp dir)
