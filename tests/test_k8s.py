"""deploy/k8s checked without a cluster: every manifest parses and names itself, names only real settings, runs the
commands and health checks of docker-compose.yml (so the two cannot drift), autoscales the GPU workers on the
Redis lists their queues really live in, and fits the schemas of Kubernetes KUBERNETES_VERSION (and KEDA's CRD for the
ScaledObject) with unknown fields as errors.

What is checked is what `kubectl apply -k deploy/k8s` sends: the objects as kustomize builds them (see `build`)."""

from __future__ import annotations

import copy
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jsonschema
import kubernetes_validate
import pytest
import yaml

from api.queue import QUEUES, celery_config
from api.routes.health import router as health_router
from api.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
SETTINGS = {f"NAS_{field.upper()}" for field in Settings.model_fields}
# Each workload of the manifests is the compose service of the same name.
WORKLOADS = {"Deployment": ("api", "worker-gpu", "worker-ingest"), "Job": ("migrate",)}
WORKERS = ("worker-gpu", "worker-ingest")
# The Kubernetes API schemas (kubernetes-validate's, offline) every manifest must fit. Older than the newest the package
# ships: a field added in a later release fails here, so the manifests suit clusters from this version on.
KUBERNETES_VERSION = "1.33"


def load(path: Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document is not None]


MANIFESTS = sorted(path for path in K8S.glob("*.yaml") if path.name != "kustomization.yaml")
KUSTOMIZATION = yaml.safe_load((K8S / "kustomization.yaml").read_text())
# The part of kustomize this directory uses; a kustomization with any other field fails
# test_the_kustomization_uses_only_what_build_does until `build` learns it.
KUSTOMIZE_FIELDS = {"apiVersion", "kind", "namespace", "resources"}
# Kinds kustomize knows to be cluster-scoped, so leaves without a namespace (its list is longer; these are the ones
# a deployment like this might add). Any other kind, a custom resource's included, is namespaced to kustomize.
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PersistentVolume",
                  "PriorityClass", "StorageClass", "IngressClass", "RuntimeClass"}


def build(kustomization: dict[str, Any], directory: Path) -> list[dict[str, Any]]:
    """The objects `kustomize build directory` prints, for the subset of kustomize in KUSTOMIZE_FIELDS: the documents
    of each file of `resources`, in order, with `namespace` set on (or replacing that of) every namespaced object.

    >>> [d["metadata"].get("namespace") for d in build({"namespace": "nas", "resources": ["namespace.yaml"]}, K8S)]
    [None]
    """
    built = []
    for resource in kustomization["resources"]:
        for document in load(directory / resource):
            document = copy.deepcopy(document)
            if "namespace" in kustomization and document["kind"] not in CLUSTER_SCOPED:
                document["metadata"]["namespace"] = kustomization["namespace"]
            built.append(document)
    return built


DOCUMENTS = build(KUSTOMIZATION, K8S)


def closed(schema: Any) -> Any:
    """An OpenAPI schema in which an object that lists its fields accepts no others: the API server's strict field
    validation, as in kubernetes-validate's strict schemas."""
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: ({name: closed(field) for name, field in value.items()} if key == "properties" else closed(value))
              for key, value in schema.items()}
    if "properties" in schema:
        result.setdefault("additionalProperties", False)
    return result


# Custom resources, which the Kubernetes schemas do not know, are checked against their CRD's schema instead.
SCHEMAS = K8S / "schemas"
CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): closed(yaml.safe_load((SCHEMAS / "keda.sh_scaledobjects.yaml").read_text())),
}


def schema_error(document: dict[str, Any]) -> jsonschema.ValidationError | None:
    """Why `document` does not fit its kind's schema (Kubernetes KUBERNETES_VERSION's, or its CRD's), or None.

    A kind with neither raises kubernetes_validate.SchemaNotFoundError: nothing goes unchecked."""
    crd = CRD_SCHEMAS.get((document["apiVersion"], document["kind"]))
    try:
        if crd is not None:
            jsonschema.Draft202012Validator(crd).validate(document)
        else:
            assert kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True) == KUBERNETES_VERSION
    except jsonschema.ValidationError as error:  # kubernetes_validate.ValidationError is one too
        return error
    return None


def described(error: jsonschema.ValidationError) -> str:
    return f"{'.'.join(map(str, error.absolute_path))}: {error.message}"


def objects(kind: str) -> dict[str, dict[str, Any]]:
    return {document["metadata"]["name"]: document for document in DOCUMENTS if document["kind"] == kind}


def container(workload: dict[str, Any]) -> dict[str, Any]:
    (only,) = workload["spec"]["template"]["spec"]["containers"]
    return only


def environment(workload: dict[str, Any]) -> dict[str, str]:
    """The variables a workload's container gets: its envFrom ConfigMaps and Secrets, then its own env."""
    configmaps, secrets = objects("ConfigMap"), objects("Secret")
    spec = container(workload)
    variables: dict[str, str] = {}
    for source in spec.get("envFrom", []):
        if "configMapRef" in source:
            variables.update(configmaps[source["configMapRef"]["name"]]["data"])
        else:
            variables.update(secrets[source["secretRef"]["name"]]["stringData"])
    variables.update({item["name"]: item["value"] for item in spec.get("env", [])})
    return variables


def compose_command(name: str) -> list[str]:
    command = COMPOSE[name]["command"]
    return shlex.split(command) if isinstance(command, str) else list(command)


def compose_ping(name: str) -> str:
    """The compose health check's shell line, with compose's `$$` escape read as the `$` the shell sees."""
    kind, line = COMPOSE[name]["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    return line.replace("$$", "$")


def test_every_manifest_parses_and_names_its_objects():
    assert MANIFESTS
    for path in MANIFESTS:
        documents = load(path)
        assert documents, f"{path.name} is empty"
        for document in documents:
            assert document.get("apiVersion") and document.get("kind"), path.name
            assert document.get("metadata", {}).get("name"), f"{path.name}: an object without metadata.name"


@pytest.mark.parametrize("document", DOCUMENTS,
                         ids=[f"{document['kind']}/{document['metadata']['name']}" for document in DOCUMENTS])
def test_every_object_fits_its_schema(document):
    # As kustomize builds it: metadata.namespace included, which a cluster-scoped kind must not have.
    if document["kind"] in CLUSTER_SCOPED:
        assert "namespace" not in document["metadata"]
    else:
        assert document["metadata"]["namespace"] == KUSTOMIZATION["namespace"]
    error = schema_error(document)
    assert error is None, described(error)


CONTAINER = ["spec", "template", "spec", "containers", 0]
# One mistake each, typed into a file: (file, text, the text with the mistake, where the error is reported).
MISTAKES = {
    "misspelled field": ("api.yaml", "readinessProbe:", "readinesProbe:", CONTAINER),
    "string for an integer": ("api.yaml", "containerPort: 8000", 'containerPort: "8000"',
                              CONTAINER + ["ports", 0, "containerPort"]),
    "missing required field": ("migrate-job.yaml", "- name: migrate\n          image:", "- image:", CONTAINER),
    "unquoted boolean in a ConfigMap": ("configmap.yaml", 'NAS_S3_SECURE: "false"', "NAS_S3_SECURE: false",
                                        ["data", "NAS_S3_SECURE"]),
    "KEDA: misspelled field": ("scaledobject.yaml", "pollingInterval:", "pollingIntervall:", ["spec"]),
    "KEDA: string for an integer": ("scaledobject.yaml", "maxReplicaCount: 8", 'maxReplicaCount: "8"',
                                    ["spec", "maxReplicaCount"]),
    "KEDA: trigger metadata not a string": ("scaledobject.yaml", 'listLength: "1"', "listLength: 1",
                                            ["spec", "triggers", 0, "metadata", "listLength"]),
}


@pytest.mark.parametrize("file,text,mistake,where", MISTAKES.values(), ids=list(MISTAKES))
def test_a_manifest_with_a_mistake_fails_its_schema(file, text, mistake, where):
    original = (K8S / file).read_text()
    assert text in original
    documents = [document for document in yaml.safe_load_all(original.replace(text, mistake, 1)) if document]
    errors = [error for error in map(schema_error, documents) if error is not None]
    assert len(errors) == 1, [described(error) for error in errors]
    assert list(errors[0].absolute_path) == where, described(errors[0])


def test_the_kustomization_lists_every_manifest():
    assert KUSTOMIZATION["kind"] == "Kustomization"
    resources = KUSTOMIZATION["resources"]
    assert len(resources) == len(set(resources))
    assert set(resources) == {path.name for path in MANIFESTS}
    assert KUSTOMIZATION["namespace"] in objects("Namespace")


def test_the_kustomization_uses_only_what_build_does():
    """Anything else (commonLabels, images, patches, a directory as a resource) would make `build` differ from
    kustomize's output: teach `build` the field first."""
    assert set(KUSTOMIZATION) <= KUSTOMIZE_FIELDS, sorted(set(KUSTOMIZATION) - KUSTOMIZE_FIELDS)
    assert all((K8S / resource).is_file() for resource in KUSTOMIZATION["resources"])


def test_the_build_has_one_object_per_id_and_sets_the_namespace():
    # kustomize refuses two objects of the same kind, name and namespace ("may not add resource with an already
    # registered id").
    ids = [(d["apiVersion"].split("/")[0] if "/" in d["apiVersion"] else "", d["kind"],
            d["metadata"].get("namespace"), d["metadata"]["name"]) for d in DOCUMENTS]
    assert len(ids) == len(set(ids)), ids
    assert {d["metadata"].get("namespace") for d in DOCUMENTS if d["kind"] not in CLUSTER_SCOPED} == {
        KUSTOMIZATION["namespace"]}
    # The files stay as written: the namespace comes from the kustomization alone.
    assert not [path.name for path in MANIFESTS for d in load(path) if "namespace" in d.get("metadata", {})]


def test_every_workload_of_compose_is_here():
    for kind, names in WORKLOADS.items():
        assert set(objects(kind)) == set(names), kind
    ours = {name for name, service in COMPOSE.items() if service.get("image", "").startswith("nas-service")}
    assert ours == {name for names in WORKLOADS.values() for name in names}


def test_configmap_secret_and_env_name_only_real_settings():
    names = set()
    for configmap in objects("ConfigMap").values():
        names |= set(configmap["data"])
    for secret in objects("Secret").values():
        names |= set(secret["stringData"])
    for kind in WORKLOADS:
        for workload in objects(kind).values():
            names |= {item["name"] for item in container(workload).get("env", [])}
    unknown = sorted(names - SETTINGS)
    assert not unknown, f"{unknown} are not settings"


def test_secret_values_are_placeholders():
    for secret in objects("Secret").values():
        assert "data" not in secret  # stringData only: what is to be replaced stays readable
        for key, value in secret["stringData"].items():
            assert "CHANGE-ME" in value, f"{key} must be an obvious placeholder"


@pytest.mark.parametrize("kind,name", [(kind, name) for kind, names in WORKLOADS.items() for name in names])
def test_each_workload_runs_its_compose_command_with_its_compose_environment_names(kind, name):
    workload = objects(kind)[name]
    assert container(workload)["command"] == compose_command(name)
    assert set(environment(workload)) == set(COMPOSE[name]["environment"])
    assert container(workload)["image"].split(":")[0] == COMPOSE[name]["image"].split(":")[0]


@pytest.mark.parametrize("name", WORKLOADS["Deployment"] + WORKLOADS["Job"])
def test_the_settings_each_workload_gets_are_valid(name, monkeypatch):
    kind = "Job" if name in WORKLOADS["Job"] else "Deployment"
    for key in SETTINGS:
        monkeypatch.delenv(key, raising=False)
    for key, value in environment(objects(kind)[name]).items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert settings.broker_url.startswith(("redis://", "rediss://")) and settings.storage_url.startswith("s3://")


def test_every_queue_is_served_and_the_gpu_worker_requests_a_gpu():
    served = set()
    for name in ("worker-gpu", "worker-ingest"):
        argv = container(objects("Deployment")[name])["command"]
        served |= set(argv[argv.index("-Q") + 1].split(","))
    assert served == set(QUEUES)
    gpu = objects("Deployment")["worker-gpu"]
    assert str(container(gpu)["resources"]["limits"]["nvidia.com/gpu"]) == "1"
    assert environment(gpu)["NAS_WORKER_DEVICE"] == "cuda"
    assert environment(objects("Deployment")["worker-ingest"])["NAS_WORKER_DEVICE"] == "cpu"


@pytest.mark.parametrize("name", WORKLOADS["Deployment"] + WORKLOADS["Job"])
def test_every_container_has_requests_and_limits(name):
    kind = "Job" if name in WORKLOADS["Job"] else "Deployment"
    resources = container(objects(kind)[name])["resources"]
    for part in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources[part]), (name, part)


@pytest.mark.parametrize("name", WORKLOADS["Deployment"])
def test_every_deployment_has_readiness_and_liveness_probes(name):
    spec = container(objects("Deployment")[name])
    assert "readinessProbe" in spec and "livenessProbe" in spec


def test_the_api_is_ready_on_readyz_and_alive_on_healthz():
    served = {route.path for route in health_router.routes}
    spec = container(objects("Deployment")["api"])
    ports = {port["name"]: port["containerPort"] for port in spec["ports"]}
    argv = spec["command"]
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        check = spec[probe]["httpGet"]
        assert check["path"] == path and path in served
        assert ports.get(check["port"], check["port"]) == int(argv[argv.index("--port") + 1])


@pytest.mark.parametrize("name", WORKERS)
def test_workers_ping_their_own_node_as_compose_does(name):
    spec = container(objects("Deployment")[name])
    line = compose_ping(name)
    node = spec["command"][spec["command"].index("-n") + 1]
    # Celery expands %h to the pod's host name, which the probe's shell reads from $HOSTNAME.
    assert f"-d {node.replace('%h', '$HOSTNAME')} " in f"{line} "
    ping_timeout = float(shlex.split(line)[shlex.split(line).index("--timeout") + 1])
    for probe in ("readinessProbe", "livenessProbe"):
        check = spec[probe]
        assert check["exec"]["command"] == ["sh", "-c", line], probe  # a shell, so $HOSTNAME expands
        assert check["timeoutSeconds"] > ping_timeout


def test_no_beat_the_workers_reap():
    """The reaper is a thread of every worker (worker/reaper.py): no beat Deployment, no worker started with -B."""
    deployments = objects("Deployment")
    assert "beat" not in deployments
    for name, deployment in deployments.items():
        assert not {"beat", "-B", "--beat"} & set(container(deployment)["command"]), name
    assert sorted(name for name, deployment in deployments.items()
                  if container(deployment)["command"][3:4] == ["worker"]) == sorted(WORKERS)


def test_selectors_match_pod_labels_and_services_select_their_deployments():
    deployments = objects("Deployment")
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items(), name
    for name, service in objects("Service").items():
        selector = service["spec"]["selector"].items()
        matched = [deployment for deployment in deployments.values()
                   if selector <= deployment["spec"]["template"]["metadata"]["labels"].items()]
        assert len(matched) == 1, f"service {name} selects {len(matched)} deployments"
        ports = {port["name"] for port in container(matched[0]).get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, (name, port)


def test_gpu_workers_scale_on_the_lists_of_their_queues():
    (scaled,) = objects("ScaledObject").values()
    gpu = objects("Deployment")["worker-gpu"]
    assert scaled["spec"]["scaleTargetRef"]["name"] == gpu["metadata"]["name"]
    assert scaled["spec"].get("scaleTargetRef", {}).get("kind", "Deployment") == "Deployment"
    assert "replicas" not in gpu["spec"], "the ScaledObject owns the replica count"
    assert scaled["spec"]["minReplicaCount"] in (0, 1) and scaled["spec"]["maxReplicaCount"] >= 1

    variables = environment(gpu)
    settings = Settings(broker_url=variables["NAS_BROKER_URL"],
                        broker_key_prefix=variables.get("NAS_BROKER_KEY_PREFIX", ""))
    # kombu's Redis transport keeps a queue's priority-0 messages in a list of the queue's name, behind the prefix.
    prefix = celery_config(settings)["broker_transport_options"].get("global_keyprefix", "")
    argv = container(gpu)["command"]
    expected = {prefix + queue for queue in argv[argv.index("-Q") + 1].split(",")}
    triggers = scaled["spec"]["triggers"]
    assert {trigger["type"] for trigger in triggers} == {"redis"}
    assert {trigger["metadata"]["listName"] for trigger in triggers} == expected

    broker = urlparse(settings.broker_url)
    for trigger in triggers:
        metadata = trigger["metadata"]
        assert metadata["address"] == f"{broker.hostname}:{broker.port or 6379}"
        assert metadata["databaseIndex"] == (broker.path.strip("/") or "0")
        assert int(metadata["listLength"]) >= 1
