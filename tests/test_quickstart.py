"""The README's Quick start stays true: two commands, CI runs the test one, the demo one works."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from uts.tags import load_vocab
from uts.train.config import PRESETS

ROOT = Path(__file__).resolve().parents[1]

STEPS = PRESETS["demo"]["max_steps"]  # the demo run's length


def quickstart_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "Quick start has no ```sh block"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_quickstart_is_two_commands_and_ci_runs_the_test_one() -> None:
    assert quickstart_commands() == ["make demo", "make test"]
    ci = [
        line
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "set ", "cd "))
    ]
    assert ci == ["make test"]


@pytest.mark.slow
def test_make_demo_runs_the_embedded_default(tmp_path: Path) -> None:
    """The README's main command, for real: Debian packages (cached in .uts-cache/), the demo
    corpus, its probe tasks, acoustic captions, rules tags, vocabulary, the AudioSet labels and
    theirs, both pretraining runs and one probe table; then a rerun that finds everything done."""
    store = tmp_path / "store"
    # Use this interpreter's environment and skip the set-up step (the test run already has it).
    make = ["make", "-C", str(ROOT), "-o", ".venv/.installed", f"BIN={Path(sys.executable).parent}"]
    first = subprocess.run([*make, "demo", f"STORE={store}"], capture_output=True, text=True)
    assert first.returncode == 0, first.stderr[-3000:]
    corpus = json.loads((store / "corpora/demo/corpus.json").read_text())
    assert corpus["clips"] >= 2000 and corpus["domains"]["speech"] >= 1000
    assert corpus["domains"]["music"] >= 500 and corpus["domains"]["environment"] >= 300
    for task in ("speaker_id", "pitch", "environment_category", "sound_attributes"):
        assert (store / "tasks" / task / "baseline.json").exists()
    vocab = load_vocab(str(store / "vocab" / "demo-uts"))
    assert vocab.n_clips > 300 and len(vocab) >= 300
    (checkpoint,) = [p for p in (store / "runs" / "demo-mtc-k300").glob("checkpoint_*")
                     if p.is_dir() and json.loads((p / "state.json").read_text())["step"] == STEPS]  # fmt: skip
    lineage = json.loads((checkpoint / "lineage.json").read_text())
    assert (
        lineage["corpus"]["fingerprint"] == corpus["fingerprint"] and lineage["vocab"]["k"] == 300
    )
    probe = json.loads(
        (store / "evals" / "demo-mtc-k300" / "logistic" / "summary.json").read_text()
    )
    assert (
        set(probe["baselines"]) == {"log-mel", "random-init"} and "speaker_id" in probe["results"]
    )
    assert probe["checkpoint"].rstrip("/").endswith(checkpoint.name)
    assert "| random-init |" in first.stdout and "| demo-mtc-k300 |" in first.stdout
    # The paper's comparison: the same recipe on the clips' AudioSet labels, in the same table.
    labels = load_vocab(str(store / "vocab" / "demo-audioset"))
    labels_run = f"demo-labels-mtc-k{min(300, len(labels))}"
    assert (store / "evals" / labels_run / "logistic" / "summary.json").exists()
    assert f"| {labels_run} |" in first.stdout
    again = subprocess.run([*make, "demo", f"STORE={store}"], capture_output=True, text=True)
    assert again.returncode == 0 and f"is complete at step {STEPS}" in again.stdout, again.stdout[
        -2000:
    ]
    assert "| demo-mtc-k300 |" in again.stdout and f"| {labels_run} |" in again.stdout
