"""Local default ports of every process (ARCHITECTURE.md, "Ports"). One place, read by the
Makefile scripts, the docker-compose consistency test and the Prometheus scrape config test."""

SERVICE_PORTS: dict[str, int] = {
    "registration": 8001,
    "eligibility": 8002,
    "topups": 8003,
    "payments": 8004,
    "psp_simulator": 8005,
}
KAFKA_PORT = 9092
POSTGRES_PORT = 5432
REDIS_PORT = 6379
PROMETHEUS_PORT = 9090
GRAFANA_PORT = 3000
