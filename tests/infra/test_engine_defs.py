"""The vLLM memory settings the cluster definitions state per GPU type agree with uts.llm.engine:
the "# vllm: ..." lines under each llm-* node type of infra/aws/cluster.yaml, and the uts/vllm-*
pod annotations of the llm-* groups in infra/k8s (RayCluster and RayJob)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.infra.files import (
    GPU_FAMILIES,
    GPUS_PER_INSTANCE,
    LAUNCHER,
    RAYCLUSTER,
    RAYJOB,
    family,
    load_yaml,
)
from uts.llm.engine import MODELS, EngineFitError, engine_settings

STATEMENT = re.compile(r"(?P<model>\S+) tp=(?P<tp>\d+) (?P<rest>does-not-fit|(?:\w+=[\w.]+ ?)+)")


@dataclass(frozen=True)
class Statement:
    source: str
    group: str
    gpu: str  # Ray's accelerator type of the group
    gpus: int  # GPUs one node or pod has
    model: str
    tp: int
    settings: dict[str, str] | None  # None: "does-not-fit"


def parse(text: str, source: str, group: str, gpu: str, gpus: int) -> Statement:
    match = STATEMENT.fullmatch(text.strip())
    assert match, f"{source}: not 'MODEL tp=N does-not-fit|key=value ...': {text!r}"
    rest = match["rest"]
    settings = None if rest == "does-not-fit" else dict(kv.split("=") for kv in rest.split())
    return Statement(source, group, gpu, gpus, match["model"], int(match["tp"]), settings)


def launcher_statements() -> list[Statement]:
    """The '# vllm:' comment lines inside each node type of cluster.yaml."""
    types = load_yaml(LAUNCHER)["available_node_types"]
    out, current = [], None
    for number, line in enumerate(LAUNCHER.read_text().splitlines(), start=1):
        key = re.fullmatch(r"  ([\w-]+):\s*", line)
        if key:
            current = key[1]
        comment = re.fullmatch(r"\s+# vllm: (.*)", line)
        if comment:
            assert current in types, f"cluster.yaml:{number}: a vllm line outside a node type"
            node = types[current]
            (label,) = [k for k in node["resources"] if k.startswith("accelerator_type:")]
            gpu, gpus = label.split(":", 1)[1], int(node["resources"]["GPU"])
            out.append(parse(comment[1], f"cluster.yaml:{number}", current, gpu, gpus))
    return out


def k8s_statements(path: Path) -> list[Statement]:
    """The uts/vllm-* annotations of the worker groups' pod templates ('; ' between entries)."""
    document = load_yaml(path)
    spec = document["spec"] if document["kind"] == "RayCluster" else document["spec"]["rayClusterSpec"]  # fmt: skip
    out = []
    for group in spec["workerGroupSpecs"]:
        template: dict[str, Any] = group["template"]
        annotations = template.get("metadata", {}).get("annotations", {})
        instance = template["spec"].get("nodeSelector", {}).get("node.kubernetes.io/instance-type")
        gpus = int(
            template["spec"]["containers"][0]["resources"]["limits"].get("nvidia.com/gpu", 0)
        )
        for key, value in annotations.items():
            if not key.startswith("uts/vllm-"):
                continue
            gpu = GPU_FAMILIES[family(instance)][0]
            for entry in value.split(";"):
                out.append(parse(entry, f"{path.name}:{group['groupName']}:{key}", group["groupName"], gpu, gpus))  # fmt: skip
    return out


STATEMENTS = [*launcher_statements(), *k8s_statements(RAYCLUSTER), *k8s_statements(RAYJOB)]


def test_every_llm_group_states_its_settings() -> None:
    launcher_groups = {n for n in load_yaml(LAUNCHER)["available_node_types"] if n.startswith("llm-")}  # fmt: skip
    stated = {(s.source.split(":")[0], s.group) for s in STATEMENTS}
    assert {("cluster.yaml", g) for g in launcher_groups} <= stated
    for path in (RAYCLUSTER, RAYJOB):
        groups = {s.group for s in k8s_statements(path)}
        assert groups == {"llm-l4", "llm-a100"}, path.name
    # both models on every launcher GPU type: where each runs, or that it does not fit there
    for group in launcher_groups:
        assert {s.model for s in STATEMENTS if s.group == group and s.source.startswith("cluster")} == set(MODELS), group  # fmt: skip


@pytest.mark.parametrize("statement", STATEMENTS, ids=[f"{s.source}:{s.model.split('/')[1]}:tp{s.tp}" for s in STATEMENTS])  # fmt: skip
def test_stated_settings_are_the_engine_tables(statement: Statement) -> None:
    assert statement.model in MODELS, statement
    assert statement.tp <= statement.gpus, f"{statement.source}: tp {statement.tp} > {statement.gpus} GPUs"  # fmt: skip
    if statement.settings is None:
        with pytest.raises(EngineFitError, match="does not fit"):
            engine_settings(statement.model, accelerator_type=statement.gpu, tensor_parallel_size=statement.tp)  # fmt: skip
        return
    computed = engine_settings(statement.model, accelerator_type=statement.gpu, tensor_parallel_size=statement.tp)  # fmt: skip
    expected = {k: str(v) for k, v in computed.engine_kwargs().items()
                if k in {"gpu_memory_utilization", "max_model_len", "max_num_seqs"}}  # fmt: skip
    assert statement.settings == expected, f"{statement.source}: states {statement.settings}, uts.llm.engine computes {expected}"  # fmt: skip


def test_the_gpu_labels_are_the_instances_gpus() -> None:
    types = load_yaml(LAUNCHER)["available_node_types"]
    for s in STATEMENTS:
        if s.source.startswith("cluster"):
            instance = types[s.group]["node_config"]["InstanceType"]
            assert GPU_FAMILIES[family(instance)][0] == s.gpu and GPUS_PER_INSTANCE[instance] == s.gpus  # fmt: skip
