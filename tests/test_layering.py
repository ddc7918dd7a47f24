"""The layers hold: imports point down only (function-level imports included), no job imports a
job, one module names the checkpoint files, and no source file grows past 400 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Each package and what it may import of ours (itself always). The order is the README's map.
ALLOWED = {
    "uts": set(),
    "cluster": {"uts"},
    "serve": {"uts", "cluster"},
    "tuning": {"uts", "cluster"},
    "stages": {"uts", "cluster", "serve", "tuning"},
    "jobs": {"uts", "cluster", "serve", "tuning", "stages"},
}
OURS = set(ALLOWED)
CHECKPOINT_MODULE = "uts/train/checkpoint.py"
CHECKPOINT_NAMES = (
    "model.pt",
    "averaged.pt",
    "training.pt",
    "lineage.json",
    "state.json",
    "checkpoint_*",
)
MAX_LINES = 400


def sources() -> list[Path]:
    return sorted(p for package in ALLOWED for p in (ROOT / package).rglob("*.py"))


def imported(tree: ast.AST, path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, at any depth."""
    found = []
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the file's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.append((node.lineno, name))
            found += [(node.lineno, f"{name}.{alias.name}") for alias in node.names]
    return found


def docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def test_the_walk_sees_every_layer() -> None:
    found = {p.relative_to(ROOT).parts[0] for p in sources()}
    assert found == OURS
    assert (ROOT / CHECKPOINT_MODULE).is_file()


def test_imports_point_down_and_no_job_imports_a_job() -> None:
    problems = []
    for path in sources():
        layer = path.relative_to(ROOT).parts[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for line, name in imported(tree, path):
            top = name.split(".")[0]
            if top not in OURS or (top == layer and layer != "jobs"):
                continue
            where = f"{path.relative_to(ROOT)}:{line} imports {name}"
            if top == "jobs":
                problems.append(f"{where} (nothing imports a job, jobs included)")
            elif top not in ALLOWED[layer]:
                problems.append(f"{where} ({layer} may import only {sorted(ALLOWED[layer])})")
    assert not problems, "\n".join(problems)


def checkpoint_spellings(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, text) of every string outside docstrings that names a checkpoint file or folder."""
    skip = docstrings(tree)
    found = []
    for node in ast.walk(tree):
        text = node.value if isinstance(node, ast.Constant) else None
        named = isinstance(text, str) and any(name in text for name in CHECKPOINT_NAMES)
        if named and id(node) not in skip:
            found.append((node.lineno, str(text)))
    return found


def test_one_module_names_the_checkpoint_files() -> None:
    problems = [
        f"{path.relative_to(ROOT)}:{line} spells {text!r}"
        for path in sources()
        if path.relative_to(ROOT).as_posix() != CHECKPOINT_MODULE
        for line, text in checkpoint_spellings(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert not problems, "only uts/train/checkpoint.py may name checkpoint files:\n" + "\n".join(
        problems
    )
    assert checkpoint_spellings(ast.parse((ROOT / CHECKPOINT_MODULE).read_text(encoding="utf-8")))


@pytest.mark.parametrize("path", sources(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_file_over_400_lines(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines; split it by concern"


def test_the_checkers_catch_what_they_look_for() -> None:
    """The walk sees imports inside functions and resolves relative ones; a file name in code is
    caught, the same name in a docstring is not."""
    source = "def f():\n    from jobs import pretrain\n    from .x import y\n"
    path = ROOT / "uts" / "probe" / "fake.py"
    names = [name for _, name in imported(ast.parse(source), path)]
    assert "jobs.pretrain" in names and "uts.probe.x.y" in names
    source = 'def f():\n    """Reads model.pt."""\n    return uri + "/lineage.json"\n'
    assert [text for _, text in checkpoint_spellings(ast.parse(source))] == ["/lineage.json"]
