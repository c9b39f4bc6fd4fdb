"""deploy/kubernetes and compose.yaml, checked offline against their schemas.

The kustomization is rendered here (no kustomize binary on PyPI, npm or Debian): its
resources, with its namespace, labels and image tags applied. The built-in kinds are
checked by kubernetes-validate in strict mode (unknown fields refused), KEDA's
ScaledObject by the schema in deploy/kubernetes/schemas, compose.yaml by the compose
specification's schema that check-jsonschema vendors. Each check is also fed a broken
copy, so it is seen to fail.
"""

from __future__ import annotations

import copy
import importlib.resources
import json
import shutil
from pathlib import Path
from typing import Any

import check_jsonschema.builtin_schemas.vendor as schema_vendor
import jsonschema
import kubernetes_validate
import pytest
import yaml

from cstor.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
KUBE_VERSION = "1.37.0"
SERVICES = {"api": 8000, "planner": 8080, "transfer": 8080, "projector": 8080, "notifier": 8080}
CLUSTER_SCOPED = {"Namespace"}

Doc = dict[str, Any]


def load_kustomization(base: Path) -> Doc:
    doc: Doc = yaml.safe_load((base / "kustomization.yaml").read_text())
    return doc


def render(base: Path) -> list[Doc]:
    """The kustomization's resources as kustomize would print them (the parts used)."""
    kustomization = load_kustomization(base)
    labels: dict[str, str] = {}
    for entry in kustomization.get("labels", []):
        labels.update(entry["pairs"])
    tags = {image["name"]: image["newTag"] for image in kustomization.get("images", [])}
    docs: list[Doc] = []
    for name in kustomization["resources"]:
        docs.extend(doc for doc in yaml.safe_load_all((base / name).read_text()) if doc)
    for doc in docs:
        meta = doc.setdefault("metadata", {})
        if doc["kind"] not in CLUSTER_SCOPED and "namespace" in kustomization:
            meta["namespace"] = kustomization["namespace"]
        meta["labels"] = {**meta.get("labels", {}), **labels}
        for container in (
            doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
        ):
            if container["image"] in tags:
                container["image"] = f"{container['image']}:{tags[container['image']]}"
    return docs


def keda_schema() -> Doc:
    schema: Doc = json.loads((KUBE / "schemas" / "keda-scaledobject.schema.json").read_text())
    return schema


def schema_errors(doc: Doc) -> list[str]:
    """Why one rendered resource is invalid (empty if it is valid)."""
    if doc.get("apiVersion") == "keda.sh/v1alpha1":
        validator = jsonschema.Draft202012Validator(keda_schema())
        return [f"{doc['kind']} {e.json_path}: {e.message}" for e in validator.iter_errors(doc)]
    try:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{doc['kind']}/{doc['metadata'].get('name')}: {error.message}"]
    return []


def all_errors(base: Path) -> list[str]:
    return [error for doc in render(base) for error in schema_errors(doc)]


def by_kind(docs: list[Doc], kind: str) -> dict[str, Doc]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def test_every_resource_exists_and_every_file_is_listed() -> None:
    listed = load_kustomization(KUBE)["resources"]
    assert all((KUBE / name).is_file() for name in listed), listed
    files = {path.name for path in KUBE.glob("*.yaml")} - {"kustomization.yaml"}
    assert files == set(listed)
    assert len(listed) == len(set(listed))


def test_the_manifests_are_valid() -> None:
    docs = render(KUBE)
    assert all_errors(KUBE) == []
    assert {"ScaledObject", "StatefulSet", "Deployment", "Service", "ConfigMap", "Secret"} <= {
        doc["kind"] for doc in docs
    }


def test_no_built_in_kind_goes_unchecked() -> None:
    """kubernetes-validate only warns on a kind it has no schema for: none may be so."""
    for doc in render(KUBE):
        if doc["apiVersion"] != "keda.sh/v1alpha1":
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


@pytest.mark.parametrize(
    ("filename", "old", "new"),
    [
        ("transfer.yaml", "replicas: 1", "replicas: one"),
        ("api.yaml", "readinessProbe:", "readinesProbe:"),
        ("nats.yaml", "serviceName: nats", "serviceNames: nats"),
        ("transfer-scaledobject.yaml", "maxReplicaCount: 10", "maxReplicas: 10"),
        ("transfer-scaledobject.yaml", "- type: nats-jetstream", "- kind: nats-jetstream"),
    ],
)
def test_a_broken_manifest_fails(tmp_path: Path, filename: str, old: str, new: str) -> None:
    broken = tmp_path / "kubernetes"
    shutil.copytree(KUBE, broken)
    text = (broken / filename).read_text()
    assert old in text
    (broken / filename).write_text(text.replace(old, new, 1))
    assert all_errors(broken) != []


def test_services_have_probes_metrics_and_their_settings() -> None:
    docs = render(KUBE)
    deployments = by_kind(docs, "Deployment")
    assert set(deployments) == set(SERVICES)
    secret = by_kind(docs, "Secret")["cstor-secrets"]["stringData"]
    config = by_kind(docs, "ConfigMap")["cstor-config"]["data"]
    assert config["CSTOR_LOG_FORMAT"] == "json"
    assert config["CSTOR_STREAM_REPLICAS"] == "3"
    assert config["CSTOR_NATS_URL"].count("nats://") == 3
    assert not {"CSTOR_SECRET_KEY", "CSTOR_DATABASE_URL"} & set(config)
    for name, port in SERVICES.items():
        pod = deployments[name]["spec"]["template"]
        (container,) = pod["spec"]["containers"]
        assert container["command"] == ["python", "-m", f"services.{name}"]
        assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
        assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(port)
        assert [p["containerPort"] for p in container["ports"]] == [port]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["resources"]["requests"]
        assert container["resources"]["limits"]
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["image"] == "cstor:latest"
        for env in container["env"]:
            if "valueFrom" in env:
                ref = env["valueFrom"]["secretKeyRef"]
                assert ref["name"] == "cstor-secrets"
                assert ref["key"] in secret
    assert "CSTOR_SECRET_KEY" not in {
        e["name"]
        for e in deployments["projector"]["spec"]["template"]["spec"]["containers"][0]["env"]
    }


def test_keda_scales_transfer_on_its_consumer() -> None:
    docs = render(KUBE)
    scaled = by_kind(docs, "ScaledObject")["transfer"]
    assert scaled["spec"]["scaleTargetRef"]["name"] in by_kind(docs, "Deployment")
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "nats-jetstream"
    meta = trigger["metadata"]
    assert (
        meta["stream"]
        == Settings.__struct_defaults__[Settings.__struct_fields__.index("stream_name")]
    )
    assert meta["consumer"] == "transfer"
    host, port = meta["natsServerMonitoringEndpoint"].rsplit(":", 1)
    assert port == "8222"
    assert host == f"nats.{scaled['metadata']['namespace']}.svc.cluster.local"


def test_nats_is_a_three_node_jetstream_cluster() -> None:
    docs = render(KUBE)
    nats = by_kind(docs, "StatefulSet")["nats"]
    assert nats["spec"]["replicas"] == 3
    service = by_kind(docs, "Service")[nats["spec"]["serviceName"]]
    assert service["spec"]["clusterIP"] == "None"
    assert {p["port"] for p in service["spec"]["ports"]} == {4222, 6222, 8222}
    conf = by_kind(docs, "ConfigMap")["nats-config"]["data"]["nats.conf"]
    assert "jetstream" in conf
    assert "http_port: 8222" in conf
    assert all(f"nats://nats-{i}.nats:6222" in conf for i in range(3))
    assert nats["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"


def compose_errors(compose: Doc) -> list[str]:
    vendor = importlib.resources.files(schema_vendor)
    schema = json.loads((vendor / "compose-spec.json").read_text())
    validator_class = jsonschema.validators.validator_for(schema)
    return [f"{e.json_path}: {e.message}" for e in validator_class(schema).iter_errors(compose)]


def test_compose_follows_the_compose_specification() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert compose_errors(compose) == []
    broken = copy.deepcopy(compose)
    broken["services"]["api"]["restart"] = ["always"]
    assert compose_errors(broken) != []
    broken = copy.deepcopy(compose)
    broken["services"]["nats"]["portz"] = ["4222:4222"]
    assert compose_errors(broken) != []
