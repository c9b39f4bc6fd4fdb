# One image for every cstor service; compose picks the service by its command,
# `python -m services.<name>`: each service runs from its own package, not through the
# launcher. The launcher is in the image only for the operator's commands
# (`cstor rotate-key`, `cstor rebuild-read-models`, e.g. `docker compose run --rm api cstor ...`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CSTOR_LOG_FORMAT=json \
    AWS_REQUEST_CHECKSUM_CALCULATION=when_required \
    AWS_RESPONSE_CHECKSUM_VALIDATION=when_required

WORKDIR /app
COPY pyproject.toml setup.py README.md constraints.txt ./
COPY cstor ./cstor
COPY services ./services
COPY launcher ./launcher
COPY web ./web
# gcc builds the one C extension (MD5 of several parts at once), then goes.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install --no-cache-dir -c constraints.txt -e . \
    && apt-get purge -y gcc libc6-dev && apt-get autoremove -y \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 cstor
USER cstor

CMD ["python", "-m", "services.api"]
