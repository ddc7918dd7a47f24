"""Ingest audio into corpus shards in the store.

    python jobs/ingest.py --store ./uts-store --corpus mine --source folder --path ./audio --metadata meta.csv
    python jobs/ingest.py --store ./uts-store --corpus captionstew --source lhotse \\
        --path cuts.jsonl.gz --audio-root /old/prefix=/data/audio
    ray job submit -- python jobs/ingest.py --store s3://bucket/uts --corpus mine --source folder --path s3://bucket/raw

Writes <store>/corpora/<corpus>/: shards/part-NNNNN.parquet (clip_id, audio as 16 kHz mono FLAC,
duration_s, domain, source, license, text, text_kind, labels, group, tags), rejects.parquet
(path, reason) and corpus.json (counts, hours, per-domain figures, fingerprint, policy). The folder
appears whole or not at all; rerunning with the same inputs is a no-op.
Exit codes: 0 done; 1 more rejects than --max-reject-fraction (the corpus is still written);
2 bad arguments or unusable source (nothing written).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from stages import ingest
from stages.cli import run_job


def main(argv: Sequence[str] | None = None) -> int:
    return run_job(ingest, argv, "ingest.py")


if __name__ == "__main__":
    sys.exit(main())
