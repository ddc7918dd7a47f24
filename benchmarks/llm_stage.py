"""Benchmark: the tagging stage's model-free path (rules tagger), rows per second.

    python benchmarks/llm_stage.py [--rows 20000]

Times `rules_tags` over realistic descriptions (~60-word captions built from a sound vocabulary),
first on one core, then as the tag stage (`rules_tags_table` on shards in Ray tasks, one per core)
including parquet I/O. Target: >= 2,000 descriptions/s on 2 cores. (The LLM backends' throughput
against a scripted server's ceiling is measured here once those backends land.)
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

NOUNS = "dog bark rain thunder engine car bird chirp piano melody guitar drum crowd cheer wind door voice bass hi hat".split()
FILLER = "a the over and with while in of at distant close soft loudly heavy bright reverberant dry room".split()


def description(rng: random.Random) -> str:
    return " ".join(rng.choice(NOUNS if rng.random() < 0.4 else FILLER) for _ in range(60)) + "."


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    args = parser.parse_args()
    from cluster.parallel import ray_mapper
    from cluster.runtime import ensure_ray
    from uts.llm import rules_tags
    from uts.llm.backends import CAPTION_SCHEMA, rules_tags_table
    from uts.llm.stage import part_name, run_stage, write_part

    rng = random.Random(0)
    texts = [description(rng) for _ in range(args.rows)]
    start = time.perf_counter()
    for text in texts:
        rules_tags(text)
    single = args.rows / (time.perf_counter() - start)
    print(f"rules tagger, one core: {single:,.0f} descriptions/s")

    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        per_shard = 1000
        sources = []
        for i in range(0, args.rows, per_shard):
            rows = [{"clip_id": f"c{j}", "description": texts[j], "status": "ok", "error": None, "raw": "",
                     "text_kind": "caption", "domain": "environment"} for j in range(i, min(i + per_shard, args.rows))]  # fmt: skip
            path = str(Path(tmp) / "captions" / part_name(i // per_shard))
            write_part(pa.Table.from_pylist(rows, schema=CAPTION_SCHEMA), path)
            sources.append(path)
        ensure_ray()
        warm = str(Path(tmp) / "warm")
        run_stage(sources[:cores], warm, rules_tags_table, columns=None, mapper=ray_mapper, meta={})
        start = time.perf_counter()
        run_stage(
            sources,
            str(Path(tmp) / "tags"),
            rules_tags_table,
            columns=None,
            mapper=ray_mapper,
            meta={},
        )
        stage = args.rows / (time.perf_counter() - start)
    print(
        f"tag stage (rules, Ray tasks, {cores} cores, with parquet I/O): {stage:,.0f} descriptions/s (target >= 2,000)"
    )
    return 0 if stage >= 2000 else 1


if __name__ == "__main__":
    sys.exit(main())
