"""Benchmark: the Serve endpoint under concurrent load against the raw batched model forward.

    python benchmarks/serve.py [--run demo-mtc-k300 | --checkpoint URI] [--seconds 20] \\
        [--clients 1,8,32] [--max-batch 32] [--num-cpus N]

1. raw: `Embedder.embed` on batches of --max-batch 10-s clips in this process, with the replica's
   torch threads (fbank + encoder + pooling; no HTTP, no decoding, no waiting for a batch to fill),
   measured before and after the load runs, averaged;
2. served: the app jobs/serve.py deploys (one replica with --num-cpus CPUs, dynamic batching) on
   127.0.0.1; C concurrent clients (asyncio, httpx, one connection each) send one 10-s clip per
   request (16-bit WAV as a base64 data URI, answers in base64 as the openai client asks) back to
   back for --seconds at each C.
Without --run/--checkpoint a random-init checkpoint of the demo preset (Zipformer xs, mtc, K 300)
is made in a temporary store. Prints a markdown table: requests/s, p50/p95/p99 latency, errors,
the served/raw clips/s ratio and the mean batch the replica ran. Clients, proxy and replica share
this machine's cores, as in a single-host deployment. Target: ratio >= 0.8 at C = 32, zero errors,
p99 < 3x median (exit 1 otherwise).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
CLIP_S = 10.0


def make_checkpoint(root: Path) -> tuple[str, str]:
    """(store, checkpoint) of a random-init demo-preset mtc model with a vocabulary."""
    from uts.store import Store
    from uts.testing.checkpoint import publish_vocab, save_checkpoint
    from uts.train.config import preset

    config = preset("demo", seed=0)
    store = Store(str(root / "store"))
    fp = publish_vocab(store, "bench", tuple(f"tag{i:04d}" for i in range(config.k)))
    return store.root_uri, str(save_checkpoint(store, "bench-demo", config, "bench", fp, step=1))


def clips(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(int(CLIP_S * 16_000)) / 16_000
    return [(0.2 * np.sin(2 * np.pi * rng.uniform(100, 2000) * t)
             + 0.05 * rng.standard_normal(len(t))).astype(np.float32) for _ in range(count)]  # fmt: skip


def raw_rate(checkpoint: str, store: str, batch: int, threads: int, seconds: float) -> float:
    """Clips/s of Embedder.embed on batches of `batch` 10-s clips (mean over >= 3 batches and
    `seconds`), after one warm-up batch."""
    import torch

    from uts.embed import Embedder
    from uts.store import Store

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        embedder = Embedder.from_checkpoint(checkpoint, Store(store), batch=batch)
        waves = clips(batch, seed=1)
        embedder.embed(waves)
        done, started = 0, time.perf_counter()
        while done < 3 * batch or time.perf_counter() - started < seconds:
            embedder.embed(waves)
            done += batch
        return done / (time.perf_counter() - started)
    finally:
        torch.set_num_threads(previous)


def request_bodies(model: str, count: int = 8) -> list[bytes]:
    import soundfile as sf

    bodies = []
    for wave in clips(count, seed=2):
        buffer = io.BytesIO()
        sf.write(buffer, wave, 16_000, format="WAV", subtype="PCM_16")
        uri = "data:audio/wav;base64," + base64.b64encode(buffer.getvalue()).decode()
        bodies.append(
            json.dumps({"model": model, "input": [uri], "encoding_format": "base64"}).encode()
        )
    return bodies


async def load(url: str, bodies: list[bytes], clients: int, seconds: float) -> dict[str, Any]:
    """`clients` concurrent loops posting bodies back to back for `seconds`."""
    import httpx

    latencies: list[float] = []
    errors: list[str] = []
    headers = {"content-type": "application/json"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def one(worker: int, deadline: float) -> None:
            n = worker
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                try:
                    response = await client.post("/v1/embeddings", content=bodies[n % len(bodies)],
                                                 headers=headers)  # fmt: skip
                    ok = response.status_code == 200 and len(response.json()["data"]) == 1
                except (httpx.HTTPError, ValueError) as exc:
                    errors.append(repr(exc))
                    continue
                if ok:
                    latencies.append(time.perf_counter() - sent)
                else:
                    errors.append(f"{response.status_code} {response.text[:200]}")
                n += clients

        await asyncio.gather(*(one(w, time.perf_counter() + 3.0) for w in range(clients)))  # warm
        latencies.clear()
        errors.clear()
        started = time.perf_counter()
        await asyncio.gather(*(one(w, started + seconds) for w in range(clients)))
        wall = time.perf_counter() - started
    return {"ok": len(latencies), "errors": errors, "wall": wall, "latencies": sorted(latencies)}


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def health(url: str) -> dict[str, Any]:
    import httpx

    body: dict[str, Any] = httpx.get(f"{url}/healthz", timeout=30).json()
    return body


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="./uts-store", help="with --run (default ./uts-store)")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--run", help="a run's latest checkpoint")
    what.add_argument("--checkpoint", help="a checkpoint folder")
    parser.add_argument("--clients", default="1,8,32", help="concurrency levels (default 1,8,32)")
    parser.add_argument("--seconds", type=float, default=20.0, help="load per level (default 20)")
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--batch-wait-ms", type=float, default=25.0)
    parser.add_argument("--num-cpus", type=float, default=1.0,
                        help="the replica's CPUs = torch threads, also for the raw forward (default 1)")  # fmt: skip
    args = parser.parse_args()
    levels = [int(c) for c in args.clients.split(",")]
    threads = max(1, round(args.num_cpus))
    with tempfile.TemporaryDirectory() as tmp:
        if args.run or args.checkpoint:
            from serve.options import options_from_args

            found = options_from_args({"store": args.store, "run": args.run,
                                       "checkpoint": args.checkpoint})  # fmt: skip
            store, checkpoint = str(found.settings.store), found.checkpoint
        else:
            store, checkpoint = make_checkpoint(Path(tmp))
        before = raw_rate(checkpoint, store, args.max_batch, threads, seconds=10.0)
        print(f"raw batched forward: {before:,.2f} clips/s", file=sys.stderr)
        results, batches = run_served(args, store, checkpoint, levels)
        after = raw_rate(checkpoint, store, args.max_batch, threads, seconds=10.0)
        print(f"raw batched forward (after): {after:,.2f} clips/s", file=sys.stderr)
    raw = (before + after) / 2
    print(f"\nServe endpoint, checkpoint {checkpoint}: one replica, {args.num_cpus:g} CPU(s) = "
          f"{threads} torch thread(s), max batch {args.max_batch}, wait {args.batch_wait_ms:g} ms; "
          f"{CLIP_S:g}-s clips, one per request; {args.seconds:g} s per level; "
          f"{os.cpu_count()} cores shared by clients, proxy and replica.\n"
          f"Raw batched forward (Embedder.embed, batches of {args.max_batch}, same threads): "
          f"{raw:,.2f} clips/s ({before:,.2f} before, {after:,.2f} after the load).\n")  # fmt: skip
    print("| clients | requests/s | p50 | p95 | p99 | errors | served/raw | mean batch |")
    print("|---|---|---|---|---|---|---|---|")
    met = True
    for c, result in zip(levels, results, strict=True):
        lat = result["latencies"]
        rate = result["ok"] / result["wall"]
        p50, p95, p99 = (percentile(lat, q) for q in (50, 95, 99))
        ratio = rate / raw
        print(f"| {c} | {rate:,.2f} | {p50:.2f} s | {p95:.2f} s | {p99:.2f} s | "
              f"{len(result['errors'])} | {ratio:.2f} | {batches[c]:.1f} |")  # fmt: skip
        met &= not result["errors"] and p99 < 3 * p50
        if c == max(levels):
            met &= ratio >= 0.8
        for error in result["errors"][:3]:
            print(f"    error: {error}", file=sys.stderr)
    print(f"\nTarget: served/raw >= 0.8 at C = {max(levels)}, zero errors, p99 < 3x median: "
          f"{'met' if met else 'NOT met'}.")  # fmt: skip
    return 0 if met else 1


def run_served(
    args: argparse.Namespace, store: str, checkpoint: str, levels: list[int]
) -> tuple[list[dict[str, Any]], dict[int, float]]:
    """The load runs against a fresh Serve app; returns the results and the mean batch per level."""
    from cluster.runtime import ensure_ray
    from serve.deployment import build_deployment
    from serve.options import options_from_args

    options = options_from_args({"store": store, "checkpoint": checkpoint, "max_batch": args.max_batch,
                                 "batch_wait_ms": args.batch_wait_ms, "num_cpus": args.num_cpus})  # fmt: skip
    ensure_ray(num_cpus=max(os.cpu_count() or 1, round(args.num_cpus)))
    from ray import serve as ray_serve

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    ray_serve.start(http_options={"host": "127.0.0.1", "port": port})
    results, batches = [], {}
    try:
        started = time.perf_counter()
        handle = ray_serve.run(build_deployment(options), name="uts-bench", route_prefix="/")
        model = handle.describe.remote().result()["model"]
        print(f"Serve up in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        bodies = request_bodies(model)
        for c in levels:
            first = health(url)
            result = asyncio.run(load(url, bodies, c, args.seconds))
            last = health(url)
            # includes the 3-s warm-up: the replica's batches over the whole level
            batches[c] = (last["clips"] - first["clips"]) / max(
                last["batches"] - first["batches"], 1
            )
            rate = result["ok"] / result["wall"]
            print(f"C={c}: {rate:,.2f} requests/s, {len(result['errors'])} errors", file=sys.stderr)
            results.append(result)
    finally:
        ray_serve.shutdown()
    return results, batches


if __name__ == "__main__":
    # `python benchmarks/serve.py` puts benchmarks/ first on sys.path, where this file would shadow
    # the serve/ package (here and, through Ray's driver path, in the replica): drop it.
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    sys.exit(main())
