"""The evaluation's tables and report: one row per encoder, one column per task (the paper's main
table), domain means, per-task bars with error bars (std over seeds), the run's lineage, and a PCA
plot of clip embeddings coloured by domain."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from uts.probe.evaluate import DOMAINS, domain_means, seed_means

__all__ = ["comparison_table", "lineage_lines", "pca_2d", "write_report"]

Results = Mapping[str, Mapping[str, Any]]  # task -> evaluate_task result


def comparison_table(rows: Mapping[str, Results], *, majority: bool = True) -> str:
    """Markdown: one row per encoder (mean +- std over seeds), one column per task, then the
    domain means and the mean of all tasks (its std over seeds: the mean of tasks per seed). A first row gives each task's majority-class score."""
    tasks = sorted({t for results in rows.values() for t in results})
    header = ["encoder", *tasks, *DOMAINS, "mean"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    first = next((r for r in rows.values() if r), {})
    if majority and first:
        cells = [f"{first[t]['majority']['mean']:.3f}" if t in first else "" for t in tasks]
        lines.append("| majority class | " + " | ".join(cells) + " |" + " |" * (len(DOMAINS) + 1))
    for label, results in rows.items():
        cells = []
        for task in tasks:
            score = results.get(task, {}).get("score")
            cells.append(f"{score['mean']:.3f} +- {score['std']:.3f}" if score else "")
        means, spread = domain_means(results), seed_means(results)
        cells += [f"{means[d]:.3f}" if d in means else "" for d in DOMAINS]
        cells.append(
            f"{spread['mean']:.3f} +- {spread['std']:.3f}"
            if spread
            else f"{means.get('all', 0.0):.3f}"
        )
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    metrics = sorted({f"{t}: {r[t]['metric']}" for r in rows.values() for t in r})
    return "\n".join(lines) + "\n\nMetrics: " + ", ".join(metrics) + "."


def lineage_lines(lineage: Mapping[str, Any] | None, state: Mapping[str, Any] | None) -> list[str]:
    """What the checkpoint is: objective, K, lambda, vocabulary and corpus fingerprints, steps,
    audio hours seen."""
    if not lineage:
        return ["(no lineage: a baseline)"]
    config = lineage.get("config", {})
    corpus, vocab = lineage.get("corpus", {}), lineage.get("vocab", {})
    lines = [
        f"- objective `{config.get('objective')}`, K = {config.get('k')}, lambda = {config.get('lam')}, "
        f"encoder `{config.get('encoder')}`",
        f"- corpus `{corpus.get('name')}` ({corpus.get('fingerprint')}), tags "
        f"{lineage.get('tags', {}).get('fingerprint')}, vocabulary `{vocab.get('name')}` "
        f"({vocab.get('fingerprint')})",
        f"- git commit {lineage.get('git_commit')}",
    ]
    if state:
        lines.append(f"- {state.get('step')} steps, {state.get('audio_seconds', 0.0) / 3600:.2f} "
                     f"audio-hours seen, {state.get('skipped', 0)} skipped step(s)")  # fmt: skip
    return lines


def pca_2d(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """(N, D) -> (N, 2): the two leading principal components of the centred rows."""
    centred = x.astype(np.float64) - x.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    out: npt.NDArray[np.float64] = centred @ vt[:2].T
    return out


def _bars(rows: Mapping[str, Results], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted({t for results in rows.values() for t in results})
    width = 0.8 / max(len(rows), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(tasks)), 4.0))
    for i, (label, results) in enumerate(rows.items()):
        means = [results[t]["score"]["mean"] if t in results else 0.0 for t in tasks]
        stds = [results[t]["score"]["std"] if t in results else 0.0 for t in tasks]
        ax.bar(np.arange(len(tasks)) + i * width, means, width, yerr=stds, capsize=2, label=label)
    ax.set_xticks(np.arange(len(tasks)) + width * (len(rows) - 1) / 2)
    ax.set_xticklabels(tasks, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("score (accuracy or mAP), mean +- std over seeds")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _scatter(
    points: npt.NDArray[np.float64], domains: Sequence[str], path: Path, title: str
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.0, 4.5))
    for domain in sorted(set(domains)):
        chosen = [i for i, d in enumerate(domains) if d == domain]
        ax.scatter(points[chosen, 0], points[chosen, 1], s=6, alpha=0.6, label=domain)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(
    folder: Path, *, title: str, rows: Mapping[str, Results], lineage: Mapping[str, Any] | None,
    state: Mapping[str, Any] | None, protocol: str, notes: Sequence[str] = (),
    embeddings: tuple[npt.NDArray[np.float32], Sequence[str]] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> None:  # fmt: skip
    """report.md, bars.png and (with embeddings and their domains) pca.png in `folder`; `extra`
    sections (retrieval, captioning) are shown as JSON."""
    folder.mkdir(parents=True, exist_ok=True)
    _bars(rows, folder / "bars.png")
    parts = [f"# {title}", "", f"Protocol `{protocol}`; scores are mean +- std over the task's seeded "
             "splits (test split); the majority-class row is the trivial predictor.", "",
             comparison_table(rows), "", "![per-task scores](bars.png)", "", "## Lineage", "",
             *lineage_lines(lineage, state)]  # fmt: skip
    if embeddings is not None and len(embeddings[0]) >= 3:
        _scatter(
            pca_2d(embeddings[0]),
            embeddings[1],
            folder / "pca.png",
            f"{title}: PCA of clip embeddings",
        )
        parts += ["", "## Clip embeddings", "", "![PCA coloured by domain](pca.png)"]
    for key, value in (extra or {}).items():
        import json

        parts += ["", f"## {key.capitalize()} (held-out clips)", "", "```json",
                  json.dumps(value, indent=2, default=str), "```"]  # fmt: skip
    if notes:
        parts += ["", "## Notes", "", *[f"- {n}" for n in notes]]
    (folder / "report.md").write_text("\n".join(parts) + "\n", "utf-8")
