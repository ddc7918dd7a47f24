"""Sweep the vocabulary size K and the multitask weight lambda with Optuna (the paper's ablation).

    python jobs/sweep.py --study k-demo --objective mtc --k 100,200,300 --segments 2
    ray job submit -- python jobs/sweep.py --store s3://bucket/uts --study mt-m --objective multitask \\
        --corpus big --vocab big --k 800,1000,1500,2000,3000 --lam-range 0.1,10 --lam-log \\
        --sampler tpe --trials 30 --parallel 4 --preset m --storage postgresql://user@db/optuna

Each trial trains one named run `<study>-t<number>` with jobs/pretrain.py (in this process, in
segments that each end, so the pruner can stop a trial between them with nothing left running),
probes it on the task folders after every segment, and reports the mean probe score (or one score
per domain: a multi-objective study with a Pareto front). Every trial reads the same corpus, tags
and vocabulary (one vocabulary built at the largest K serves every K as a prefix). The study lives
in an Optuna journal under <store>/sweeps/<study>/ (or --storage URL); rerunning the same command
continues it: finished trials are kept, a trial a killed driver left running is retried from its
run's checkpoint, and --trials counts every finished trial. Writes <store>/sweeps/<study>/report/
(report.md, value_per_k.png, importances.png, pareto.png, curves.png) after every trial.
Exit codes: 0 done, 1 no trial completed, 2 bad arguments or inputs (before any trial starts).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from stages import sweep
from stages.cli import run_job


def main(argv: Sequence[str] | None = None) -> int:
    return run_job(sweep, argv, "sweep.py")


if __name__ == "__main__":
    sys.exit(main())
