"""Run the paper's study end to end: corpus, captions, tags, the UTS vocabulary, one pretraining run
per objective, probes of every run beside both baselines, and one comparison table.

    python jobs/study.py --preset demo                    # offline on a laptop (README: time)
    python jobs/study.py --preset smoke --store /tmp/s    # synthetic tones, about a minute (tests)
    ray job submit --working-dir . -- python jobs/study.py --preset paper \\
        --store s3://bucket/uts --corpus captionstew --source lhotse --path s3://bucket/cuts.jsonl.gz

Stages, in order: ingest (skipped when the corpus exists), probe tasks (demo and smoke presets),
caption, tag, build_vocab at --max-k, pretrain each of --objectives at --k (and --lam for
multitask), evaluate each run (log-mel and random-init beside it), report. Every stage is skipped
when its fingerprinted output is complete, so rerunning after a failure continues where it
stopped; a run's name carries its vocabulary's fingerprint, so changed upstream stages make new
runs instead of resuming old ones. Writes <store>/studies/<name>/ (study.json: every stage's
command, status and wall time; report.md: the comparison table and each run's lineage).
Exit codes: 0 done, 1 a stage failed (the message names it and its command), 2 bad arguments.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from stages import study
from stages.cli import run_job


def main(argv: Sequence[str] | None = None) -> int:
    return run_job(study, argv, "study.py")


if __name__ == "__main__":
    sys.exit(main())
