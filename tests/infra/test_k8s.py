"""infra/k8s: RayCluster and RayJob against KubeRay's CRD schema and Kubernetes' pod schema, and
as Ray's own KubeRay autoscaler reads them. Offline, no cluster."""

from __future__ import annotations

import copy
import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import ray
from ray.autoscaler._private.kuberay.autoscaling_config import (
    _derive_autoscaling_config_from_ray_cr,
)
from ray.train import ScalingConfig
from referencing import Registry, Resource

from tests.infra.files import (
    GPU_FAMILIES,
    GPUS_PER_INSTANCE,
    LLM_FAMILIES,
    RAYCLUSTER,
    RAYJOB,
    dockerfile,
    family,
    load_yaml,
    pyproject,
    workers_fit,
)

SCHEMA = Path(__file__).parent / "schemas" / "kuberay-v1.json"
K8S_VERSION = "v1.34.0-local-strict"  # the core/v1 fields the pinned CRD inlines


def registry() -> Registry:
    """KubeRay's schema, plus Kubernetes' PodTemplateSpec and definitions from kubernetes-validate."""
    folder = resources.files("kubernetes_validate") / "kubernetes-json-schema" / K8S_VERSION
    registry: Registry = Registry()
    for name in ("podtemplatespec-v1.json", "_definitions.json"):
        contents = json.loads((folder / name).read_text())
        registry = registry.with_resource(contents["$id"], Resource.from_contents(contents))
    kuberay = json.loads(SCHEMA.read_text())
    return registry.with_resource(kuberay["$id"], Resource.from_contents(kuberay))


def errors(document: dict[str, Any], kind: str) -> list[str]:
    schema = {"$ref": f"urn:uts:kuberay:v1#/$defs/{kind}"}
    validator = jsonschema.Draft202012Validator(schema, registry=registry())
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def cluster_spec(path: Path) -> dict[str, Any]:
    document = load_yaml(path)
    return (
        document["spec"] if document["kind"] == "RayCluster" else document["spec"]["rayClusterSpec"]
    )


def groups(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {group["groupName"]: group for group in spec["workerGroupSpecs"]}


def container(group: dict[str, Any]) -> dict[str, Any]:
    return group["template"]["spec"]["containers"][0]  # KubeRay: the Ray container comes first


def node_types(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The autoscaler's view of the groups: Ray 2.60's own translation of a RayCluster."""
    cr = {"metadata": {"name": "uts", "namespace": "default"}, "spec": copy.deepcopy(spec)}
    return _derive_autoscaling_config_from_ray_cr(cr)["available_node_types"]


@pytest.mark.parametrize(("path", "kind"), [(RAYCLUSTER, "RayCluster"), (RAYJOB, "RayJob")])
def test_manifest_validates_against_the_kuberay_and_pod_schemas(path: Path, kind: str) -> None:
    document = load_yaml(path)
    assert document["kind"] == kind
    assert errors(document, kind) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["spec"]["authOptions"].update(mode="on"), "spec.authOptions.mode"),
        (lambda d: d["spec"]["workerGroupSpecs"][0].update(replica=1), "spec.workerGroupSpecs.0"),
        (lambda d: d["spec"]["workerGroupSpecs"][0].pop("maxReplicas"), "'maxReplicas' is a required"),
        (lambda d: container(d["spec"]["workerGroupSpecs"][0]).update(workdir="/x"),
         "spec.workerGroupSpecs.0.template.spec.containers.0"),
        (lambda d: d["spec"]["headGroupSpec"]["template"]["spec"].update(tolerations={}),
         "spec.headGroupSpec.template.spec.tolerations"),
    ],
)  # fmt: skip
def test_the_schemas_reject_what_the_api_server_would(change: Any, expected: str) -> None:
    document = load_yaml(RAYCLUSTER)
    change(document)
    assert any(expected in e for e in errors(document, "RayCluster")), errors(
        document, "RayCluster"
    )


def test_rayjob_runs_the_study_on_the_raycluster_spec_and_cleans_up() -> None:
    job = load_yaml(RAYJOB)["spec"]
    assert job["rayClusterSpec"] == load_yaml(RAYCLUSTER)["spec"]  # one spec, two files
    assert job["shutdownAfterJobFinishes"] is True
    assert job["ttlSecondsAfterFinished"] > 0
    assert job["entrypoint"].startswith("python jobs/study.py ")


@pytest.mark.parametrize("path", [RAYCLUSTER, RAYJOB])
def test_token_auth_autoscaling_and_ray_version(path: Path) -> None:
    spec = cluster_spec(path)
    assert spec["authOptions"] == {"mode": "token"}
    assert spec["rayVersion"] == ray.__version__
    assert spec["enableInTreeAutoscaling"] is True
    for name, group in groups(spec).items():
        assert 0 <= group["minReplicas"] <= group["maxReplicas"], name


def test_rays_autoscaler_sees_the_intended_resources() -> None:
    spec = cluster_spec(RAYCLUSTER)
    types = node_types(spec)
    assert types["headgroup"]["resources"]["CPU"] == 0  # no work on the head
    for name, group in groups(spec).items():
        resources_ = types[name]["resources"]
        labels = [k for k in resources_ if k.startswith("accelerator_type:")]
        limits = container(group)["resources"]["limits"]
        if "nvidia.com/gpu" not in limits:
            assert "GPU" not in resources_ and not labels, name
            continue
        instance = group["template"]["spec"]["nodeSelector"]["node.kubernetes.io/instance-type"]
        gpu = GPU_FAMILIES[family(instance)][0]
        assert labels == [f"accelerator_type:{gpu}"], name
        assert resources_["GPU"] == int(limits["nvidia.com/gpu"]) <= GPUS_PER_INSTANCE[instance]
        assert types[name]["max_workers"] == group["maxReplicas"]


def test_llm_groups_run_on_gpus_vllm_supports_and_training_on_v100() -> None:
    spec = cluster_spec(RAYCLUSTER)
    types = node_types(spec)
    for name, group in groups(spec).items():
        selector = group["template"]["spec"].get("nodeSelector", {})
        instance = selector.get("node.kubernetes.io/instance-type")
        if name.startswith("llm-"):
            assert family(instance) in LLM_FAMILIES, (name, instance)
        if name.startswith("train-"):
            assert family(instance) == "p3", (name, instance)
    demand = ScalingConfig(num_workers=8, use_gpu=True, accelerator_type="V100")
    per_worker = demand._resources_per_worker_not_none
    fits = {name: workers_fit(t["resources"], per_worker) for name, t in types.items()}
    assert fits == {name: 8 if name == "train-v100" else 0 for name in types}


def test_gpu_pods_tolerate_the_gpu_taint_and_have_shared_memory() -> None:
    for name, group in groups(cluster_spec(RAYCLUSTER)).items():
        pod = group["template"]["spec"]
        if "nvidia.com/gpu" not in container(group)["resources"]["limits"]:
            continue
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
            "tolerations"
        ]
        mounts = {m["mountPath"]: m["name"] for m in container(group)["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes[mounts["/dev/shm"]]["emptyDir"] == {"medium": "Memory"}, name


def test_pods_run_the_project_image_in_its_source_folder() -> None:
    workdir = [i.args for i in dockerfile() if i.keyword == "WORKDIR"]
    version = pyproject()["project"]["version"]
    spec = cluster_spec(RAYCLUSTER)
    variants = {"headgroup": "cpu"}
    for name, group in groups(spec).items():
        gpu = "nvidia.com/gpu" in container(group)["resources"]["limits"]
        # CPU workers carry vLLM for the LLM processors' CPU stages (test_llm_pin.py)
        variants[name] = ("gpu-llm" if name.startswith("llm-") else "gpu") if gpu else "cpu-llm"
    pods = {"headgroup": spec["headGroupSpec"], **groups(spec)}
    repositories = set()
    for name, group in pods.items():
        image = container(group)["image"]
        repository, tag = image.rsplit(":", 1)
        repositories.add(repository)
        assert tag == f"{version}-{variants[name]}", (name, image)
        assert container(group)["workingDir"] == workdir[-1], name
    assert len(repositories) == 1
