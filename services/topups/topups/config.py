from pathlib import Path

from krousar_common.ports import SERVICE_PORTS
from krousar_common.settings import ServiceSettings
from pydantic import Field
from pydantic_settings import SettingsConfigDict

PACKAGED_SEED = Path(__file__).resolve().parent / "seed"


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TOPUPS_", extra="ignore")

    service_name: str = "topups"
    port: int = SERVICE_PORTS["topups"]
    # Routine programmes are data: an operator ships a new version (new rates, a new end date) by
    # dropping a JSON file in one of these folders, no code change. The packaged seed comes first.
    seed_dirs: list[Path] = Field(default_factory=lambda: [PACKAGED_SEED])
