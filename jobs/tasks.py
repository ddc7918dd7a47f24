"""Write the demo corpus's probe tasks (HEAR-style folders) and their log-mel baselines.

    python jobs/tasks.py --store ./uts-store --corpus demo
    ray job submit -- python jobs/tasks.py --store s3://bucket/uts --corpus demo --seeds 3

Writes <store>/tasks/<task>/: task.json, labelvocabulary.csv, split<seed>/{train,valid,test}.json
and baseline.json (log-mel mean+std -> logistic regression, mean and std over the seeds, beside the
majority-class score). Tasks use only the corpus's probe partition. A task whose inputs did not
change is skipped. Exit codes: 0 done, 1 some task had too few groups to split (the others are written), 2 no such
corpus or not a demo corpus.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from stages import tasks
from stages.cli import run_job


def main(argv: Sequence[str] | None = None) -> int:
    return run_job(tasks, argv, "tasks.py")


if __name__ == "__main__":
    sys.exit(main())
