"""Benchmark: parallel ingest (Ray tasks) against a single-process loop, and fbank throughput.

    python benchmarks/ingest.py [--files 400] [--seconds 5]

Generates a folder of real-format audio (OGG Vorbis and FLAC at 44.1 kHz stereo, WAV at 22.05 kHz:
every file needs decoding, mixing and resampling), ingests the same items both ways and prints
clips/s and the speed-up, after checking both wrote the same clips. Then times the fbank extractor
on one thread. Targets: speed-up >= 1.7x on 2 cores; fbank >= 100x real time per core.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import soundfile as sf
import torch

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


def make_folder(root: Path, files: int, seconds: float) -> None:
    rng = np.random.default_rng(0)
    formats = (("ogg", 44100, 2), ("flac", 44100, 2), ("wav", 22050, 1))
    for i in range(files):
        ext, rate, channels = formats[i % len(formats)]
        t = np.arange(int(seconds * rate)) / rate
        tone = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 2000) * t) + 0.02 * rng.standard_normal(
            t.size
        )
        sf.write(root / f"clip{i:05d}.{ext}", np.stack([tone] * channels, axis=1), rate)


def timed_ingest(items: list, folder: Path, mapper: object) -> float:
    from uts.audio import ClipPolicy
    from uts.ingest import run_ingest

    start = time.perf_counter()
    run_ingest(items, folder, policy=ClipPolicy(), mapper=mapper, progress=False)  # type: ignore[arg-type]
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()

    from cluster.parallel import ray_mapper
    from cluster.runtime import ensure_ray
    from uts.audio.fbank import Fbank
    from uts.ingest import folder_items, local_mapper

    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "audio"
        root.mkdir()
        make_folder(root, args.files, args.seconds)
        items, _, _ = folder_items(str(root))
        ray = ensure_ray()
        # Start every worker and let it import the library before timing (a cluster pays this once).
        workers = int(ray.cluster_resources()["CPU"])
        timed_ingest(items[: 50 * workers], Path(tmp) / "warm", ray_mapper)
        serial = timed_ingest(items, Path(tmp) / "serial", local_mapper)
        parallel = timed_ingest(items, Path(tmp) / "parallel", ray_mapper)
        same = pq.read_table(Path(tmp) / "serial" / "shards").equals(
            pq.read_table(Path(tmp) / "parallel" / "shards")
        )
        assert same, "parallel and serial ingest wrote different shards"
        ray.shutdown()
    speedup = serial / parallel
    print(
        f"input: {args.files} files x {args.seconds:g} s (ogg/flac 44.1 kHz stereo, wav 22.05 kHz), {cores} cores"
    )
    print(f"single process: {args.files / serial:7.1f} clips/s ({serial:.1f} s)")
    print(f"Ray tasks:      {args.files / parallel:7.1f} clips/s ({parallel:.1f} s)")
    print(f"same shards: yes; parallel speed-up {speedup:.2f}x (target >= 1.7x on 2 cores)")

    torch.set_num_threads(1)
    fbank = Fbank()
    waves = [
        np.random.default_rng(i).standard_normal(16000 * 10).astype(np.float32) * 0.1
        for i in range(16)
    ]
    fbank(waves[:2])
    start = time.perf_counter()
    _, lengths = fbank(waves)
    elapsed = time.perf_counter() - start
    frames = int(lengths.sum())
    realtime = frames / 100 / elapsed
    print(
        f"fbank, 1 thread: {frames / elapsed:,.0f} frames/s = {realtime:,.0f}x real time (target >= 100x)"
    )
    return 0 if speedup >= 1.7 and realtime >= 100 else 1


if __name__ == "__main__":
    sys.exit(main())
