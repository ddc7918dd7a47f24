"""The Dockerfile (parsed, not built): base images, build arguments, copy sources, layer order."""

from __future__ import annotations

import re

import pytest
import ray

from tests.infra.files import (
    DOCKERIGNORE,
    INFRA,
    LAUNCHER,
    REPO,
    Instruction,
    copy_sources,
    dockerfile,
    dockerignore_patterns,
    ignored,
    load_module,
    makefile_torch_pin,
    project_packages,
    pyproject,
)


def stages() -> list[list[Instruction]]:
    """Instructions grouped by stage; stage 0 holds the ARGs before the first FROM."""
    out: list[list[Instruction]] = [[]]
    for instruction in dockerfile():
        if instruction.keyword == "FROM":
            out.append([])
        out[-1].append(instruction)
    return out


def args_of(instructions: list[Instruction]) -> dict[str, str]:
    pairs = (i.args.partition("=") for i in instructions if i.keyword == "ARG")
    return {name: value.strip('"') for name, _, value in pairs}


def test_base_images_and_the_variant_switch() -> None:
    global_args, gpu, cpu, final = stages()
    assert args_of(global_args) == {
        "VARIANT": "gpu",
        "GPU_BASE": f"rayproject/ray:{ray.__version__}-py311-gpu",
        "CPU_BASE": f"rayproject/ray:{ray.__version__}-py311",
    }
    assert gpu[0].args == "${GPU_BASE} AS base-gpu"
    assert cpu[0].args == "${CPU_BASE} AS base-cpu"
    assert final[0].args == "base-${VARIANT}"
    # Each base brings its own torch build: CUDA 12.6 (sm_70, V100) on GPU, CPU on CPU.
    assert [i.args for i in gpu[1:]] == ["UTS_TORCH_INDEX=https://download.pytorch.org/whl/cu126"]
    assert [i.args for i in cpu[1:]] == ["UTS_TORCH_INDEX=https://download.pytorch.org/whl/cpu"]


def test_torch_is_pinned_like_the_makefile_and_the_launcher() -> None:
    final = stages()[-1]
    version = args_of(final)["TORCH_VERSION"]
    assert version == makefile_torch_pin()
    launcher_pins = set(re.findall(r"torch==([0-9][0-9A-Za-z.]*)", LAUNCHER.read_text()))
    assert launcher_pins == {version}
    runs = [i.args for i in final if i.keyword == "RUN"]
    torch = [r for r in runs if '"torch==${TORCH_VERSION}"' in r]
    assert len(torch) == 1 and '--index-url "${UTS_TORCH_INDEX}"' in torch[0]
    assert "*,llm,*)" in torch[0]  # vLLM images leave torch to vLLM


def test_every_pip_install_leaves_no_cache() -> None:
    installs = [i for i in dockerfile() if i.keyword == "RUN" and "pip install" in i.args]
    assert len(installs) == 3
    for instruction in installs:
        for command in re.split(r"&&|;;|\|\|", instruction.args):
            if "pip install" in command:
                assert "--no-cache-dir" in command, f"Dockerfile:{instruction.line}: {command}"


def test_copy_sources_exist_and_reach_the_build_context() -> None:
    patterns = dockerignore_patterns()
    copies = [i for i in dockerfile() if i.keyword in {"COPY", "ADD"}]
    assert all(i.keyword == "COPY" for i in copies)
    sources = [source for i in copies for source in copy_sources(i)]
    for source in sources:
        assert (REPO / source).exists(), f"COPY {source}: no such file in the repository"
        assert not ignored(source, patterns), f"COPY {source}: excluded by .dockerignore"
    assert project_packages() <= set(sources)
    assert {"pyproject.toml", pyproject()["project"]["readme"]} <= set(sources)


def test_dependencies_are_installed_before_the_source_is_copied() -> None:
    final = stages()[-1]
    index = {id(i): n for n, i in enumerate(final)}
    deps = [i for i in final if i.keyword == "RUN" and "pip install --no-cache-dir -r" in i.args]
    assert len(deps) == 1
    copies = [i for i in final if i.keyword == "COPY"]
    before = {s for i in copies if index[id(i)] < index[id(deps[0])] for s in copy_sources(i)}
    after = {s for i in copies if index[id(i)] > index[id(deps[0])] for s in copy_sources(i)}
    # Nothing that changes often comes before the dependency layer.
    assert before == {"pyproject.toml", "infra/docker/requirements.py"}
    assert project_packages() <= after
    last = final[-1]
    assert last.keyword == "RUN" and "--no-deps -e ." in last.args  # nothing left to resolve


def test_dockerignore_keeps_local_state_out() -> None:
    patterns = dockerignore_patterns(DOCKERIGNORE)
    for path in [".venv/bin/python", "uts-store/corpora/x", ".uts-cache/demo/a.deb", ".git/HEAD",
                 "uts/__pycache__/store.cpython-311.pyc", ".pytest_cache/v", ".hypothesis/x"]:  # fmt: skip
        assert ignored(path, patterns), path
    for path in ["uts/store.py", "jobs/study.py", "pyproject.toml", "infra/docker/requirements.py"]:
        assert not ignored(path, patterns), path


def requirements(*argv: str) -> int:
    return load_module(INFRA / "docker" / "requirements.py").main(list(argv))


def test_requirements_script_prints_pyprojects_dependencies(
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = pyproject()["project"]
    pyproject_toml = str(REPO / "pyproject.toml")
    assert requirements("--pyproject", pyproject_toml) == 0
    assert capsys.readouterr().out.splitlines() == project["dependencies"]
    assert requirements("--pyproject", pyproject_toml, "--extras", "llm") == 0
    extra = project["optional-dependencies"]["llm"]
    assert capsys.readouterr().out.splitlines() == project["dependencies"] + extra
    assert requirements("--pyproject", pyproject_toml, "--extras", "gpu") == 2
    assert "no extra 'gpu'; known: dev, llm" in capsys.readouterr().err
