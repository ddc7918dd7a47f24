"""Benchmark: the acoustic captioner's speed on one core, as a multiple of real time.

    python benchmarks/acoustic.py [--shards STORE/corpora/demo/shards] [--limit 0]

Decodes, measures and describes every pretraining clip of a corpus's shards (the demo corpus when
given; otherwise 200 synthetic clips of 1-10 s: tones, noise, burst trains) in one process with
BLAS/FFT threads pinned to 1, and prints clips/s and audio seconds per wall second. Target: >= 50x
real time per core.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # one core: set before numpy loads its libraries

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

TARGET = 50.0


def synthetic_shard(clips: int) -> pa.Table:
    from uts.audio import SAMPLE_RATE, encode_flac

    rng = np.random.default_rng(0)
    rows = []
    for i in range(clips):
        seconds = float(rng.uniform(1.0, 10.0))
        t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
        kind = i % 3
        if kind == 0:
            wave = np.sin(2 * np.pi * rng.uniform(80, 2000) * t) * np.exp(-t * rng.uniform(0.2, 3))
        elif kind == 1:
            wave = rng.standard_normal(t.size) * (0.2 + 0.8 * (t % 0.5 < 0.05))
        else:
            wave = rng.standard_normal(t.size) * np.exp(-8 * (t % 0.4))
        wave = 0.9 * wave / np.abs(wave).max()
        rows.append({"clip_id": f"s{i:04d}", "audio": encode_flac(wave.astype(np.float32)),
                     "text": "", "text_kind": "none", "domain": "unknown", "partition": "pretrain"})  # fmt: skip
    return pa.Table.from_pylist(rows)


def load_shards(folder: str, limit: int) -> pa.Table:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from uts.data import list_shards
    from uts.llm.acoustic import ACOUSTIC_COLUMNS

    table = pa.concat_tables(pq.read_table(path, columns=list(ACOUSTIC_COLUMNS)) for path in list_shards(folder))  # fmt: skip
    table = table.filter(pc.equal(table.column("partition"), "pretrain"))
    return table.slice(0, limit) if limit else table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", default=None, help="a corpus folder (…/corpora/<name>); default: synthetic clips")  # fmt: skip
    parser.add_argument("--limit", type=int, default=0, help="clips to time (0: all)")
    args = parser.parse_args()

    from uts.audio import SAMPLE_RATE, decode_flac
    from uts.llm.acoustic import acoustic_captions

    shard = (
        load_shards(args.shards, args.limit) if args.shards else synthetic_shard(args.limit or 200)
    )
    audio_s = sum(decode_flac(b).size for b in shard.column("audio").to_pylist()) / SAMPLE_RATE
    acoustic_captions(shard.slice(0, 5))  # warm-up: imports and first FFT plans
    start = time.perf_counter()
    captions = acoustic_captions(shard)
    wall = time.perf_counter() - start
    failed = captions.num_rows - captions.column("status").to_pylist().count("ok")
    realtime = audio_s / wall
    source = args.shards or "synthetic clips"
    print(
        f"input: {captions.num_rows} clips, {audio_s:,.0f} s of audio ({source}); {failed} failed"
    )
    print(f"one process, 1 thread: {captions.num_rows / wall:,.1f} clips/s, {wall:.1f} s wall")
    print(f"acoustic captioner: {realtime:,.0f}x real time per core (target >= {TARGET:.0f}x)")
    return 0 if realtime >= TARGET and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
