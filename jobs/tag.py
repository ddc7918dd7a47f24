"""Extract tags from every caption of a corpus (step 2 of the study).

    python jobs/tag.py --store ./uts-store --corpus demo --captions latest --backend rules
    python jobs/tag.py --store ./uts-store --corpus demo --backend labels   # AudioSet classes
    python jobs/tag.py --corpus demo --backend openai --endpoint http://gpu-host:8000/v1 \
        --model Qwen/Qwen2.5-7B-Instruct
    ray job submit -- python jobs/tag.py --store s3://bucket/uts --corpus big --captions <fingerprint> \
        --backend vllm --accelerator-type L4 --concurrency 8

Writes <store>/tags/<corpus>/<fingerprint>/part-NNNNN.parquet (clip_id, tags normalised with
uts.tags.normalize, raw, status, error, domain), one part per caption part, plus stage.json and
_SUCCESS: exactly what jobs/build_vocab.py reads. Captions that are not ok become failed rows with
the reason (suspect ones too, unless --keep-suspect). A killed run resumes. Backends: `rules`
(deterministic extraction, no model: the paper's non-LLM baseline), `labels` (AudioSet ontology
classes from the corpus's own metadata, no captions read: the paper's AudioSet-label baseline), `vllm` (Qwen2.5-7B-Instruct by
default, chat template, JSON structured output), `openai` (any OpenAI-compatible endpoint). Model
output that cannot be parsed is asked again once with a stricter prompt, then kept as `failed` with
its raw text and the reason. Exit codes: 0 done, 2 bad arguments, no such captions, or an unusable
endpoint.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from stages import tag
from stages.cli import run_job


def main(argv: Sequence[str] | None = None) -> int:
    return run_job(tag, argv, "tag.py")


if __name__ == "__main__":
    sys.exit(main())
