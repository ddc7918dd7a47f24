"""Benchmark: embedding extraction for the probes against the raw batched model forward.

    python benchmarks/evaluate.py [--clips 256] [--encoder xs] [--batch 16]

1. extraction: `uts.probe.encoder.embed` on 16 kHz waves, as jobs/evaluate.py runs it (eval mode,
   clips sorted by length, fbank per batch, encoder forward, masked mean pooling);
2. raw forward: the same encoder on the same batches of fbank already computed (forward only).
Both in this process, same threads, clips of 2-10 s. Prints clips/s of each and their ratio.
Target: >= 0.8.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=256)
    parser.add_argument("--encoder", default="xs", help="Zipformer preset (default xs, the demo's)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3, help="best of N for each")
    args = parser.parse_args()
    from uts.audio.fbank import Fbank
    from uts.models.zipformer import Zipformer, masked_mean, preset
    from uts.probe.encoder import embed

    torch.manual_seed(0)
    encoder = Zipformer(preset(args.encoder)).eval()
    rng = np.random.default_rng(0)
    waves = [(0.1 * rng.standard_normal(int(16000 * s))).astype(np.float32)
             for s in rng.uniform(2.0, 10.0, args.clips)]  # fmt: skip
    order = sorted(range(len(waves)), key=lambda i: len(waves[i]))
    fbank = Fbank()
    batches = [
        fbank([waves[i] for i in order[s : s + args.batch]])
        for s in range(0, len(order), args.batch)
    ]

    def raw() -> None:
        with torch.no_grad():
            for feats, lengths in batches:
                frames, frame_lengths = encoder(feats, lengths)
                masked_mean(frames, frame_lengths)

    def extraction() -> None:
        embed(encoder, waves, batch=args.batch)

    extraction()  # warm-up (allocator, kernels)
    timings = {}
    for name, fn in (("raw", raw), ("extraction", extraction)):
        best = float("inf")
        for _ in range(args.repeats):
            started = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - started)
        timings[name] = args.clips / best
    ratio = timings["extraction"] / timings["raw"]
    seconds = sum(len(w) for w in waves) / 16000
    print(f"embedding extraction, Zipformer {args.encoder}, {args.clips} clips ({seconds:,.0f} audio-s), "
          f"batches of {args.batch}, {torch.get_num_threads()} thread(s), best of {args.repeats}:")  # fmt: skip
    print(f"  extraction (fbank + forward + pooling): {timings['extraction']:,.1f} clips/s")
    print(f"  raw batched forward on ready fbank:     {timings['raw']:,.1f} clips/s")
    print(f"  ratio {ratio:.2f} (target >= 0.8)")
    return 0 if ratio >= 0.8 else 1


if __name__ == "__main__":
    sys.exit(main())
