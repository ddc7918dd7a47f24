"""Reading the infra files for tests/infra: YAML, the Dockerfile, job commands, Ray node capacity."""

from __future__ import annotations

import importlib.util
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
LAUNCHER = INFRA / "aws" / "cluster.yaml"
RAYCLUSTER = INFRA / "k8s" / "raycluster.yaml"
RAYJOB = INFRA / "k8s" / "rayjob.yaml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"

# AWS instance family -> (NVIDIA GPU, Ray's accelerator type name, compute capability).
# Ray's names are those of ray.util.accelerators (the test checks they are).
GPU_FAMILIES = {
    "p3": ("V100", 7.0),
    "g4dn": ("T4", 7.5),
    "g5": ("A10G", 8.6),
    "g6": ("L4", 8.9),
    "g6e": ("L40S", 8.9),
    "p4d": ("A100", 8.0),
    "p4de": ("A100", 8.0),
    "p5": ("H100", 9.0),
    "p5e": ("H200", 9.0),
}
# GPUs per instance type (AWS instance type pages), for the types the configs use.
GPUS_PER_INSTANCE = {
    "g5.2xlarge": 1,
    "g6.12xlarge": 4,
    "p4d.24xlarge": 8,
    "p5.48xlarge": 8,
    "p3.2xlarge": 1,
    "p3.16xlarge": 8,
}
# Where vLLM may run: compute capability >= 7.5, and not the 16 GB T4 of g4dn (no bf16, too small
# for the 7B tagger).
LLM_FAMILIES = {family for family, (gpu, cc) in GPU_FAMILIES.items() if cc >= 7.5} - {"g4dn"}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def pyproject() -> dict[str, Any]:
    with (REPO / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)


def project_packages() -> set[str]:
    """Top-level package folders of [tool.setuptools.packages.find] include ("uts*" -> "uts")."""
    include = pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]
    return {pattern.rstrip("*").rstrip(".") for pattern in include}


def makefile_torch_pin() -> str:
    """The torch version the Makefile installs (the CPU build, before the project)."""
    pins = set(re.findall(r"torch==([0-9][0-9A-Za-z.]*)", (REPO / "Makefile").read_text()))
    assert len(pins) == 1, f"expected one torch==X pin in the Makefile, found {sorted(pins)}"
    return pins.pop()


def family(instance_type: str) -> str:
    return instance_type.split(".", 1)[0]


def load_module(path: Path) -> ModuleType:
    """Import a script that is not part of an installed package (infra/ is not one)."""
    name = "infra_" + "_".join(path.relative_to(INFRA).with_suffix("").parts)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def workers_fit(node: dict[str, float], demand: dict[str, float]) -> int:
    """How many bundles of `demand` one node with `node` resources holds (Ray's packing)."""
    return min(int(node.get(key, 0) // amount) for key, amount in demand.items() if amount > 0)


# --- commands ---------------------------------------------------------------------------------

SHELL_OPERATORS = {"&&", "||", ";", "|", ">", ">>", "<", "&"}
JOB_COMMAND = re.compile(r"\bpython3? jobs/([A-Za-z_]\w*)\.py\b")


@dataclass(frozen=True)
class JobCommand:
    source: str  # file and line, for messages and test ids
    job: str  # jobs/<job>.py
    argv: tuple[str, ...]


def logical_lines(path: Path, comments_only: bool = False) -> list[tuple[int, str]]:
    """(first line number, text) with backslash continuations joined; in YAML files, comment
    markers are dropped so that commands shown in comments are read whole."""
    yaml_file = path.suffix in {".yaml", ".yml"}
    out: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw
        if yaml_file and line.lstrip().startswith("#"):
            line = line.lstrip()[1:]
        elif comments_only:
            pending = None
            continue
        if pending is not None:
            line = pending[1] + " " + line.strip()
            number = pending[0]
        if line.rstrip().endswith("\\"):
            pending = (number, line.rstrip()[:-1])
            continue
        pending = None
        out.append((number, line))
    return out


def commands_in(text: str, source: str) -> list[JobCommand]:
    """Every `python jobs/X.py ARGS` in one line of shell, ARGS cut at a shell operator or comment."""
    found = []
    for match in JOB_COMMAND.finditer(text):
        argv = []
        for word in shlex.split(text[match.end() :], comments=True):
            if word in SHELL_OPERATORS:
                break
            argv.append(word)
        found.append(JobCommand(source, match[1], tuple(argv)))
    return found


def strings(value: Any, path: str = "") -> list[tuple[str, str]]:
    """(dotted key path, string) for every string inside a parsed YAML document."""
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [
            s for key, item in value.items() for s in strings(item, f"{path}.{key}".lstrip("."))
        ]
    if isinstance(value, list):
        return [s for i, item in enumerate(value) for s in strings(item, f"{path}.{i}")]
    return []


def job_commands(path: Path) -> list[JobCommand]:
    """Job commands of a file: in YAML, those its values run (entrypoints, setup commands) and
    those its comments show; elsewhere (README, Dockerfile), those on any line."""
    name = str(path.relative_to(REPO))
    yaml_file = path.suffix in {".yaml", ".yml"}
    found = []
    for number, line in logical_lines(path, comments_only=yaml_file):
        found += commands_in(line, f"{name}:{number}")
    if yaml_file:
        for key, text in strings(load_yaml(path)):
            found += commands_in(text, f"{name}:{key}")
    return found


# --- Dockerfile ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str  # upper case: FROM, ARG, RUN, ...
    args: str


def dockerfile(path: Path = DOCKERFILE) -> list[Instruction]:
    """Instructions with continuation lines joined and comment lines dropped (no heredocs)."""
    out: list[Instruction] = []
    start, parts = 0, []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        stripped = raw.strip()
        if not parts and (not stripped or stripped.startswith("#")):
            continue
        if parts and stripped.startswith("#"):
            continue  # a comment line inside a continued instruction
        assert "<<" not in stripped, f"Dockerfile:{number}: heredocs are not parsed here"
        if not parts:
            start = number
        continued = stripped.endswith("\\")
        parts.append(stripped[:-1].strip() if continued else stripped)
        if not continued:
            keyword, _, args = " ".join(parts).partition(" ")
            out.append(Instruction(start, keyword.upper(), args.strip()))
            parts = []
    assert not parts, "Dockerfile ends inside a continued instruction"
    return out


def copy_sources(instruction: Instruction) -> list[str]:
    """The source paths of a COPY (flags such as --chown dropped; the last word is the target)."""
    words = [w for w in shlex.split(instruction.args) if not w.startswith("--")]
    return words[:-1]


def dockerignore_patterns(path: Path = DOCKERIGNORE) -> list[str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def ignored(relative: str, patterns: list[str]) -> bool:
    """Whether .dockerignore leaves `relative` (or a folder above it) out of the context.

    Docker matches with Go's filepath.Match plus `**`; for these simple patterns (no `!`
    exceptions) a match of the path or any of its parents is the same thing.
    """
    parts = Path(relative).parts
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        assert not pattern.startswith("!"), "exceptions are not handled by this check"
        regex = re.escape(pattern.strip("/")).replace(r"\*\*/", "(?:.*/)?").replace(r"\*", "[^/]*")
        if any(re.fullmatch(regex, c) for c in candidates):
            return True
    return False
