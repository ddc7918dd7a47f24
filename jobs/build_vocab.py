"""Build the UTS vocabulary from tag tables, or compare two vocabularies.

    python jobs/build_vocab.py --store ./uts-store --tags ./uts-store/tags/demo/<fingerprint> --name demo
    ray job submit -- python jobs/build_vocab.py --store s3://bucket/uts --tags s3://bucket/uts/tags/c/fp
    python jobs/build_vocab.py --store ./uts-store --diff demo@800 demo@1500

Writes <store>/vocab/<name>/: vocab.parquet (rank, tag, df, score, coverage_<domain>), vocab.json
(N, inputs and their hashes, fingerprints, normaliser version, cut-off statistics) and a report
(report.md, score_df.png, coverage.png). The folder appears whole or not at all. Rerunning on the
same input is a no-op; different input under an existing name needs --overwrite.
Exit codes: 0 done, 2 bad input or arguments (nothing written).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from stages import vocab
from stages.cli import run_job


def main(argv: Sequence[str] | None = None) -> int:
    return run_job(vocab, argv, "build_vocab.py")


if __name__ == "__main__":
    sys.exit(main())
