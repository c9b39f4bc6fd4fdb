"""compose.yaml probes every cstor service's readiness where it answers (cstor.health)."""

from __future__ import annotations

from pathlib import Path

import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "compose.yaml"


def test_every_cstor_service_has_a_healthcheck_on_its_own_readyz() -> None:
    # Given compose.yaml's services
    services = yaml.safe_load(COMPOSE.read_text())["services"]

    for name in ("api", "planner", "transfer", "projector"):
        service = services[name]
        # Then each checks /readyz on the port it serves its probes on
        port = service["environment"]["CSTOR_API_PORT" if name == "api" else "CSTOR_HEALTH_PORT"]
        test = " ".join(service["healthcheck"]["test"])
        assert f"http://127.0.0.1:{port}/readyz" in test, name
