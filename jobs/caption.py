"""Caption every clip of a corpus's pretraining partition (step 1 of the study).

    python jobs/caption.py --store ./uts-store --corpus demo --backend acoustic
    python jobs/caption.py --corpus demo --backend openai --endpoint http://gpu-host:8000/v1 \\
        --model Qwen/Qwen3-Omni-30B-A3B-Captioner
    ray job submit -- python jobs/caption.py --store s3://bucket/uts --corpus big --backend vllm \\
        --accelerator-type A100 --concurrency 4

Writes <store>/captions/<corpus>/<fingerprint>/part-NNNNN.parquet (clip_id, description, status,
error, raw, text_kind, domain), one part per corpus shard, plus stage.json and _SUCCESS. A killed run
resumes: finished parts are kept, the rest are redone. Backends: `corpus` (the clip's existing text,
no model), `acoustic` (measured from the audio: pitch, timbre, noise, room, ...; no model), `vllm` (the audio LLM on this cluster's GPUs, audio only, no text prompt), `openai` (any
OpenAI-compatible endpoint; the audio goes as an input_audio part; key from $OPENAI_API_KEY).
Exit codes: 0 done, 2 bad arguments, no such corpus, or an unusable endpoint.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from stages import caption
from stages.cli import run_job


def main(argv: Sequence[str] | None = None) -> int:
    return run_job(caption, argv, "caption.py")


if __name__ == "__main__":
    sys.exit(main())
