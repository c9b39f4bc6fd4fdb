# One image for every cstor service; compose picks the service by its command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    AWS_REQUEST_CHECKSUM_CALCULATION=when_required \
    AWS_RESPONSE_CHECKSUM_VALIDATION=when_required

WORKDIR /app
COPY pyproject.toml README.md ./
COPY cstor ./cstor
COPY services ./services
COPY web ./web
RUN pip install --no-cache-dir -e . \
    && useradd --system --uid 10001 cstor
USER cstor

ENTRYPOINT ["cstor", "service"]
CMD ["api"]
