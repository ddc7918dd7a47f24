"""Evaluate encoders on probe tasks and compare them (the paper's main table).

    python jobs/evaluate.py --run demo-mtc-k300                     # latest checkpoint of a run
    python jobs/evaluate.py --checkpoint ./uts-store/runs/r/checkpoint_X --protocol knn
    python jobs/evaluate.py --baseline logmel                       # or random-init (--preset / --run)
    python jobs/evaluate.py --compare demo-mtc-k300 logmel          # a table from stored results
    ray job submit -- python jobs/evaluate.py --store s3://bucket/uts --run mt-1500 --engine ray

Embeddings are extracted once per (encoder, task) with the encoder in eval mode and cached under
<store>/embeddings/; results go to <store>/evals/<name>/<protocol>/ (<task>.json, summary.json,
report.md, bars.png, pca.png). A checkpoint is evaluated beside the log-mel baseline and the
random-init encoder of its architecture, under the same protocol. A task whose clips were in the
run's pretraining data is refused. `--layers all` probes the concatenated means of the stem, every
stack and the output instead of the output alone (results under <protocol>-all-layers/); `--layers
stem|stack1..stack6` probes one depth (<protocol>-<depth>/). Exit codes:
0 done, 1 a task failed, 2 bad arguments or inputs.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from stages import evaluate
from stages.cli import run_job


def main(argv: Sequence[str] | None = None) -> int:
    return run_job(evaluate, argv, "evaluate.py")


if __name__ == "__main__":
    sys.exit(main())
