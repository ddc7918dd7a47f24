"""Serve a trained encoder over HTTP with Ray Serve (OpenAI-shaped /v1/embeddings, /v1/tags).

    python jobs/serve.py --run demo-mtc-k300                      # http://127.0.0.1:8000/v1
    python jobs/serve.py --checkpoint ./uts-store/runs/r/checkpoint_X --port 8080 --token-file tok
    ray job submit -- python jobs/serve.py --store s3://bucket/uts --run mt-1500 --host 0.0.0.0 \\
        --autoscale 1,4 --num-gpus 1 --token-file /etc/uts/token

Loads the checkpoint (a run's latest) in each replica, starts Serve's HTTP proxy on --host:--port,
prints the URL, the model id and its embedding space, and serves until Ctrl-C or SIGTERM (`ray job
stop`); then it deletes the application and shuts Serve down, unless other Serve applications run
on the cluster. For a long-lived service, `serve deploy serve/config.yaml` deploys the same app.
Exit codes: 0 stopped cleanly, 1 the deployment failed, 2 bad arguments or inputs (reported
before Ray starts).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence

# serve.* is imported inside main: run as a script, this file must first take jobs/ off sys.path
# (see the end), or `serve` would be this file rather than the serve/ package.


def main(argv: Sequence[str] | None = None, *, stop: threading.Event | None = None) -> int:
    """Run the endpoint until Ctrl-C, SIGTERM or `stop` (tests set it)."""
    from serve.launch import main as launch

    return launch(argv, stop=stop)


if __name__ == "__main__":
    # `python jobs/serve.py` puts jobs/ first on sys.path, where this file would shadow the serve/
    # package (in this process and, through Ray's driver path, in the replicas): drop it.
    from pathlib import Path

    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    sys.exit(main())
