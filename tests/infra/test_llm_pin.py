"""vLLM as Ray declares it, and on which images and nodes it must be: the llm extra against the
installed Ray's metadata, the Dockerfile's CPU + llm variant, and why CPU workers need vLLM."""

from __future__ import annotations

import importlib.metadata
import inspect
import re
import subprocess

import ray
from packaging.requirements import Requirement

from tests.infra.files import INFRA, Instruction, dockerfile, load_module, pyproject


def llm_extra() -> dict[str, Requirement]:
    """The llm optional dependencies of pyproject.toml, by distribution name."""
    found = [Requirement(line) for line in pyproject()["project"]["optional-dependencies"]["llm"]]
    return {r.name: r for r in found}


def rays_llm_requirement(name: str) -> Requirement:
    """The requirement on `name` that the installed Ray declares for its llm extra."""
    for line in importlib.metadata.requires("ray") or []:
        requirement = Requirement(line)
        if requirement.name == name and requirement.marker and requirement.marker.evaluate({"extra": "llm"}):  # fmt: skip
            return requirement
    raise AssertionError(f"ray {ray.__version__} declares no {name} for its llm extra")


def test_the_vllm_pin_is_rays_own() -> None:
    ours = llm_extra()["vllm"]
    rays = rays_llm_requirement("vllm")
    assert (ours.name, ours.extras, str(ours.specifier)) == (rays.name, rays.extras, str(rays.specifier)), (
        f"pyproject.toml llm extra has {ours}; ray {ray.__version__} declares {rays}"
    )  # fmt: skip
    assert re.fullmatch(r"==[0-9.]+", str(ours.specifier)), f"{ours}: pin one version"


def test_the_llm_extra_pins_the_installed_ray() -> None:
    ours = llm_extra()["ray"]
    assert "llm" in ours.extras and str(ours.specifier) == f"=={ray.__version__}", (
        f"pyproject.toml llm extra has {ours}; the installed ray is {ray.__version__}"
    )
    assert set(llm_extra()) == {"ray", "vllm"}


def torch_step(dockerfile_runs: list[Instruction]) -> str:
    (step,) = [i.args for i in dockerfile_runs if '"torch==${TORCH_VERSION}"' in i.args]
    return step


def test_the_cpu_llm_variant_leaves_torch_to_vllm_and_installs_the_extra() -> None:
    instructions = dockerfile()
    runs = [i for i in instructions if i.keyword == "RUN"]
    step = torch_step(runs).replace("pip install", "echo pip-install")
    for extras, installs_torch in [("", True), ("llm", False), ("dev,llm", False), ("dev", True)]:
        result = subprocess.run(["bash", "-c", step], env={"EXTRAS": extras, "TORCH_VERSION": "2.13.0",
                                "UTS_TORCH_INDEX": "https://download.pytorch.org/whl/cpu", "PATH": "/usr/bin:/bin"},
                                capture_output=True, text=True, check=True)  # fmt: skip
        assert ("pip-install" in result.stdout) == installs_torch, (extras, result.stdout)
    # the dependency layer: what requirements.py prints for EXTRAS=llm, whatever the VARIANT
    script = load_module(INFRA / "docker" / "requirements.py")
    lines = script.requirements(INFRA.parent / "pyproject.toml", ["llm"])
    assert {str(r) for r in llm_extra().values()} <= set(lines)
    assert any('--extras "${EXTRAS}"' in i.args for i in runs)
    header = "\n".join(line for line in (INFRA.parent / "Dockerfile").read_text().splitlines() if line.startswith("#"))  # fmt: skip
    assert "--build-arg VARIANT=cpu --build-arg EXTRAS=llm" in header and "0.1.0-cpu-llm" in header


def test_rays_llm_cpu_stages_run_on_any_node_and_the_multimodal_one_imports_vllm() -> None:
    # Why CPU workers get the llm extra: Ray 2.60 schedules these stages with no GPU, accelerator
    # or custom resource (so on any node with free CPUs), and the multimodal stage needs vLLM.
    from ray.llm._internal.batch.processor.utils import build_cpu_stage_map_kwargs
    from ray.llm._internal.batch.stages import prepare_multimodal_stage
    from ray.llm._internal.batch.stages.configs import PrepareMultimodalStageConfig

    kwargs = build_cpu_stage_map_kwargs(PrepareMultimodalStageConfig(enabled=True))
    assert not {"num_gpus", "accelerator_type", "resources", "label_selector"} & set(kwargs)
    source = inspect.getsource(prepare_multimodal_stage)
    assert "from vllm.config import ModelConfig" in source
    assert "from vllm.entrypoints.chat_utils import" in source
