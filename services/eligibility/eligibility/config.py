from krousar_common.ports import SERVICE_PORTS
from krousar_common.settings import ServiceSettings
from pydantic_settings import SettingsConfigDict


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ELIGIBILITY_", extra="ignore")

    service_name: str = "eligibility"
    port: int = SERVICE_PORTS["eligibility"]
