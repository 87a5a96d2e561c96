"""docker-compose.yml, the Postgres init script, the Prometheus scrape configs and the Grafana
provisioning agree with krousar_common.ports and krousar_common.topics, and with the local stack
(the databases of deploy/local/postgres.sh, the Kafka version of deploy/local/kafka/pom.xml).
Pure file checks: no Docker engine needed."""

import json
import re
import shlex
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from krousar_common import ports, topics

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
PROMETHEUS_CONFIGS = {
    "deploy/prometheus/prometheus.yml": lambda name: "127.0.0.1",
    "deploy/prometheus/prometheus.docker.yml": lambda name: name,
}
INFRASTRUCTURE_PORTS = {
    "kafka": ports.KAFKA_PORT,
    "postgres": ports.POSTGRES_PORT,
    "redis": ports.REDIS_PORT,
    "prometheus": ports.PROMETHEUS_PORT,
    "grafana": ports.GRAFANA_PORT,
}
SHARED_ENV = {
    "KROUSAR_KAFKA_BOOTSTRAP": f"kafka:{ports.KAFKA_PORT}",
    "KROUSAR_PG_URL": f"postgresql://postgres:postgres@postgres:{ports.POSTGRES_PORT}",
    "KROUSAR_REDIS_URL": f"redis://redis:{ports.REDIS_PORT}/0",
}


def local_databases() -> list[str]:
    """The databases deploy/local/postgres.sh creates: its ``DATABASES=(...)`` array."""
    script = (ROOT / "deploy/local/postgres.sh").read_text()
    (names,) = re.findall(r"^DATABASES=\(([^)]*)\)", script, flags=re.MULTILINE)
    return names.split()


def local_kafka_version() -> str:
    """The Kafka broker version the local stack fetches (deploy/local/kafka/pom.xml)."""
    pom = ET.parse(ROOT / "deploy/local/kafka/pom.xml")
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    (version,) = [
        d.findtext("m:version", namespaces=ns)
        for d in pom.getroot().iterfind("m:dependencies/m:dependency", ns)
        if d.findtext("m:artifactId", namespaces=ns) == "kafka_2.13"
    ]
    return version


def published(service: dict[str, Any]) -> dict[int, int]:
    """Host port of each published container port (short or long compose syntax)."""
    mapping = {}
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            mapping[int(entry["target"])] = int(entry["published"])
            continue
        parts = str(entry).split("/")[0].split(":")
        container = int(parts[-1])
        mapping[container] = int(parts[-2]) if len(parts) > 1 else container
    return mapping


def command(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command", [])
    return shlex.split(cmd) if isinstance(cmd, str) else [str(part) for part in cmd]


def option(cmd: list[str], name: str) -> str | None:
    for i, part in enumerate(cmd):
        if part == name and i + 1 < len(cmd):
            return cmd[i + 1]
        if part.startswith(name + "="):
            return part.split("=", 1)[1]
    return None


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path of each bind mount (named volumes left out)."""
    found = {}
    for entry in service.get("volumes", []):
        if isinstance(entry, dict):
            source, target = entry.get("source", ""), entry["target"]
        else:
            source, target = str(entry).split(":")[:2]
        if source.startswith((".", "/")):
            found[target] = str((ROOT / source).resolve().relative_to(ROOT))
    return found


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on", {})
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


@pytest.mark.parametrize(("name", "port"), ports.SERVICE_PORTS.items())
def test_every_service_runs_its_app_on_its_port(name: str, port: int) -> None:
    assert name in SERVICES, f"{name} missing from docker-compose.yml"
    service = SERVICES[name]
    cmd = command(service)
    assert f"{name}.app:create_app" in cmd and "--factory" in cmd, cmd
    assert option(cmd, "--port") == str(port)
    assert option(cmd, "--host") == "0.0.0.0"
    assert published(service) == {port: port}
    assert environment(service)["PORT"] == str(port)
    assert "/health/ready" in " ".join(service["healthcheck"]["test"])


@pytest.mark.parametrize("name", ports.SERVICE_PORTS)
def test_every_service_is_built_from_the_one_dockerfile_and_shares_the_stack(name: str) -> None:
    service = SERVICES[name]
    build = service["build"]
    context = build if isinstance(build, str) else build.get("context", ".")
    assert (ROOT / context).resolve() == ROOT and (ROOT / "Dockerfile").is_file()
    assert environment(service).items() >= SHARED_ENV.items()
    assert depends_on(service) == {
        "postgres": "service_healthy",
        "redis": "service_healthy",
        "kafka": "service_healthy",
        "topics": "service_completed_successfully",
    }


def test_compose_runs_no_app_that_ports_py_does_not_know() -> None:
    apps = {
        match.group(1)
        for service in SERVICES.values()
        for part in command(service)
        if (match := re.fullmatch(r"(\w+)\.app:create_app", part))
    }
    assert apps == set(ports.SERVICE_PORTS)


@pytest.mark.parametrize(("name", "port"), INFRASTRUCTURE_PORTS.items())
def test_infrastructure_is_published_on_its_port(name: str, port: int) -> None:
    assert port in published(SERVICES[name]).values()


def test_kafka_is_a_kraft_broker_reachable_from_services_and_host() -> None:
    kafka = SERVICES["kafka"]
    env = environment(kafka)
    assert kafka["image"] == f"apache/kafka:{local_kafka_version()}"
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    listen = {name: int(port) for name, port in re.findall(r"(\w+)://[^:,]*:(\d+)", env["KAFKA_LISTENERS"])}
    advertised = {
        address: name for name, address in re.findall(r"(\w+)://([^,]+)", env["KAFKA_ADVERTISED_LISTENERS"])
    }
    # The services' bootstrap address is advertised on a listener the broker really opens.
    assert SHARED_ENV["KROUSAR_KAFKA_BOOTSTRAP"] in advertised
    assert listen[advertised[SHARED_ENV["KROUSAR_KAFKA_BOOTSTRAP"]]] == ports.KAFKA_PORT
    # The host listener is published on the local stack's address, and advertises it.
    host_listener = advertised[f"127.0.0.1:{ports.KAFKA_PORT}"]
    assert published(kafka)[listen[host_listener]] == ports.KAFKA_PORT


def test_topics_service_creates_every_topic_before_the_services_start() -> None:
    topics_service = SERVICES["topics"]
    cmd = command(topics_service)
    assert cmd[:2] == ["krousar", "create-topics"]
    partitions = int(option(cmd, "--partitions") or topics.DEFAULT_PARTITIONS)
    assert partitions == topics.DEFAULT_PARTITIONS
    # create-topics gives every topic one partition count: a topic that wants another needs a
    # second command here.
    assert {t.partitions for t in topics.ALL_TOPICS} == {partitions}
    assert option(cmd, "--bootstrap") == SHARED_ENV["KROUSAR_KAFKA_BOOTSTRAP"]
    assert option(cmd, "--replication") == "1"
    assert option(cmd, "--prefix") in (None, ""), "compose topics carry no prefix"
    assert depends_on(topics_service) == {"kafka": "service_healthy"}
    assert topics_service.get("restart", "no") == "no"


def test_postgres_init_creates_exactly_the_local_stacks_databases() -> None:
    postgres = SERVICES["postgres"]
    assert str(postgres["image"]).split(":")[1].startswith("15")
    init = {
        target: source
        for target, source in mounts(postgres).items()
        if target.startswith("/docker-entrypoint-initdb.d/")
    }
    assert list(init.values()) == ["deploy/docker/postgres-init.sql"]
    sql = (ROOT / "deploy/docker/postgres-init.sql").read_text()
    sql = re.sub(r"--[^\n]*", "", sql)
    created = re.findall(r'CREATE\s+DATABASE\s+"?(\w+)"?', sql, flags=re.IGNORECASE)
    assert sorted(created) == sorted(local_databases())
    assert environment(postgres)["POSTGRES_PASSWORD"] in SHARED_ENV["KROUSAR_PG_URL"]


@pytest.mark.parametrize("path", PROMETHEUS_CONFIGS)
def test_prometheus_scrapes_every_service_on_its_port(path: str) -> None:
    config = yaml.safe_load((ROOT / path).read_text())
    host_of = PROMETHEUS_CONFIGS[path]
    targets = {
        job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]]
        for job in config["scrape_configs"]
    }
    assert targets == {name: [f"{host_of(name)}:{port}"] for name, port in ports.SERVICE_PORTS.items()}
    assert config["global"]["scrape_interval"] == "5s"
    assert config["rule_files"], "no rule files"


def test_both_prometheus_configs_differ_only_in_targets() -> None:
    def without_targets(path: str) -> dict[str, Any]:
        config = yaml.safe_load((ROOT / path).read_text())
        config["global"].pop("external_labels", None)
        for job in config["scrape_configs"]:
            job.pop("static_configs")
        return config

    local, docker = (without_targets(path) for path in PROMETHEUS_CONFIGS)
    assert local == docker


def test_compose_prometheus_uses_the_docker_config() -> None:
    prometheus = SERVICES["prometheus"]
    mounted = mounts(prometheus)
    assert mounted["/etc/prometheus"] == "deploy/prometheus"
    assert option(command(prometheus), "--config.file") == "/etc/prometheus/prometheus.docker.yml"


def test_grafana_provisioning_points_at_the_mounted_dashboards_and_prometheus() -> None:
    grafana = SERVICES["grafana"]
    mounted = mounts(grafana)
    assert mounted["/etc/grafana/provisioning"] == "deploy/grafana/provisioning"
    providers = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/krousar.yml").read_text())
    paths = {provider["options"]["path"] for provider in providers["providers"]}
    assert paths == {target for target, source in mounted.items() if source == "deploy/grafana/dashboards"}
    sources = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    (prometheus,) = [s for s in sources["datasources"] if s["type"] == "prometheus"]
    assert prometheus["url"] == f"http://prometheus:{ports.PROMETHEUS_PORT}"


@pytest.mark.parametrize("path", sorted((ROOT / "deploy/grafana/dashboards").glob("*.json")), ids=str)
def test_dashboards_use_the_provisioned_datasource(path: Path) -> None:
    sources = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    uids = {source["uid"] for source in sources["datasources"]}

    def datasource_uids(node: Any) -> set[str]:
        if isinstance(node, dict):
            found = {node["datasource"]["uid"]} if isinstance(node.get("datasource"), dict) else set()
            return found.union(*(datasource_uids(value) for value in node.values()))
        if isinstance(node, list):
            return set().union(*(datasource_uids(value) for value in node))
        return set()

    dashboard = json.loads(path.read_text())
    assert dashboard["uid"] and datasource_uids(dashboard) <= uids
