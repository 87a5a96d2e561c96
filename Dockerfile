# One image for every Krousar service. docker-compose.yml picks the service with `command:`;
# run alone, the image starts the service named by SERVICE on PORT:
#   docker build -t krousar .
#   docker run -e SERVICE=registration -e PORT=8001 -p 8001:8001 krousar
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Pinned third-party dependencies first: this layer is rebuilt only when requirements.txt changes.
COPY requirements.txt ./
RUN pip install -r requirements.txt

# The workspace packages, installed editable like the local venv (deploy/local/install.sh):
# each service finds its migrations beside its package (services/<name>/migrations), which a
# non-editable wheel would leave behind.
COPY libs/ libs/
COPY services/ services/
RUN set -eu; \
    set --; \
    for dir in libs/* services/*; do \
      if [ -f "$dir/pyproject.toml" ]; then set -- "$@" -e "$dir"; fi; \
    done; \
    pip install "$@"

RUN useradd --system --no-create-home --uid 10001 krousar
USER krousar

ENV SERVICE="" PORT=8000
EXPOSE 8000
CMD ["sh", "-c", "exec uvicorn \"${SERVICE:?set SERVICE (registration, eligibility, ...)}.app:create_app\" --factory --host 0.0.0.0 --port \"$PORT\" --no-access-log"]
