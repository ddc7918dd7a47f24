"""The library stays pure: every uts.* module imports with ray, vllm and optuna unavailable."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import uts

BLOCKER = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"ray", "vllm", "optuna"}:
            raise ImportError(f"uts must not import {name}")
        return None
sys.meta_path.insert(0, Block())
import importlib
for name in sys.argv[1:]:
    importlib.import_module(name)
print("imported", len(sys.argv) - 1)
"""


def all_modules() -> list[str]:
    names = ["uts"]
    for info in pkgutil.walk_packages(uts.__path__, prefix="uts."):
        names.append(info.name)
    return names


def test_every_uts_module_imports_without_ray_vllm_optuna() -> None:
    modules = all_modules()
    assert "uts.tags.vocab" in modules and "uts.store" in modules  # the walk found the package
    result = subprocess.run(
        [sys.executable, "-c", BLOCKER, *modules], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"imported {len(modules)}"


def test_blocker_really_blocks() -> None:
    result = subprocess.run(
        [sys.executable, "-c", BLOCKER, "optuna"], capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "uts must not import optuna" in result.stderr
