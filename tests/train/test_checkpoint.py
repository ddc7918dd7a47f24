"""uts.train.checkpoint: what the train loop saves comes back (weights, resume state, counters,
lineage), the run's checkpoints are found by step, and a folder in the layout that training wrote
before this module existed (files written here by hand, under their literal names) reads the same
and is byte for byte what `save` writes today."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from uts.store import Store
from uts.train import checkpoint

STAMPS = ("2026-01-01_00-00-00.000000", "2026-01-01_00-01-00.000000", "2026-01-01_00-02-00.000000")


def tiny_model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))


def training_state(model: torch.nn.Module) -> dict[str, Any]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(2, 4)).sum().backward()
    optimizer.step()  # so the optimiser state holds tensors, as after real steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    return {
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": None,
    }


def counters(step: int) -> dict[str, Any]:
    history = [{"step": s, "val_loss": 1.0 / s} for s in range(6, step + 1, 6)]
    return {"step": step, "epoch": step // 10, "skipped": 0, "audio_seconds": 36.0 * step, "history": history}  # fmt: skip


def lineage(step: int) -> dict[str, Any]:
    # A Path is not JSON: lineage values are written as str, as the train loop's lineage may hold.
    return {"corpus": {"name": "c", "fingerprint": "f"}, "vocab": {"name": "v", "k": 6},
            "config": {"k": 6}, "metrics": counters(step)["history"], "where": Path("/x")}  # fmt: skip


def save_run(store: Store, run: str, steps: list[int]) -> dict[int, torch.nn.Module]:
    models = {}
    for stamp, step in zip(STAMPS, steps, strict=False):
        folder = Path(checkpoint.folder_path(store, run, stamp))
        folder.mkdir(parents=True)
        models[step] = model = tiny_model(step)
        checkpoint.save(folder, model_state=model.state_dict(), training_state=training_state(model),
                        state=counters(step), lineage=lineage(step))  # fmt: skip
    return models


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert list(a) == list(b)
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_saved_checkpoints_come_back_and_are_found_by_step(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    models = save_run(
        store, "r", [12, 6, 18]
    )  # saved out of step order: found by step, not by name
    latest = checkpoint.latest(store, "r")
    assert latest is not None and latest[1] == counters(18)
    assert Path(latest[0]) == tmp_path / "runs" / "r" / f"checkpoint_{STAMPS[2]}"
    assert checkpoint.at_step(store, "r", 7) == (str(tmp_path / "runs" / "r" / f"checkpoint_{STAMPS[0]}"), counters(12))  # fmt: skip
    first = checkpoint.at_step(store, "r", 6)
    assert first is not None and first[1]["step"] == 6
    assert checkpoint.at_step(store, "r", 19) is None
    assert checkpoint.finished(store, "r", 18) == latest[0]
    assert checkpoint.finished(store, "r", 24) is None
    assert (
        checkpoint.latest(store, "other") is None and checkpoint.finished(store, "other", 0) is None
    )

    uri = latest[0]
    assert checkpoint.is_checkpoint(uri)
    assert checkpoint.read_lineage(uri) == {**lineage(18), "where": "/x"}
    weights = checkpoint.load_weights(uri)
    assert_same_weights(weights, models[18].state_dict())
    restored = tiny_model(0)
    restored.load_state_dict(weights)  # a model of the same architecture takes them
    model_state, training, state = checkpoint.load_training(Path(uri))
    assert_same_weights(model_state, models[18].state_dict())
    assert state == counters(18)
    expected = training_state(tiny_model(18))
    assert training["scaler"] is None and training["scheduler"] == expected["scheduler"]
    assert list(training["optimizer"]["state"]) == list(expected["optimizer"]["state"])


def test_a_checkpoint_of_the_old_layout_reads_the_same_and_save_writes_its_bytes(
    tmp_path: Path,
) -> None:
    """The files as the train loop wrote them before uts.train.checkpoint (literal names, the same
    torch.save and json.dumps calls): found, read, and identical to what `save` writes now."""
    store = Store(str(tmp_path / "store"))
    old = tmp_path / "store" / "runs" / "old" / "checkpoint_2025-12-01_10-00-00.000000"
    old.mkdir(parents=True)
    model = tiny_model(3)
    training = training_state(model)
    torch.save(model.state_dict(), old / "model.pt")
    torch.save({"optimizer": training["optimizer"], "scheduler": training["scheduler"],
                "scaler": None}, old / "training.pt")  # fmt: skip
    (old / "state.json").write_text(json.dumps(counters(12), indent=2))
    (old / "lineage.json").write_text(json.dumps(lineage(12), indent=2, default=str))

    assert checkpoint.latest(store, "old") == (str(old), counters(12))
    assert checkpoint.finished(store, "old", 12) == str(old)
    assert checkpoint.read_lineage(str(old))["vocab"] == {"name": "v", "k": 6}
    assert_same_weights(checkpoint.load_weights(str(old)), model.state_dict())
    model_state, loaded, state = checkpoint.load_training(old)
    assert_same_weights(model_state, model.state_dict())
    assert state == counters(12) and loaded["scheduler"] == training["scheduler"]

    new = tmp_path / "new"
    new.mkdir()
    checkpoint.save(new, model_state=model.state_dict(), training_state=training, state=counters(12),
                    lineage=lineage(12))  # fmt: skip
    for name in ("model.pt", "training.pt", "state.json", "lineage.json"):
        assert (new / name).read_bytes() == (old / name).read_bytes(), name
    assert checkpoint.weights_digest(str(new)) == checkpoint.weights_digest(str(old))


def test_weights_only_folders_and_what_is_not_a_checkpoint(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    folder = Path(checkpoint.folder_path(store, "w", STAMPS[0]))
    folder.mkdir(parents=True)
    checkpoint.save(folder, model_state=tiny_model(1).state_dict(), training_state=None, state=None,
                    lineage={"config": {}})  # fmt: skip
    assert sorted(p.name for p in folder.iterdir()) == ["lineage.json", "model.pt"]
    assert checkpoint.is_checkpoint(str(folder)) and checkpoint.read_lineage(str(folder)) == {"config": {}}  # fmt: skip
    assert checkpoint.latest(store, "w") is None  # no counters: not a finished report

    (folder / "model.pt").unlink()
    assert not checkpoint.is_checkpoint(str(folder))
    with pytest.raises(FileNotFoundError, match=r"not a pretraining checkpoint \(no model.pt\)"):
        checkpoint.read_lineage(str(folder))
    assert not checkpoint.is_checkpoint(str(tmp_path / "nowhere"))


def test_the_run_of_a_checkpoint_folder() -> None:
    assert checkpoint.run_of("s3://b/store/runs/demo-mtc/checkpoint_2026-01-01_00-00-00.000000/") == "demo-mtc"  # fmt: skip
    assert checkpoint.run_of("/models/best") is None


def test_weights_of_another_model_are_refused_with_what_differs() -> None:
    source = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    target = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Linear(5, 2), torch.nn.ReLU())
    target.add_module("extra", torch.nn.Linear(1, 1))
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(ValueError) as error:
        checkpoint.restore(target, source.state_dict(), "s3://b/runs/old/checkpoint_1")
    message = str(error.value)
    assert message.startswith("s3://b/runs/old/checkpoint_1: ")
    assert "2 missing (e.g. extra.weight, extra.bias)" in message
    assert "3 of another shape (e.g. 0.weight, 0.bias, 1.weight)" in message  # 1.bias fits
    assert_same_weights(target.state_dict(), before)  # nothing half-loaded
    same = tiny_model(1)
    checkpoint.restore(same, tiny_model(2).state_dict(), "here")
    assert_same_weights(same.state_dict(), tiny_model(2).state_dict())
