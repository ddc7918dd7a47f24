"""infra/aws: the Ray cluster launcher config and its renderer, and every job command in infra/.

Offline: Ray's own config validation (no cloud credentials), Ray Train's own resource requests.
"""

from __future__ import annotations

import copy
import importlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config
from ray.train import ScalingConfig
from ray.util import accelerators

from tests.infra.files import (
    GPU_FAMILIES,
    GPUS_PER_INSTANCE,
    INFRA,
    LAUNCHER,
    LLM_FAMILIES,
    RAYJOB,
    REPO,
    JobCommand,
    family,
    job_commands,
    load_module,
    load_yaml,
    makefile_torch_pin,
    project_packages,
    pyproject,
    workers_fit,
)

CU126 = "https://download.pytorch.org/whl/cu126"


def launcher() -> dict[str, Any]:
    return load_yaml(LAUNCHER)


def prepared(config: dict[str, Any]) -> dict[str, Any]:
    """What `ray up` does before it launches anything: defaults merged, then Ray's validation."""
    out = prepare_config(copy.deepcopy(config))
    validate_config(out)
    return out


def setup_commands(config: dict[str, Any], node_type: str) -> list[str]:
    """The setup commands a node of this type runs (Ray's rules, after prepare_config)."""
    if node_type == config["head_node_type"]:
        return config["head_setup_commands"]
    node = config["available_node_types"][node_type]
    return node.get("worker_setup_commands", config["worker_setup_commands"])


def workers(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    types = config["available_node_types"]
    return {name: node for name, node in types.items() if name != config["head_node_type"]}


# --- the launcher config ----------------------------------------------------------------------


def test_launcher_config_passes_rays_validation() -> None:
    config = prepared(launcher())
    assert config["provider"]["type"] == "aws"
    assert config["available_node_types"][config["head_node_type"]]["max_workers"] == 0
    assert config["head_node_type"] == "head"


def test_launcher_runs_the_ray_images_of_the_installed_ray() -> None:
    docker = launcher()["docker"]
    python = "py311"  # pyproject: requires-python >=3.11,<3.12
    assert pyproject()["project"]["requires-python"] == ">=3.11,<3.12"
    assert docker["image"] == f"rayproject/ray:{ray.__version__}-{python}-gpu"
    assert ray.__version__.startswith("2.60.")
    assert docker["head_image"] == f"rayproject/ray:{ray.__version__}-{python}"
    assert docker["container_name"]
    for name, node in workers(launcher()).items():
        image = node.get("docker", {}).get("worker_image", docker["image"])
        assert image.startswith(f"rayproject/ray:{ray.__version__}-{python}"), name
        assert ("GPU" in node["resources"]) == image.endswith("-gpu"), name


def test_gpu_node_types_declare_gpus_and_rays_accelerator_label() -> None:
    known = {v for k, v in vars(accelerators).items() if k.isupper() and isinstance(v, str)}
    for name, node in workers(launcher()).items():
        instance = node["node_config"]["InstanceType"]
        labels = [k for k in node["resources"] if k.startswith("accelerator_type:")]
        if family(instance) not in GPU_FAMILIES:
            assert "GPU" not in node["resources"] and not labels, name
            continue
        gpu = GPU_FAMILIES[family(instance)][0]
        assert gpu in known, f"{gpu} is not one of ray.util.accelerators' names"
        assert labels == [f"accelerator_type:{gpu}"], name
        assert node["resources"][labels[0]] == 1, name
        assert node["resources"]["GPU"] == GPUS_PER_INSTANCE[instance], name


def test_llm_node_types_have_gpus_vllm_supports() -> None:
    llm = {n: node for n, node in workers(launcher()).items() if n.startswith("llm-")}
    assert llm, "no llm-* node types"
    instances = {node["node_config"]["InstanceType"] for node in llm.values()}
    assert {family(i) for i in instances} <= LLM_FAMILIES, instances
    assert {"g5", "g6", "p4d", "p5"} <= {family(i) for i in instances}


def test_training_workers_fit_only_the_v100_node_types() -> None:
    # What Ray Train asks for per worker with the paper's ScalingConfig (cluster/train.py).
    config = ScalingConfig(num_workers=8, use_gpu=True, accelerator_type="V100")
    demand = config._resources_per_worker_not_none
    assert demand.get("accelerator_type:V100", 0) > 0
    fits, expected = {}, {}
    for name, node in workers(launcher()).items():
        fits[name] = workers_fit(node["resources"], demand)
        gpus = GPUS_PER_INSTANCE.get(node["node_config"]["InstanceType"], 0)
        expected[name] = gpus if name.startswith("train-") else 0  # one worker per V100
    assert fits == expected
    assert fits["train-v100x8"] == 8  # the paper's 8x V100 on one node


@pytest.mark.parametrize("gpu", ["A10G", "L4", "A100", "H100"])
def test_a_vllm_engine_fits_only_its_gpu_type(gpu: str) -> None:
    # vLLMEngineProcessorConfig(accelerator_type=T): one GPU and a sliver of accelerator_type:T.
    demand = {"GPU": 1, f"accelerator_type:{gpu}": 0.001}
    fitting = [
        n for n, node in workers(launcher()).items() if workers_fit(node["resources"], demand)
    ]
    assert len(fitting) == 1 and fitting[0].startswith("llm-"), fitting


def test_v100_nodes_spot_and_on_demand() -> None:
    train = {n: node for n, node in workers(launcher()).items() if n.startswith("train-")}
    by_instance = {
        node["node_config"]["InstanceType"]: node["node_config"] for node in train.values()
    }
    assert set(by_instance) == {"p3.2xlarge", "p3.16xlarge"}
    assert by_instance["p3.2xlarge"]["InstanceMarketOptions"] == {"MarketType": "spot"}
    assert "InstanceMarketOptions" not in by_instance["p3.16xlarge"]


def test_cuda_12_6_torch_only_on_v100_nodes_and_pinned_like_the_makefile() -> None:
    config = prepared(launcher())
    pin = f"torch=={makefile_torch_pin()}"
    for name in config["available_node_types"]:
        commands = setup_commands(config, name)
        torch = [c for c in commands if "pip install" in c and " torch" in c]
        project = [i for i, c in enumerate(commands) if "pip install" in c and "/uts" in c]
        assert project, f"{name} never installs the project"
        if name.startswith("train-"):
            assert len(torch) == 1 and CU126 in torch[0] and pin in torch[0], (name, torch)
        else:
            assert not any(CU126 in c for c in commands), name
        if torch:  # torch before the project, so that pip keeps it
            assert commands.index(torch[0]) < project[0], name
            assert pin in torch[0], (name, torch)
    everywhere = (
        config["setup_commands"] + config["worker_setup_commands"] + config["head_setup_commands"]
    )
    assert not any(CU126 in c for c in everywhere)


def test_llm_and_cpu_workers_install_the_llm_extra() -> None:
    # vLLM engines run on llm-*; the processors' CPU stages (the multimodal one imports vLLM) run
    # on any worker with free CPUs, so the cpu workers have it too. The head runs no tasks (its
    # drivers build processors without vLLM) and the V100 trainers keep their CUDA 12.6 torch.
    assert "llm" in pyproject()["project"]["optional-dependencies"]
    config = prepared(launcher())
    for name in config["available_node_types"]:
        has_extra = any('uts[llm]"' in c for c in setup_commands(config, name))
        runs_llm_stages = name.startswith(("llm-", "cpu"))
        assert has_extra == runs_llm_stages, name
        assert runs_llm_stages or name == "head" or name.startswith("train-"), name


def test_file_mounts_carry_the_packages_and_the_token() -> None:
    mounts = launcher()["file_mounts"]
    for remote, local in mounts.items():
        if not local.startswith("~"):
            assert (REPO / local).exists(), f"file_mounts {remote}: {local} does not exist"
    remote_packages = {Path(r).name for r, local in mounts.items() if (REPO / local).is_dir()}
    assert remote_packages == project_packages()
    assert {"~/uts/pyproject.toml", "~/uts/" + pyproject()["project"]["readme"]} <= set(mounts)
    assert mounts["~/.ray/auth_token"] == "~/.ray/auth_token"


def test_token_auth_is_on_in_every_container() -> None:
    config = launcher()
    assert "--env RAY_AUTH_MODE=token" in config["docker"]["run_options"]
    for name, node in config["available_node_types"].items():
        assert "run_options" not in node.get("docker", {}), name  # would not replace, but be clear


def test_every_worker_type_states_its_limits() -> None:
    config = launcher()
    for name, node in workers(config).items():
        assert 0 <= node["min_workers"] <= node["max_workers"], name
    assert sum(node["min_workers"] for node in workers(config).values()) <= config["max_workers"]
    assert config["idle_timeout_minutes"] > 0
    assert config["available_node_types"]["head"]["resources"] == {"CPU": 0}


# --- the renderer -----------------------------------------------------------------------------


def render(*argv: str) -> Any:
    return load_module(INFRA / "aws" / "render.py").main(list(argv))


def test_render_writes_the_overrides_and_the_copy_still_validates(tmp_path: Path) -> None:
    out = tmp_path / "cluster.yaml"
    code = render(
        "--max-llm-workers", "3", "--max-train-workers", "5", "--max-cpu-workers", "7",
        "--region", "eu-west-1", "--max-workers", "30", "--idle-timeout-minutes", "20",
        "--min", "cpu=1", "--max", "train-v100-spot=0", "--cluster-name", "uts-eu",
        "--ami", "ami-0123456789abcdef0",
        "--worker-instance-profile", "arn:aws:iam::123456789012:instance-profile/uts",
        "-o", str(out),
    )  # fmt: skip
    assert code == 0
    text = out.read_text()
    assert text.startswith("# Rendered from infra/aws/cluster.yaml")
    config = yaml.safe_load(text)
    types = config["available_node_types"]
    assert {n: t["max_workers"] for n, t in types.items() if n.startswith("llm-")} == {
        "llm-a10g": 3, "llm-l4": 3, "llm-a100": 3, "llm-h100": 3,
    }  # fmt: skip
    assert types["train-v100x8"]["max_workers"] == 5
    assert types["train-v100-spot"]["max_workers"] == 0  # --max after the group flag
    assert (types["cpu"]["min_workers"], types["cpu"]["max_workers"]) == (1, 7)
    assert (config["max_workers"], config["idle_timeout_minutes"]) == (30, 20)
    assert (config["cluster_name"], config["provider"]["region"]) == ("uts-eu", "eu-west-1")
    assert {t["node_config"]["ImageId"] for t in types.values()} == {"ami-0123456789abcdef0"}
    assert "IamInstanceProfile" not in types["head"]["node_config"]
    assert types["cpu"]["node_config"]["IamInstanceProfile"]["Arn"].endswith("/uts")
    # Everything else is as in cluster.yaml, and Ray accepts the copy.
    source = launcher()
    assert [types[n]["worker_setup_commands"] for n in workers(source)] == [
        node["worker_setup_commands"] for node in workers(source).values()
    ]
    assert config["docker"] == source["docker"] and config["file_mounts"] == source["file_mounts"]
    prepared(config)


def test_render_without_flags_reproduces_the_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert render() == 0
    assert yaml.safe_load(capsys.readouterr().out) == launcher()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--min", "cpu=9"], "min_workers 9 > max_workers 4"),
        (["--max", "gpu=1"], "no worker node type 'gpu'"),
        (["--max", "head=1"], "no worker node type 'head'"),
        (["--max-workers", "1", "--min", "cpu=2"], "add up to 2, more than max_workers 1"),
        (["--max-llm-workers", "-1"], "must be >= 0"),
    ],
)
def test_render_refuses_inconsistent_limits(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert render(*argv, "-o", "-") == 2
    assert message in capsys.readouterr().err


def test_render_runs_as_a_script(tmp_path: Path) -> None:
    out = tmp_path / "c.yaml"
    result = subprocess.run(
        [sys.executable, str(INFRA / "aws" / "render.py"), "--max-train-workers", "2", "-o", str(out)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (
        yaml.safe_load(out.read_text())["available_node_types"]["train-v100x8"]["max_workers"] == 2
    )


# --- job commands -----------------------------------------------------------------------------

COMMAND_FILES = [*sorted(INFRA.rglob("*.yaml")), INFRA / "README.md", REPO / "Dockerfile"]
COMMANDS = [command for path in COMMAND_FILES for command in job_commands(path)]
STUDY_FLAGS = (
    '--caption-args "--accelerator-type A100 --tensor-parallel-size 2" '
    '--tag-args "--accelerator-type L4"'
)


def test_the_expected_commands_are_found() -> None:
    jobs_by_file = {(c.source.split(":")[0], c.job) for c in COMMANDS}
    assert {
        ("infra/k8s/rayjob.yaml", "study"),
        ("infra/k8s/raycluster.yaml", "study"),
        ("infra/aws/cluster.yaml", "study"),
        ("infra/README.md", "study"),
        ("infra/README.md", "tag"),
        ("infra/README.md", "caption"),
        ("infra/README.md", "pretrain"),
    } <= jobs_by_file
    entrypoint = load_yaml(RAYJOB)["spec"]["entrypoint"]
    assert entrypoint == (
        f"python jobs/study.py --store s3://YOUR-BUCKET/uts --preset paper {STUDY_FLAGS}"
    )
    sources = {c.source for c in COMMANDS if c.job == "study"}
    assert "infra/k8s/rayjob.yaml:spec.entrypoint" in sources


STAGE_OF_JOB = {"build_vocab": "vocab"}  # jobs/<job>.py runs stages/<stage>.py


def parse_job(job: str, argv: list[str]) -> Any:
    """A job's command line as the job parses it: into its stage's spec (jobs/serve.py, which
    runs no stage: serve.launch's flags). argparse refusals raise SystemExit."""
    if job == "serve":
        from serve.launch import parse_args

        return parse_args(argv)
    from stages.cli import parser_for

    stage = importlib.import_module(f"stages.{STAGE_OF_JOB.get(job, job)}")
    parser = parser_for(stage, f"{job}.py")
    return stage.spec_from_args(parser.parse_args(argv), parser)


def study_stage_argvs(spec: Any) -> dict[str, list[str]]:
    """Flags jobs/study.py hands on to its caption, tag and pretrain stages (stages/study_plan.py)."""
    from stages.study import settings

    chosen = settings(spec)
    corpus = ["--corpus", chosen.corpus]
    return {
        "caption": [*corpus, "--backend", chosen.captioner, *chosen.caption_args],
        "tag": [*corpus, "--backend", chosen.tagger, *chosen.tag_args],
        "pretrain": [*chosen.preset.pretrain_args, *chosen.pretrain_args],
    }


@pytest.mark.parametrize("command", COMMANDS, ids=[f"{c.source}:{c.job}" for c in COMMANDS])
def test_job_command_names_a_job_and_its_arguments_parse(command: JobCommand) -> None:
    script = REPO / "jobs" / f"{command.job}.py"
    assert script.is_file(), f"{command.source}: no jobs/{command.job}.py"
    try:
        args = parse_job(command.job, list(command.argv))
        if command.job == "study":  # the flags it hands on parse in those jobs too
            for job, argv in study_stage_argvs(args).items():
                parse_job(job, argv)
    except SystemExit as exc:  # argparse's way of refusing arguments
        pytest.fail(f"{command.source}: refused: {' '.join(command.argv)} ({exc})")


def test_paper_study_commands_put_the_llm_stages_on_vllm_gpus() -> None:
    # vLLM cannot run on the V100s, so every paper-preset study command names the LLM GPUs.
    from stages.study import settings

    papers = [c for c in COMMANDS if c.job == "study" and "paper" in c.argv]
    assert papers
    for command in papers:
        chosen = settings(parse_job("study", list(command.argv)))
        for flags in (chosen.caption_args, chosen.tag_args):
            assert "--accelerator-type" in flags, command.source
            gpu = flags[flags.index("--accelerator-type") + 1]
            assert gpu in {name for name, _ in GPU_FAMILIES.values()} - {"V100", "T4"}, command
