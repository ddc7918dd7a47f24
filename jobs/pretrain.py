"""Pretrain a Zipformer encoder on a corpus and its UTS vocabulary with Ray Train (the main job).

    python jobs/pretrain.py                               # the embedded default, offline, CPU
    python jobs/pretrain.py --preset smoke --corpus c --vocab v --name test
    ray job submit -- python jobs/pretrain.py --preset m --store s3://bucket/uts --corpus big \\
        --vocab big --k 1500 --objective multitask --lam 1.0 --num-workers 8 --use-gpu \\
        --accelerator-type V100 --name mt-1500

With no arguments: if the demo corpus, its captions, tags and vocabulary are missing from the store,
they are made first (ingest demo, caption corpus, tag rules, build_vocab), then the `demo` preset
trains. Rerunning with the same --name resumes from the run's latest checkpoint (Ray Train V2);
--init-from warm-starts a new run from a checkpoint's weights. Writes <store>/runs/<name>/.
Exit codes: 0 done, 1 training failed, 2 bad arguments or missing inputs (the message says what to
run first).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from stages import pretrain
from stages.cli import run_job


def main(argv: Sequence[str] | None = None) -> int:
    return run_job(pretrain, argv, "pretrain.py")


if __name__ == "__main__":
    sys.exit(main())
