"""An evaluation's results folder, `<store>/evals/<name>/<folder>/`: one `<task>.json` per task,
`summary.json` (encoder, space, lineage, baselines, held-out metrics, domain means) and the report
(report.md, bars.png, pca.png), published whole."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from uts.probe.evaluate import domain_means
from uts.probe.report import write_report
from uts.store import Store

__all__ = ["EXTRA", "publish_results", "summarize_extra"]

EXTRA = ("retrieval", "captioning")  # summary keys of the held-out metrics (uts.probe.heldout)


def summarize_extra(value: Mapping[str, Any]) -> dict[str, Any]:
    """The headline numbers of retrieval or captioning results (no examples, no per-clip rows)."""
    out: dict[str, Any] = {}
    for key, part in value.items():
        if isinstance(part, dict):
            out[key] = {k: v for k, v in part.items() if k not in ("examples", "per_clip")}
        else:
            out[key] = part
    return out


def publish_results(
    store: Store, name: str, folder: str, results: Mapping[str, dict[str, Any]],
    summary: Mapping[str, Any], *, rows: Mapping[str, Mapping[str, Any]],
    embeddings: tuple[npt.NDArray[np.float32], Sequence[str]] | None = None,
    notes: Sequence[str] = (),
) -> str:  # fmt: skip
    """Write evals/<name>/<folder>/ whole and return its URI: earlier tasks' results of the same
    embedding space are kept, these replace theirs; another space's results are dropped. The
    report names the protocol by `folder` (the protocol, suffixed by the depth read).

    Args:
        results: task -> result (uts.probe.evaluate.evaluate_task) of the encoder evaluated.
        summary: label, space, kind, protocol, layers, lineage, state, baselines, held-out
            metrics (EXTRA keys); "results" and "domain_means" are added here.
        rows: the baselines' results, shown beside the encoder in the report.
        embeddings: (N, D) clip embeddings and each clip's domain, for the PCA plot.
        notes: lines for the report's notes (a task's caveats).
    """
    parts = ("evals", name, folder)
    merged: dict[str, dict[str, Any]] = {}
    if store.is_complete(*parts):  # other tasks' results of the same encoder are kept
        earlier = store.read_json(*parts, "summary.json")
        if earlier.get("space") == summary["space"]:
            merged = earlier.get("results", {})
    merged.update(results)
    full = {**summary, "results": merged, "domain_means": domain_means(merged)}
    with store.staging() as staged:
        for task, result in merged.items():
            (staged / f"{task}.json").write_text(json.dumps(result, indent=2) + "\n", "utf-8")
        (staged / "summary.json").write_text(
            json.dumps(full, indent=2, default=str) + "\n", "utf-8"
        )
        write_report(staged, title=f"Evaluation of {full['label']}", rows={**rows, full["label"]: merged},
                     lineage=full.get("lineage"), state=full.get("state"), protocol=folder,
                     embeddings=embeddings, notes=notes,
                     extra={k: summarize_extra(full[k]) for k in EXTRA if k in full})  # fmt: skip
        return store.publish(staged, *parts, overwrite=True)
