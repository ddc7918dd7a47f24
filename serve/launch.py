"""The embedding endpoint as a foreground process (what `python jobs/serve.py` runs): flags, Serve
started on a host and port, the application deployed, serving until Ctrl-C, SIGTERM or `stop`,
then a clean shutdown."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

DESCRIPTION = (
    "Serve a trained encoder over HTTP with Ray Serve (OpenAI-shaped /v1/embeddings, /v1/tags)."
)

APP = "uts-encoder"  # the Serve application's name


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be 1 to 65535, got {port}")
    return port


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    from serve.options import LIMITS
    from serve.parsing import ServeSettings

    parser = argparse.ArgumentParser(prog="serve.py", description=DESCRIPTION)
    parser.add_argument("--store", default="./uts-store", help="store root (default ./uts-store); "
                        "requests may name audio files under it")  # fmt: skip
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--run", help="a run under <store>/runs: its latest checkpoint")
    what.add_argument("--checkpoint", help="a checkpoint folder URI")
    parser.add_argument("--host", default="127.0.0.1",
                        help="HTTP address (default 127.0.0.1; 0.0.0.0 to listen on every interface)")  # fmt: skip
    parser.add_argument("--port", type=_port, default=8000, help="HTTP port (default 8000)")
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument("--replicas", type=int, default=None, help="fixed replica count (default 1)")
    scale.add_argument("--autoscale", metavar="MIN,MAX", default=None,
                       help="autoscale between MIN and MAX replicas")  # fmt: skip
    parser.add_argument("--target-ongoing-requests", type=float, default=None,
                        help="autoscaling target per replica (default: --max-batch)")  # fmt: skip
    parser.add_argument("--num-gpus", type=int, choices=(0, 1), default=0, help="GPUs per replica")
    parser.add_argument("--num-cpus", type=float, default=1.0,
                        help="CPUs per replica, also its torch threads (default 1)")  # fmt: skip
    parser.add_argument("--max-batch", type=int, default=32,
                        help="largest batch of clips per encoder call (default 32)")  # fmt: skip
    parser.add_argument("--batch-wait-ms", type=float, default=25.0,
                        help="longest wait for a batch to fill (default 25 ms)")  # fmt: skip
    parser.add_argument("--token-file", default=None,
                        help="require `Authorization: Bearer <the file's content>` on /v1/*")  # fmt: skip
    parser.add_argument("--model", default=None,
                        help="the model name clients send (default: the run's name)")  # fmt: skip
    defaults = ServeSettings()
    limits = parser.add_argument_group("limits (400 or 413 past them)")
    for name in LIMITS:
        default = getattr(defaults, name)
        limits.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=None,
                            metavar=type(default).__name__.upper(), help=f"default {default}")  # fmt: skip
    return parser.parse_args(argv)


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """In the main thread, SIGINT (Ctrl-C) and SIGTERM (`ray job stop`) set `stop` instead of
    killing the process, so Serve is always shut down; elsewhere (tests) only `stop` ends it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(*_: Any) -> None:
        if stop.is_set():  # a second Ctrl-C interrupts a start-up that hangs
            raise KeyboardInterrupt
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: Sequence[str] | None = None, *, stop: threading.Event | None = None) -> int:
    """Run the endpoint until Ctrl-C, SIGTERM or `stop` (tests set it)."""
    from serve.options import OptionsError, options_from_args

    args = parse_args(argv)
    values: dict[str, Any] = {k: v for k, v in vars(args).items() if k not in ("host", "port")}
    try:
        options = options_from_args(values)
    except OptionsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from cluster.runtime import ensure_ray
    from serve.deployment import build_deployment

    stop = stop or threading.Event()
    ensure_ray()  # ray.init sets a SIGTERM handler of its own: ours replace it just below
    with stop_on_signals(stop):  # a signal while Serve starts stops right after
        from ray import serve as ray_serve

        ray_serve.start(http_options={"host": args.host, "port": args.port})
        try:
            try:
                handle = ray_serve.run(build_deployment(options), name=APP, route_prefix="/")
                info = handle.describe.remote().result()
            except Exception as exc:  # the replicas failed to start (RuntimeError from Serve)
                print(f"error: the deployment failed: {exc}\n(replica logs: the Ray session's "
                      "logs/serve/ folder)", file=sys.stderr)  # fmt: skip
                return 1
            scaling = (f"autoscaling {options.autoscale[0]}-{options.autoscale[1]} replicas"
                       if options.autoscale else f"{options.replicas} replica(s)")  # fmt: skip
            print(f"serving {info['model']} ({info['objective']}) at http://{args.host}:{args.port}/v1 "
                  f"(health: /healthz)\n  embedding space {info['embedding_space']}\n  checkpoint "
                  f"{info['checkpoint']}\n  {scaling}, {info['device']}, batches of up to "
                  f"{options.max_batch} clips, auth {'on' if options.settings.token else 'off'}; "
                  "Ctrl-C to stop", flush=True)  # fmt: skip
            while not stop.wait(0.5):
                pass
        finally:
            stop_serving(ray_serve)
    return 0


def stop_serving(ray_serve: Any) -> None:
    """Delete this application, then shut Serve down unless other applications run on the cluster
    (a `ray job submit` to a shared cluster must not take them down)."""
    ray_serve.delete(APP)
    others = sorted(ray_serve.status().applications)
    if others:
        print(f"stopped: {APP} deleted; Serve keeps running {others}", file=sys.stderr)
        return
    ray_serve.shutdown()
    print("stopped: Serve shut down", file=sys.stderr)
