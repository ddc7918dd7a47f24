"""Benchmark: the paper's training step on one GPU per precision, its MFU, and the schedule's wall time.

    python benchmarks/gpu.py [--seconds-per-gpu 80] [--gpus 8] [--clip-seconds 10] [--precisions fp32,bf16,fp16]
                             [--warmup 3] [--steps 10] [--schedule-steps 700000] [--ddp-efficiency 0.9]
    python benchmarks/gpu.py --device cpu --quick   # the same code on CPU: tiny batch, smoke preset (CI)

One Zipformer-M MTC training step (uts.train.config.preset("m"), uts.train.model.build_model, the
preset's optimiser and schedule, uts.train.train_step) on the per-GPU share of the paper's batch
(640 audio-seconds per step across 8 GPUs: 80 s per GPU, as clips of --clip-seconds), for each
precision: fp32; bf16 autocast (skipped where the device has no bf16); fp16 autocast with a
GradScaler (V100). Per precision: the median step time over --steps after --warmup (the device
synchronised after each step), peak memory, audio-seconds/s, fbank frames/s and encoder frames
(tokens)/s, the FLOPs of one step (torch.utils.flop_counter.FlopCounterMode over the forward and
backward; the optimiser's element-wise work is not counted), MFU against the device's dense peak
for that precision, and the projected wall time of the paper's schedule (--schedule-steps on --gpus
GPUs, each step taking the one-GPU step time divided by --ddp-efficiency). Prints a table, then one
JSON line. Layer skipping is off (--layer-skip), so that the step whose FLOPs are counted is the
step that is timed. Exits 1 if a precision that should run fails.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import fields
from typing import Any

from uts.train.memory import peak_mb, reset_peak

# Dense (no 2:4 sparsity) peak TFLOPS per GPU from NVIDIA's datasheets: "half" = fp16/bf16 tensor
# cores, "tf32" = fp32 matmuls on tensor cores (torch's allow_tf32), "fp32" = plain fp32.
# The first pattern that matches torch.cuda.get_device_name() wins, so variants come first.
PEAK_TFLOPS: list[tuple[str, dict[str, float]]] = [
    (r"V100.*PCIE", {"half": 112.0, "tf32": 14.0, "fp32": 14.0}),  # no TF32 on Volta
    (r"V100", {"half": 125.0, "tf32": 15.7, "fp32": 15.7}),  # SXM2
    (r"A100", {"half": 312.0, "tf32": 156.0, "fp32": 19.5}),
    (r"H100.*PCIe", {"half": 756.0, "tf32": 378.0, "fp32": 51.2}),
    (r"H100", {"half": 989.4, "tf32": 494.7, "fp32": 66.9}),  # SXM
    (r"H200", {"half": 989.4, "tf32": 494.7, "fp32": 66.9}),
    (r"\bL4\b", {"half": 121.0, "tf32": 60.0, "fp32": 30.3}),
    # NVIDIA publishes no A10G sheet (A10: 125/62.5/31.2); the AWS part runs at lower clocks and
    # these are the figures commonly used for it. Override with --peak-tflops when you know better.
    (r"A10G", {"half": 70.0, "tf32": 35.0, "fp32": 31.2}),
]
PRECISIONS = ("fp32", "bf16", "fp16")
FBANK_HZ = 100  # fbank frames per audio second (10 ms shift)


def peak_tflops(device_name: str, precision: str, *, tf32: bool) -> tuple[float, str] | None:
    """(peak TFLOPS, which peak) for a device name and precision, or None for an unknown device."""
    kind = "half" if precision in ("bf16", "fp16") else ("tf32" if tf32 else "fp32")
    for pattern, peaks in PEAK_TFLOPS:
        if re.search(pattern, device_name, flags=re.IGNORECASE):
            return peaks[kind], kind
    return None


def device_name(device: str) -> str:
    import torch

    if device == "cuda":
        return torch.cuda.get_device_name()
    return f"cpu ({torch.get_num_threads()} threads)"


def bf16_supported(device: str) -> bool:
    import torch

    return torch.cuda.is_bf16_supported() if device == "cuda" else True


def sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def make_config(args: argparse.Namespace) -> Any:
    """The pretraining config: preset("m") (or --preset), layer skipping set to --layer-skip where
    the encoder has that field."""
    from uts.models.zipformer import ZipformerConfig
    from uts.train.config import preset

    config = preset(args.preset)
    names = {f.name for f in fields(ZipformerConfig)}
    overrides = dict(config.encoder_overrides)
    if "layer_skip" in names:
        overrides["layer_skip"] = args.layer_skip
    return preset(args.preset, encoder=args.encoder, encoder_overrides=overrides)


def make_batch(config: Any, clips: int, clip_seconds: float, device: str) -> dict[str, Any]:
    """`clips` clips of `clip_seconds` of fbank-like features with random multi-hot MTC targets."""
    import torch

    generator = torch.Generator().manual_seed(0)
    frames = round(clip_seconds * FBANK_HZ)
    feats = torch.randn(clips, frames, 80, generator=generator)  # (B, T, 80)
    targets = (torch.rand(clips, config.k, generator=generator) < 0.01).float()  # (B, K)
    batch = {"feats": feats, "feat_lens": torch.full((clips,), frames), "targets": targets}
    return {k: v.to(device) for k, v in batch.items()}


def encoder_frames(model: Any, batch: dict[str, Any]) -> int:
    """Encoder output frames (the tokens the objective sees) of the whole batch, from one clip."""
    import torch

    with torch.no_grad():
        _, lengths = model.encoder(batch["feats"][:1], batch["feat_lens"][:1])
    return int(lengths[0]) * int(batch["feats"].shape[0])


def step_fn(
    model: Any, batch: dict[str, Any], config: Any, precision: str, device: str
) -> Callable[[], dict[str, float]]:
    """One training step of uts.train.train_step with the preset's optimiser and schedule."""
    import torch

    from uts.train import build_optimizer, train_step

    optimizer, scheduler = build_optimizer(
        model, config.optimizer, lr=config.lr, warmup_steps=config.warmup_steps,
        lr_steps=config.lr_steps, lr_epochs=config.lr_epochs,
    )  # fmt: skip
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    scaler = torch.amp.GradScaler(device) if precision == "fp16" else None

    def step() -> dict[str, float]:
        metrics = train_step(
            model, batch, optimizer, scheduler=scheduler, scaler=scaler, autocast_dtype=dtype
        )
        sync(device)
        return metrics

    return step


def conv_flops(x_shape: Any, w_shape: Any, out_shape: Any, transposed: bool) -> int:
    """2 x multiply-adds of one convolution; w_shape's input channels are per group already."""
    spatial = math.prod((x_shape if transposed else out_shape)[2:])
    return 2 * x_shape[0] * spatial * math.prod(w_shape)


def conv_backward_flops(grad_out_shape: Any, x_shape: Any, w_shape: Any, *args: Any,
                        out_shape: Any = None, **kwargs: Any) -> int:  # fmt: skip
    """aten.convolution_backward: the input gradient and the weight gradient each cost what the
    forward convolution does. torch's own formula (torch/utils/flop_counter.py,
    conv_backward_flop) counts the weight gradient as if groups were 1, which overcounts a
    depthwise convolution (Zipformer's ConvModule) by its channel count."""
    transposed, output_mask = args[4], args[7]
    forward = conv_flops(x_shape, w_shape, grad_out_shape, transposed)
    return forward * (int(bool(output_mask[0])) + int(bool(output_mask[1])))


def count_flops(step: Callable[[], Any]) -> int:
    """FLOPs of one call of `step` (matmuls, convolutions, attention; forward and backward)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    mapping = {torch.ops.aten.convolution_backward: conv_backward_flops}
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        step()
    return int(counter.get_total_flops())


def measure(args: argparse.Namespace, precision: str) -> dict[str, Any]:
    """Build the model fresh, warm up, count one step's FLOPs, time --steps steps."""
    import torch

    from uts.train.model import build_model

    config = make_config(args)
    clips = max(1, round(args.seconds_per_gpu / args.clip_seconds))
    model = build_model(config).to(args.device)
    batch = make_batch(config, clips, args.clip_seconds, args.device)
    tokens = encoder_frames(model, batch)
    step = step_fn(model, batch, config, precision, args.device)
    reset_peak(args.device)
    # The FLOPs are counted on the first step, from the same seed for every precision: the
    # Zipformer's balancers and whitening act on random steps (and whitening's rate follows what
    # it measured), so later steps differ by a few tenths of a percent between runs.
    torch.manual_seed(config.seed)
    flops = count_flops(step)
    for _ in range(args.warmup):
        step()
    times, skipped = [], 0
    for _ in range(args.steps):
        start = time.perf_counter()
        skipped += int(step()["skipped"])
        times.append(time.perf_counter() - start)
    step_s = statistics.median(times)
    audio_s = clips * args.clip_seconds
    tf32 = args.device == "cuda" and torch.backends.cuda.matmul.allow_tf32
    peak = (
        (args.peak_tflops, "given")
        if args.peak_tflops
        else peak_tflops(device_name(args.device), precision, tf32=tf32)
    )
    achieved = flops / step_s / 1e12
    wall_s = args.schedule_steps * step_s / args.ddp_efficiency
    return {
        "precision": precision, "status": "ok", "clips": clips, "audio_s_per_step": audio_s,
        "step_s": step_s, "peak_mb": peak_mb(args.device), "audio_s_per_s": audio_s / step_s,
        "frames_per_s": clips * round(args.clip_seconds * FBANK_HZ) / step_s,
        "tokens_per_s": tokens / step_s, "flops_per_step": flops, "achieved_tflops": achieved,
        "peak_tflops": peak[0] if peak else None, "peak_kind": peak[1] if peak else None,
        "mfu": achieved / peak[0] if peak else None, "skipped_steps": skipped,
        "schedule_wall_h": wall_s / 3600, "schedule_wall_days": wall_s / 86400,
    }  # fmt: skip


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--quick", action="store_true",
                        help="dry run: 2 x 2 s clips, --preset smoke, 1 warm-up + 2 timed steps")  # fmt: skip
    parser.add_argument("--preset", default="m", help="uts.train.config preset (default m)")
    parser.add_argument("--encoder", default=None, help="override the preset's Zipformer preset")
    parser.add_argument("--seconds-per-gpu", type=float, default=80.0,
                        help="audio seconds per step on one GPU (paper: 640 s / 8 GPUs)")  # fmt: skip
    parser.add_argument("--gpus", type=int, default=8, help="GPUs of the projected run")
    parser.add_argument("--clip-seconds", type=float, default=10.0)
    parser.add_argument("--precisions", default=",".join(PRECISIONS))
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--schedule-steps", type=int, default=700_000)
    parser.add_argument("--ddp-efficiency", type=float, default=0.9,
                        help="cluster step time = one-GPU step time / this")  # fmt: skip
    parser.add_argument("--layer-skip", type=float, default=0.0)
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the device's peak for the precisions run (unknown devices)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.quick:
        args.preset = "smoke" if args.preset == "m" else args.preset
        args.seconds_per_gpu, args.clip_seconds = 4.0, 2.0
        args.warmup, args.steps = 1, 2
    unknown = set(args.precisions.split(",")) - set(PRECISIONS)
    if unknown:
        parser.error(
            f"--precisions: unknown {sorted(unknown)}; choose from {', '.join(PRECISIONS)}"
        )
    if not 0 < args.ddp_efficiency <= 1:
        parser.error(f"--ddp-efficiency must be in (0, 1], got {args.ddp_efficiency}")
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be >= 1 and --warmup >= 0")
    return args


def parameter_counts(args: argparse.Namespace) -> dict[str, int]:
    """Encoder and whole-model (encoder + MTC head) parameters of the benchmarked config, and the
    encoder of preset("m") (issue 21 asks for ~65.9M)."""
    from uts.models.zipformer import Zipformer, preset
    from uts.train.model import build_model

    model = build_model(make_config(args))
    return {
        "encoder_params": sum(p.numel() for p in model.encoder.parameters()),
        "model_params": sum(p.numel() for p in model.parameters()),
        "m_encoder_params": sum(p.numel() for p in Zipformer(preset("m")).parameters()),
    }


def table(rows: list[dict[str, Any]]) -> str:
    head = ("precision", "step", "peak mem", "audio-s/s", "frames/s", "tokens/s", "TFLOP/step",
            "TFLOP/s", "MFU", "schedule")  # fmt: skip
    lines = [" | ".join(head)]
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"{r['precision']} | {r['status']}: {r.get('reason', '')}")
            continue
        mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "unknown"
        lines.append(" | ".join((
            r["precision"], f"{r['step_s']:.3f} s", f"{r['peak_mb']:,.0f} MB", f"{r['audio_s_per_s']:,.1f}",
            f"{r['frames_per_s']:,.0f}", f"{r['tokens_per_s']:,.0f}", f"{r['flops_per_step'] / 1e12:.3f}",
            f"{r['achieved_tflops']:.2f}", mfu, f"{r['schedule_wall_days']:,.1f} d",
        )))  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print(
            "no CUDA device: run with --device cpu (add --quick for the dry run)", file=sys.stderr
        )
        return 2
    name = device_name(args.device)
    counts = parameter_counts(args)
    config = make_config(args)
    print(f"device {name}; preset {args.preset} (Zipformer {config.encoder}, "
          f"{counts['encoder_params'] / 1e6:.2f}M encoder / {counts['model_params'] / 1e6:.2f}M with the "
          f"MTC head, K={config.k}); Zipformer-M encoder {counts['m_encoder_params'] / 1e6:.2f}M parameters")  # fmt: skip
    print(f"{args.seconds_per_gpu:g} audio-s per GPU per step ({args.seconds_per_gpu * args.gpus:g} s across "
          f"{args.gpus} GPUs) as {args.clip_seconds:g}-s clips; median of {args.steps} after {args.warmup} "
          f"warm-up; schedule {args.schedule_steps:,} steps at DDP efficiency {args.ddp_efficiency:g}")  # fmt: skip
    rows: list[dict[str, Any]] = []
    for precision in args.precisions.split(","):
        if precision == "bf16" and not bf16_supported(args.device):
            rows.append(
                {"precision": precision, "status": "skipped", "reason": "no bf16 on this device"}
            )
            continue
        try:
            rows.append(measure(args, precision))
        except Exception as error:  # report it, then the next precision
            rows.append({"precision": precision, "status": "failed",
                         "reason": f"{type(error).__name__}: {error}"})  # fmt: skip
        print(f"  {precision}: {rows[-1]['status']}", file=sys.stderr)
    print(table(rows))
    if any(r["status"] == "ok" and r["mfu"] is None for r in rows):
        print(f"MFU unknown: no peak FLOPs for {name!r} (known: V100, A100, H100, H200, L4, A10G; "
              "or pass --peak-tflops)")  # fmt: skip
    summary = {"device": name, "preset": args.preset, "encoder": config.encoder, **counts,
               "seconds_per_gpu": args.seconds_per_gpu, "gpus": args.gpus,
               "schedule_steps": args.schedule_steps, "ddp_efficiency": args.ddp_efficiency,
               "results": rows}  # fmt: skip
    print(json.dumps(summary))
    return 1 if any(r["status"] == "failed" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
