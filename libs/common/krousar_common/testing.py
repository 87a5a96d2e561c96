"""Helpers for tests against the real stack: service processes, polling with a deadline, tokens.

Each test session gets its own topic prefix, databases and consumer groups (``TestStack``), so
sessions can run in parallel on one stack and never read each other's events.
"""

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from redis.asyncio import Redis
from redis.exceptions import RedisError

from krousar_common import auth, db, kafka, topics
from krousar_common.settings import DEV_JWT_SECRET, _shared

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[3]


async def wait_for(
    probe: Callable[[], Awaitable[T]], *, timeout: float = 20, interval: float = 0.1, what: str = "condition"
) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {result!r})")
        await asyncio.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def token(
    user: str, *roles: str, communes: list[str] | None = None, ttl: timedelta = timedelta(hours=1)
) -> str:
    secret = _shared("JWT_SECRET", DEV_JWT_SECRET)
    return auth.mint_token(secret, user_id=user, roles=list(roles), communes=communes, ttl=ttl)


def bearer(user: str, *roles: str, communes: list[str] | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user, *roles, communes=communes)}"}


@dataclass
class TestStack:
    """One test session's isolated slice of the shared stack."""

    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    pg_url: str = field(default_factory=lambda: _shared("PG_URL", "postgresql://postgres@127.0.0.1:5432"))
    kafka_bootstrap: str = field(default_factory=lambda: _shared("KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    redis_url: str = field(default_factory=lambda: _shared("REDIS_URL", "redis://127.0.0.1:6379/0"))

    __test__ = False  # not a pytest test class despite its name

    @property
    def topic_prefix(self) -> str:
        return f"t{self.run_id}."

    def topic(self, name: str) -> str:
        return self.topic_prefix + name

    def database(self, service: str) -> str:
        return f"{service}_t{self.run_id}"

    def group(self, name: str) -> str:
        """The consumer group a service of this session joins as ``name``."""
        return f"{name}.t{self.run_id}"

    def env(self, service: str) -> dict[str, str]:
        return {
            "KROUSAR_TOPIC_PREFIX": self.topic_prefix,
            "KROUSAR_GROUP_SUFFIX": self.group(""),
            "KROUSAR_PG_URL": self.pg_url,
            "KROUSAR_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "KROUSAR_REDIS_URL": self.redis_url,
            f"{service.upper()}_DATABASE": self.database(service),
        }

    async def check_reachable(self) -> None:
        """Fail loudly (never skip) when a component of the real stack is down."""
        await kafka.wait_for_brokers(self.kafka_bootstrap, brokers=1, timeout=10)
        conn = await asyncpg.connect(f"{self.pg_url}/postgres", timeout=5)
        await conn.close()
        await self._check_redis()

    async def _check_redis(self) -> None:
        redis = Redis.from_url(self.redis_url, socket_connect_timeout=3, socket_timeout=3)
        try:
            await redis.ping()
        except (RedisError, OSError) as exc:
            raise AssertionError(
                f"Redis at {self.redis_url} is not reachable ({exc}): start the stack (make infra)"
            ) from exc
        finally:
            await redis.aclose()

    async def committed_offsets(self, group: str) -> dict[TopicPartition, int]:
        """The offsets ``group`` has committed: what its consumers have finished with."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.kafka_bootstrap)
        await admin.start()
        try:
            committed = await admin.list_consumer_group_offsets(group)
        finally:
            await admin.close()
        return {tp: meta.offset for tp, meta in committed.items()}

    async def partitions(self, topic: str) -> list[TopicPartition]:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.kafka_bootstrap)
        await admin.start()
        try:
            (described,) = await admin.describe_topics([topic])
        finally:
            await admin.close()
        return [TopicPartition(topic, p["partition"]) for p in described["partitions"]]

    async def caught_up(self, group: str, topic: str) -> bool:
        """``group`` has committed every message of ``topic``: nothing is left for it to apply. (The
        consumer names the group to read its commits; never subscribed, it joins nothing.)"""
        partitions = await self.partitions(topic)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.kafka_bootstrap, group_id=group, enable_auto_commit=False
        )
        await consumer.start()
        try:
            ends = await consumer.end_offsets(partitions)
            return bool(ends) and all([(await consumer.committed(tp) or 0) >= ends[tp] for tp in partitions])
        finally:
            await consumer.stop()

    async def create_topics(self) -> None:
        await kafka.create_topics(
            self.kafka_bootstrap, topics.all_topic_names(self.topic_prefix), partitions=3, replication=1
        )

    async def connect(self, service: str) -> asyncpg.Connection:
        return await asyncpg.connect(f"{self.pg_url}/{self.database(service)}")

    async def drop(self) -> None:
        conn = await asyncpg.connect(f"{self.pg_url}/postgres")
        try:
            rows = await conn.fetch(
                "SELECT datname FROM pg_database WHERE datname LIKE $1", f"%_t{self.run_id}"
            )
            for row in rows:
                await conn.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')
        finally:
            await conn.close()
        await kafka.delete_topics(self.kafka_bootstrap, topics.all_topic_names(self.topic_prefix))


class ServiceProcess:
    """A real service process (uvicorn) that tests start, kill -9 and restart."""

    def __init__(self, name: str, stack: TestStack, **env: str) -> None:
        self.name = name
        self.stack = stack
        self.port = free_port()
        self.extra_env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = ROOT / ".local" / "log" / f"test-{stack.run_id}-{name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, **kwargs: object) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=30, **kwargs)  # type: ignore[arg-type]

    async def start(self, *, timeout: float = 60) -> "ServiceProcess":
        env = {**os.environ, **self.stack.env(self.name), **self.extra_env}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: ASYNC220 - Popen returns at once
            [
                sys.executable,
                "-m",
                "uvicorn",
                f"{self.name}.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        await wait_for(self._ready, timeout=timeout, what=f"{self.name} ready (log: {self.log_path})")
        return self

    async def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.process.returncode}; see {self.log_path}")
        try:
            async with httpx.AsyncClient(timeout=2) as client:
                return (await client.get(f"{self.url}/health/ready")).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, nothing is flushed or committed."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        """SIGTERM: a clean shutdown (consumers finish their batch and commit)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


@contextlib.asynccontextmanager
async def migrated_pool(service: str, migrations: Path, *, max_size: int = 1) -> AsyncIterator[asyncpg.Pool]:
    """A pool (the service's codecs) on a database of this test's own with ``service``'s
    ``migrations`` applied; the database is dropped afterwards."""
    stack = TestStack()
    await stack.check_reachable()
    await db.migrate(stack.pg_url, stack.database(service), migrations)
    pool = await db.create_pool(f"{stack.pg_url}/{stack.database(service)}", min_size=1, max_size=max_size)
    try:
        yield pool
    finally:
        await pool.close()
        await stack.drop()
