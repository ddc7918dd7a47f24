"""Benchmark: our Zipformer against transformers' AST (random init) at equal parameter counts.

    python benchmarks/encoder.py [--presets s,m] [--batch 8] [--seconds 10] [--steps 2] [--device cpu|cuda] [--fp16]

For each preset, a training step (forward, pooled-output loss, backward, AdamW step) on the same
batch of fbank features, both models in fresh child processes (so peak memory is each one's own),
same threads, neither with dropout or layer skipping (AST's defaults have none). Prints audio-seconds per second, peak memory and the Zipformer/AST ratios.
Target: Zipformer >= 2x AST's throughput at equal parameters, with lower peak memory.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

from uts.train.memory import peak_mb

AST_SIZES = {"s": (384, 6, 1536), "m": (672, 12, 2688)}  # hidden, heads, intermediate (12 layers)


def build(kind: str, preset_name: str, frames: int) -> Any:
    import torch

    if kind == "zipformer":
        from uts.models.zipformer import Zipformer, preset

        # No dropout and no layer skipping: AST's default config has neither, so both models do
        # the same work per step.
        model = Zipformer(preset(preset_name, dropout=0.0, layer_skip=0.0))

        def pooled(feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
            return model.embed(feats, lengths)

        return model, pooled
    from transformers import ASTConfig, ASTModel

    hidden, heads, intermediate = AST_SIZES[preset_name]
    config = ASTConfig(hidden_size=hidden, num_attention_heads=heads, intermediate_size=intermediate,
                       num_mel_bins=80, max_length=frames)  # fmt: skip
    model = ASTModel(config)

    def pooled(feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return model(input_values=feats).pooler_output

    return model, pooled


def child(
    kind: str, preset_name: str, batch: int, seconds: float, steps: int, device: str, fp16: bool
) -> dict[str, Any]:
    import torch

    torch.manual_seed(0)
    frames = int(seconds * 100)
    model, pooled = build(kind, preset_name, frames)
    model.to(device).train()
    params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler(enabled=fp16)
    feats = torch.randn(batch, frames, 80, device=device)
    lengths = torch.full((batch,), frames, device=device)

    def step() -> None:
        with torch.autocast(device, dtype=torch.float16, enabled=fp16):
            loss = pooled(feats, lengths).float().pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        if device == "cuda":
            torch.cuda.synchronize()

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    elapsed = (time.perf_counter() - start) / steps
    return {
        "params": params,
        "step_s": elapsed,
        "audio_s_per_s": batch * seconds / elapsed,
        "peak_mb": peak_mb(device),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="s,m")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--fp16", action="store_true")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, preset_name = args.child
        print(
            json.dumps(
                child(
                    kind, preset_name, args.batch, args.seconds, args.steps, args.device, args.fp16
                )
            )
        )
        return 0
    import torch

    print(f"batch {args.batch} x {args.seconds:g} s, device {args.device}, threads {torch.get_num_threads()}"
          f"{', fp16' if args.fp16 else ''}")  # fmt: skip
    ok = True
    for preset_name in args.presets.split(","):
        results = {}
        for kind in ("zipformer", "ast"):
            command = [sys.executable, __file__, "--child", kind, preset_name, "--batch", str(args.batch),
                       "--seconds", str(args.seconds), "--steps", str(args.steps), "--device", args.device]  # fmt: skip
            if args.fp16:
                command.append("--fp16")
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            results[kind] = json.loads(out.splitlines()[-1])
            r = results[kind]
            print(f"{preset_name} {kind:<9} {r['params'] / 1e6:6.1f}M params  {r['step_s']:6.2f} s/step  "
                  f"{r['audio_s_per_s']:7.1f} audio-s/s  peak {r['peak_mb']:8.0f} MB")  # fmt: skip
        speed = results["zipformer"]["audio_s_per_s"] / results["ast"]["audio_s_per_s"]
        memory = results["zipformer"]["peak_mb"] / results["ast"]["peak_mb"]
        print(
            f"{preset_name}: Zipformer/AST throughput {speed:.2f}x (target >= 2x), peak memory {memory:.2f}x (target < 1)"
        )
        ok = ok and speed >= 2 and memory < 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
