from krousar_common.ports import SERVICE_PORTS
from krousar_common.settings import ServiceSettings
from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict


class Settings(ServiceSettings):
    """Shares of outcomes are drawn deterministically per payment id (the same id always gets the
    same outcome), so a run's reconciliation can be predicted from its payment ids."""

    model_config = SettingsConfigDict(env_prefix="PSP_", extra="ignore")

    service_name: str = "psp_simulator"
    port: int = SERVICE_PORTS["psp_simulator"]
    paid_share: float = Field(0.95, ge=0, le=1)
    failed_share: float = Field(0.03, ge=0, le=1)  # the rest is left unclaimed
    duplicate_share: float = Field(0.02, ge=0, le=1, description="statuses reported twice")
    settle_delay_seconds: float = Field(1.0, ge=0, description="instruction → PAID or FAILED")
    unclaimed_delay_seconds: float = Field(5.0, ge=0, description="the claim window, compressed")
    seed: str = "krousar"
    report_batch_size: int = 5000
    instruction_batch_size: int = Field(5000, description="instructions applied per transaction")
    report_interval_seconds: float = 0.5

    @model_validator(mode="after")
    def _shares_fit(self) -> "Settings":
        if self.paid_share + self.failed_share > 1:
            raise ValueError("paid_share + failed_share must not exceed 1")
        return self
