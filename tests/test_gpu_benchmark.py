"""benchmarks/gpu.py: the CPU dry run (`--device cpu --quick`) reports every field with numbers
that agree with each other and with a FLOP count made here; the conv-backward formula and the
peak table against hand-computed values."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.py"
FIELDS = ("precision", "status", "clips", "audio_s_per_step", "step_s", "peak_mb", "audio_s_per_s",
          "frames_per_s", "tokens_per_s", "flops_per_step", "achieved_tflops", "peak_tflops",
          "peak_kind", "mfu", "skipped_steps", "schedule_wall_h", "schedule_wall_days")  # fmt: skip


def load_benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def quick() -> dict[str, Any]:
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--peak-tflops", "2.0"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    summary: dict[str, Any] = json.loads(run.stdout.splitlines()[-1])
    return summary


@pytest.mark.slow
def test_quick_run_reports_every_field_consistently(quick: dict[str, Any]) -> None:
    assert [r["precision"] for r in quick["results"]] == ["fp32", "bf16", "fp16"]
    for r in quick["results"]:
        assert set(FIELDS) <= set(r), r
        assert r["status"] == "ok" and r["peak_kind"] == "given" and r["skipped_steps"] == 0
        numbers = [
            v
            for k, v in r.items()
            if k not in ("precision", "status", "peak_kind", "skipped_steps")
        ]
        assert all(isinstance(v, int | float) and v > 0 for v in numbers), r
        # quick: 2 clips x 2 s = 4 s per step, 100 fbank frames per second
        assert r["clips"] == 2 and r["audio_s_per_step"] == 4.0
        assert math.isclose(r["audio_s_per_s"] * r["step_s"], 4.0)
        assert math.isclose(r["frames_per_s"] * r["step_s"], 400.0)
        assert math.isclose(r["mfu"], r["flops_per_step"] / r["step_s"] / 1e12 / 2.0)
        assert math.isclose(r["schedule_wall_h"], 700_000 * r["step_s"] / 0.9 / 3600)
    # autocast changes dtypes, not shapes: every precision counts the same FLOPs
    assert len({r["flops_per_step"] for r in quick["results"]}) == 1


@pytest.mark.slow
def test_flops_are_three_forwards_counted_here(quick: dict[str, Any]) -> None:
    """Backward costs twice the forward for matmuls and convolutions (less the stem's input
    gradient, which is not needed), so forward + backward is ~3x a forward counted here with
    torch's stock counter on the same model and batch."""
    from uts.models.zipformer import Zipformer
    from uts.models.zipformer import preset as zipformer
    from uts.train.config import preset
    from uts.train.model import build_model

    config = preset("smoke", encoder_overrides={"layer_skip": 0.0})
    model = build_model(config)
    batch = {"feats": torch.randn(2, 200, 80), "feat_lens": torch.full((2,), 200),
             "targets": torch.zeros(2, config.k)}  # fmt: skip
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(batch, with_loss=True)
    forward = counter.get_total_flops()
    counted = quick["results"][0]["flops_per_step"]
    assert abs(counted / (3 * forward) - 1) < 0.05, (counted, forward)
    # tokens: the encoder's 25 Hz output, 50 frames per 2-s clip
    r = quick["results"][0]
    assert math.isclose(r["tokens_per_s"] * r["step_s"], 2 * 50)
    assert quick["m_encoder_params"] == sum(
        p.numel() for p in Zipformer(zipformer("m")).parameters()
    )
    assert quick["encoder_params"] == sum(p.numel() for p in model.encoder.parameters())


def test_conv_backward_counts_groups() -> None:
    """Depthwise: forward 2*B*C*T*K; input and weight gradients the same each. Dense (groups=1),
    where torch's own formula is right: equal to it."""
    gpu = load_benchmark()
    b, c, t, k = 3, 64, 100, 31
    depthwise = torch.nn.Conv1d(c, c, k, padding=k // 2, groups=c)
    x = torch.randn(b, c, t, requires_grad=True)
    assert gpu.count_flops(lambda: depthwise(x).sum().backward()) == 3 * 2 * b * c * t * k
    dense = torch.nn.Conv2d(4, 8, 3, stride=(2, 2), padding=1)
    y = torch.randn(2, 4, 20, 16, requires_grad=True)
    with FlopCounterMode(display=False) as stock:
        dense(y).sum().backward()
    assert gpu.count_flops(lambda: dense(y).sum().backward()) == stock.get_total_flops()


def test_peak_table() -> None:
    gpu = load_benchmark()
    assert gpu.peak_tflops("NVIDIA H100 80GB HBM3", "bf16", tf32=False) == (989.4, "half")
    assert gpu.peak_tflops("NVIDIA H100 PCIe", "fp16", tf32=False) == (756.0, "half")
    assert gpu.peak_tflops("Tesla V100-SXM2-16GB", "fp32", tf32=True) == (15.7, "tf32")
    assert gpu.peak_tflops("NVIDIA A100-SXM4-80GB", "fp32", tf32=False) == (19.5, "fp32")
    assert gpu.peak_tflops("NVIDIA A10G", "bf16", tf32=False) == (70.0, "half")
    assert gpu.peak_tflops("NVIDIA L4", "fp32", tf32=True) == (60.0, "tf32")
    assert gpu.peak_tflops("NVIDIA L40S", "bf16", tf32=False) is None  # not the L4
    assert gpu.peak_tflops("cpu (2 threads)", "fp32", tf32=False) is None
