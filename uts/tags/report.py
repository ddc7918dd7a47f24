"""The vocabulary report: report.md with two plots (score/df curve, coverage per K)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never open a window

import matplotlib.pyplot as plt
import numpy as np

from uts.tags.build import STANDARD_K, VocabBuild
from uts.tags.paper import paper_overlap_lines

__all__ = ["write_report"]

_TOP = 30


def write_report(build: VocabBuild, folder: Path) -> None:
    """Write report.md, score_df.png and coverage.png into `folder`."""
    _plot_scores(build, folder / "score_df.png")
    _plot_coverage(build, folder / "coverage.png")
    (folder / "report.md").write_text(_markdown(build), encoding="utf-8")


def _ks(build: VocabBuild) -> list[int]:
    return [k for k in STANDARD_K if k <= len(build.all_df)]


def _plot_scores(build: VocabBuild, path: Path) -> None:
    ranks = np.arange(1, len(build.all_df) + 1)
    fig, score_ax = plt.subplots(figsize=(8, 4.5))
    score_ax.plot(ranks, build.all_scores, color="tab:blue", label="score")
    score_ax.set_xlabel("rank")
    score_ax.set_ylabel("score = df * ln((N+1)/(df+1))", color="tab:blue")
    df_ax = score_ax.twinx()
    df_ax.plot(ranks, build.all_df, color="tab:orange", label="df")
    df_ax.set_ylabel("df (clips)", color="tab:orange")
    df_ax.set_yscale("log")
    for k in _ks(build):
        score_ax.axvline(k, color="grey", linestyle=":", linewidth=1)
        score_ax.text(
            k, score_ax.get_ylim()[1], f"K={k}", rotation=90, va="top", ha="right", fontsize=8
        )
    if build.vocab.k < len(ranks):
        score_ax.axvline(build.vocab.k, color="black", linewidth=1)
    score_ax.set_xscale("log")
    score_ax.set_title(f"{build.vocab.name}: score and df by rank ({len(ranks):,} distinct tags)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_coverage(build: VocabBuild, path: Path) -> None:
    names = build.domains or ("all",)
    clips = np.asarray(build.domain_clips or (build.vocab.n_clips,), np.float64)
    ks = np.arange(1, build.vocab.k + 1)
    kept = np.cumsum(build.min_rank[:, 1 : build.vocab.k + 1], axis=1)  # (D, size)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for i, name in enumerate(names):
        ax.plot(ks, kept[i] / max(clips[i], 1.0), label=f"{name} ({int(clips[i]):,} clips)")
    for k in _ks(build):
        ax.axvline(k, color="grey", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("K (vocabulary size)")
    ax.set_ylabel("share of clips keeping >= 1 tag")
    ax.set_title(f"{build.vocab.name}: coverage by domain")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _ties(meta: dict[str, Any]) -> str:
    if meta.get("paper_compat"):
        return (
            "first seen first (paper-compatible build: tags as written, every row a document, "
            "as the paper's build_labelsys.py)"
        )
    return "df (higher first), then tag (alphabetical)"


def _markdown(build: VocabBuild) -> str:
    meta, vocab = build.meta, build.vocab
    lines = [
        f"# Vocabulary `{vocab.name}`",
        "",
        f"- clips (N): {meta['n_clips']:,} of {meta['n_rows']:,} rows "
        f"({meta['n_skipped_status']:,} left out: status not ok)",
        f"- distinct tags: {meta['n_distinct_tags']:,} "
        f"({meta['n_spellings']:,} spellings before merging separator variants)",
        f"- kept: top {vocab.k:,} (max K {meta['max_k']:,}); any K is a prefix",
        f"- normalised: {'yes, normaliser v' + str(meta['normalizer_version']) if meta['normalize'] else 'no'}",
        f"- score: `{meta['score']}`; ties: {_ties(meta)}",
        f"- input fingerprint `{meta['input_fingerprint']}`, vocabulary fingerprint `{meta['vocab_fingerprint']}`",
        "",
        "## Cut-offs",
        "",
    ]
    names = list(build.domains or ("all",))
    lines.append(
        "| K | score at K | df at K | clips keeping no tag | "
        + " | ".join(f"coverage {d}" for d in names)
        + " |"
    )
    lines.append("|---|---|---|---|" + "---|" * len(names))
    for k, row in meta["cutoffs"].items():
        share = row["clips_without_tag"] / vocab.n_clips
        cov = " | ".join(f"{row['coverage'][d]:.1%}" for d in names)
        lines.append(
            f"| {int(k):,} | {row['score_at_k']:.2f} | {row['df_at_k']:,} | "
            f"{row['clips_without_tag']:,} ({share:.1%}) | {cov} |"
        )
    lines += [
        "",
        "![score and df by rank](score_df.png)",
        "",
        "![coverage by domain](coverage.png)",
        "",
    ]
    lines += [
        f"## Top {min(_TOP, vocab.k)} tags",
        "",
        "| rank | tag | df | score |",
        "|---|---|---|---|",
    ]
    for i in range(min(_TOP, vocab.k)):
        lines.append(f"| {i + 1} | {vocab.tags[i]} | {vocab.df[i]:,} | {vocab.score[i]:.2f} |")
    lines += ["", "## Overlap with the paper's vocabulary", ""]
    lines += paper_overlap_lines(vocab.tags, listed=None)
    lines += ["", "## Inputs", ""]
    lines += [
        f"- `{s['uri']}`: {s['rows']:,} rows, sha256 `{s['sha256'][:16]}`" for s in meta["sources"]
    ]
    return "\n".join(lines) + "\n"
