"""Settings every service shares. A service subclasses ``ServiceSettings`` with its own env prefix.

Values shared by all services (broker, Redis, PostgreSQL server, JWT secret, topic prefix) fall
back to ``KROUSAR_*`` variables, so one environment configures the whole stack while a single
service can still be pointed elsewhere with its own prefix (``REGISTRATION_KAFKA_BOOTSTRAP``).
"""

import os

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "krousar-dev-secret-change-me-in-production-32b"


def _shared(name: str, default: str) -> str:
    return os.environ.get(f"KROUSAR_{name}", default)


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    service_name: str
    port: int
    database: str = ""
    pg_url: str = Field(default_factory=lambda: _shared("PG_URL", "postgresql://postgres@127.0.0.1:5432"))
    redis_url: str = Field(default_factory=lambda: _shared("REDIS_URL", "redis://127.0.0.1:6379/0"))
    kafka_bootstrap: str = Field(default_factory=lambda: _shared("KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    topic_prefix: str = Field(default_factory=lambda: _shared("TOPIC_PREFIX", ""))
    jwt_secret: str = Field(default_factory=lambda: _shared("JWT_SECRET", DEV_JWT_SECRET))
    log_level: str = Field(default_factory=lambda: _shared("LOG_LEVEL", "info"))
    consumer_group_suffix: str = Field(default_factory=lambda: _shared("GROUP_SUFFIX", ""))
    outbox_poll_seconds: float = 1.0
    # Connections of the service's pool (it opens them as needed). A request holds one for its
    # whole transaction, waits on a busy event loop included: at 200 registrations/s, ten were
    # all taken at once now and then, and every request queued behind them (p99 of seconds).
    database_pool_size: int = 30
    consumer_batch_size: int = 500

    @property
    def database_url(self) -> str:
        return f"{self.pg_url}/{self.database or self.service_name}"

    def topic(self, name: str) -> str:
        return self.topic_prefix + name

    def group(self, name: str) -> str:
        return name + self.consumer_group_suffix
