"""The sweep report: report.md and PNGs from a study's trials.

- value_per_k.png: each objective against K, one line per lambda slice (the mean of the complete
  trials at that K; every trial a dot, pruned trials an x at their last probe score).
- importances.png: fANOVA parameter importances per objective (`optuna.importance`; fANOVA rather
  than Optuna's default PED-ANOVA, which ranks parameters erratically on the few trials of a sweep).
- pareto.png (multi-objective): every pair of objectives, the Pareto-optimal trials marked.
- curves.png: the probe score reported after each training segment (what the pruner saw).
- report.md: the settings, the best trial (or the Pareto front) with its ready-to-run
  `jobs/pretrain.py` command, the tables behind the plots, and the cost of every trial.
- summary(): the lines the sweep prints at the end (a row per trial, the best, the report).

Plots use matplotlib `Figure` objects, not pyplot: no global state, safe beside training threads.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from tuning.loop import FAIL_REASON, INTERRUPTED_ATTR, counted_trials

__all__ = ["best_trials", "lam_slicer", "summary", "trial_note", "write_report"]

LAM = "λ"


def best_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The best trial (single objective), or the Pareto-optimal trials ordered by their mean value
    (the first is "the best" whose command the report leads with). Empty without complete trials."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return []
    if len(study.directions) == 1:
        return [study.best_trial]
    return sorted(study.best_trials, key=lambda t: -float(np.mean(t.values)))


def lam_slicer(lams: Sequence[float]) -> Callable[[float], str]:
    """Label lambda values by slice: each value its own slice when there are at most 5 distinct
    values (a grid), otherwise 4 quantile bins of the values seen (TPE)."""
    distinct = sorted(set(lams))
    if len(distinct) <= 5:
        return lambda v: f"{LAM} = {v:.3g}"
    edges = [float(e) for e in np.quantile(distinct, [0.0, 0.25, 0.5, 0.75, 1.0])]

    def label(v: float) -> str:
        i = min(int(np.searchsorted(edges, v, side="right")) - 1, 3)
        i = max(i, 0)
        return f"{LAM} in [{edges[i]:.3g}, {edges[i + 1]:.3g}]"

    return label


def _value_text(trial: FrozenTrial) -> str:
    if trial.values:
        return ", ".join(f"{v:.4f}" for v in trial.values)
    if trial.state == TrialState.PRUNED and trial.intermediate_values:
        step = max(trial.intermediate_values)
        return f"({trial.intermediate_values[step]:.4f} at step {step})"
    return "-"


def trial_note(trial: FrozenTrial) -> str:
    """Retry, pruning, interruption or failure reason of a trial, in a few words."""
    notes = []
    history = trial.system_attrs.get("retry_history", [])
    if history:
        notes.append(f"retry of #{history[-1]}")
    if trial.state == TrialState.PRUNED and trial.intermediate_values:
        notes.append(f"pruned at step {max(trial.intermediate_values)}")
    if trial.state == TrialState.FAIL and INTERRUPTED_ATTR in trial.system_attrs:
        notes.append("interrupted (its driver stopped)")
    if FAIL_REASON in trial.user_attrs:
        notes.append(str(trial.user_attrs[FAIL_REASON]).replace("|", "/").splitlines()[0][:160])
    return "; ".join(notes)


def _num(value: Any, fmt: str) -> str:
    return format(float(value), fmt) if isinstance(value, int | float) else "-"


def _lam_text(trial: FrozenTrial) -> str:
    return f"{trial.params['lam']:.4g}" if "lam" in trial.params else "-"


def _objective_values(trial: FrozenTrial) -> list[float] | None:
    """Complete: its values; pruned: its last probe score (single objective only); else None."""
    if trial.state == TrialState.COMPLETE and trial.values:
        return list(trial.values)
    if trial.state == TrialState.PRUNED and trial.intermediate_values:
        return [trial.intermediate_values[max(trial.intermediate_values)]]
    return None


def _plot_value_per_k(trials: Sequence[FrozenTrial], names: Sequence[str], path: Path) -> list[str]:
    """value_per_k.png; returns the markdown tables (per objective: K x lambda slice means)."""
    from matplotlib.figure import Figure

    slicer = lam_slicer([t.params["lam"] for t in trials if "lam" in t.params])
    fig = Figure(figsize=(6.0 * len(names), 4.2))
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    tables = []
    ks = sorted({int(t.params["k"]) for t in trials if "k" in t.params})
    for j, (ax, name) in enumerate(zip(axes, names, strict=True)):
        groups: dict[str, dict[int, list[float]]] = {}
        for trial in trials:
            values = _objective_values(trial)
            if values is None or j >= len(values) or "k" not in trial.params:
                continue
            label = slicer(trial.params["lam"]) if "lam" in trial.params else "all trials"
            k = int(trial.params["k"])
            if trial.state == TrialState.COMPLETE:
                groups.setdefault(label, {}).setdefault(k, []).append(values[j])
            else:
                ax.scatter([k], [values[j]], marker="x", color="grey", zorder=3)
        for i, (label, by_k) in enumerate(sorted(groups.items())):
            xs = sorted(by_k)
            color = f"C{i % 10}"
            ax.plot(xs, [np.mean(by_k[x]) for x in xs], "-o", color=color, label=label)
            for x in xs:
                ax.scatter([x] * len(by_k[x]), by_k[x], s=12, color=color, alpha=0.5)
        ax.set_xscale("log")
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.minorticks_off()
        ax.set_xlabel("vocabulary size K")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        if groups:
            ax.legend(fontsize=8)
        header = sorted(groups)
        if header:
            rows = [f"| K | {' | '.join(header)} |", "|---|" + "---|" * len(header)]
            for k in ks:
                cells = [f"{np.mean(groups[h][k]):.4f} (n={len(groups[h][k])})" if k in groups[h]
                         else "-" for h in header]  # fmt: skip
                rows.append(f"| {k} | {' | '.join(cells)} |")
            tables.append(f"{name} (mean of complete trials):\n\n" + "\n".join(rows))
    fig.suptitle("probe value per K (x: pruned, last probe score)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return tables


def _importances(study: optuna.Study, names: Sequence[str]) -> dict[str, dict[str, float]] | str:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        return "needs at least 2 complete trials"
    varied = [p for p in complete[0].params if len({t.params.get(p) for t in complete}) > 1]
    if not varied:
        return "no parameter varies across the complete trials"
    if len({tuple(t.values) for t in complete}) == 1:
        return "every complete trial has the same value"
    out: dict[str, dict[str, float]] = {}
    for j, name in enumerate(names):
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)

        def target(trial: FrozenTrial, j: int = j) -> float:
            return float(trial.values[j])

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                values = optuna.importance.get_param_importances(
                    study, evaluator=evaluator, params=varied,
                    target=target if len(names) > 1 else None,
                )  # fmt: skip
            except (RuntimeError, ValueError) as exc:
                return str(exc)
        out[name] = {k: float(v) for k, v in values.items()}
    return out


def _plot_importances(importances: Mapping[str, Mapping[str, float]], path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.5 * len(importances), 2.8))
    axes = fig.subplots(1, len(importances), squeeze=False)[0]
    for ax, (name, values) in zip(axes, importances.items(), strict=True):
        params = list(values)[::-1]
        ax.barh(params, [values[p] for p in params], color="C0")
        ax.set_xlim(0, 1)
        ax.set_title(name)
        ax.set_xlabel("importance (fANOVA)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _plot_pareto(study: optuna.Study, names: Sequence[str], path: Path) -> None:
    from matplotlib.figure import Figure

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    front = {t.number for t in study.best_trials}
    pairs = list(itertools.combinations(range(len(names)), 2))
    fig = Figure(figsize=(4.8 * len(pairs), 4.2))
    axes = fig.subplots(1, len(pairs), squeeze=False)[0]
    for ax, (a, b) in zip(axes, pairs, strict=True):
        rest = [t for t in complete if t.number not in front]
        best = sorted((t for t in complete if t.number in front), key=lambda t: t.values[a])
        ax.scatter([t.values[a] for t in rest], [t.values[b] for t in rest], color="grey",
                   label="trials")  # fmt: skip
        ax.plot([t.values[a] for t in best], [t.values[b] for t in best], "-o", color="C3",
                label="Pareto-optimal")  # fmt: skip
        for t in best:
            ax.annotate(f"#{t.number}", (t.values[a], t.values[b]), fontsize=8,
                        xytext=(3, 3), textcoords="offset points")  # fmt: skip
        ax.set_xlabel(names[a])
        ax.set_ylabel(names[b])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _plot_curves(trials: Sequence[FrozenTrial], path: Path) -> bool:
    from matplotlib.figure import Figure

    reported = [t for t in trials if t.intermediate_values]
    if not reported:
        return False
    fig = Figure(figsize=(6.0, 4.0))
    ax = fig.subplots()
    for i, trial in enumerate(reported):
        steps = sorted(trial.intermediate_values)
        style = "--x" if trial.state == TrialState.PRUNED else "-o"
        ax.plot(steps, [trial.intermediate_values[s] for s in steps], style, color=f"C{i % 10}",
                label=f"#{trial.number} K={trial.params.get('k')} {LAM}={_lam_text(trial)}")  # fmt: skip
    ax.set_xlabel("training step (segment end)")
    ax.set_ylabel("probe value")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def write_report(study: optuna.Study, folder: Path, *, metric: Sequence[str],
                 settings: Mapping[str, Any], total: int | None = None,
                 dashboard: str | None = None) -> Path:  # fmt: skip
    """Write report.md and its PNGs into `folder` (created); returns the report's path."""
    folder.mkdir(parents=True, exist_ok=True)
    names = list(metric)
    trials = [t for t in study.get_trials(deepcopy=False) if t.state != TrialState.WAITING]
    counted = counted_trials(trials)
    states = {s.name.lower(): sum(t.state == s for t in trials) for s in TrialState}
    name = study.study_name
    lines = [f"# Sweep `{name}`", ""]
    lines += ["| setting | value |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in settings.items()]
    lines += ["", f"{len(counted)} finished trial(s) of {total if total is not None else '?'} "
              f"(complete {states['complete']}, pruned {states['pruned']}, failed {states['fail']}, "
              f"running {states['running']}).", ""]  # fmt: skip

    best = best_trials(study)
    multi = len(study.directions) > 1
    lines += ["## Best trial" if not multi else "## Pareto front", ""]
    if not best:
        lines += ["No trial has completed yet.", ""]
    for i, trial in enumerate(best):
        values = ", ".join(f"{n} {v:.4f}" for n, v in zip(names, trial.values, strict=True))
        lead = "best" if i == 0 else "also Pareto-optimal"
        lines += [f"Trial #{trial.number} ({lead}): K = {trial.params.get('k')}, {LAM} = "
                  f"{_lam_text(trial)}: {values}; run `{trial.user_attrs.get('run', '-')}`, "
                  f"checkpoint `{trial.user_attrs.get('checkpoint', '-')}`.", ""]  # fmt: skip
        command = trial.user_attrs.get("command")
        if command:
            lines += ["```sh", str(command), "```", ""]
    if multi and best:
        lines += ["The first is the Pareto-optimal trial with the highest mean over the "
                  "objectives.", ""]  # fmt: skip

    lines += ["## Value per K", ""]
    if trials:
        tables = _plot_value_per_k(trials, names, folder / "value_per_k.png")
        lines += ["![value per K](value_per_k.png)", "", *(f"{t}\n" for t in tables)]
    importances = _importances(study, names)
    lines += ["## Parameter importances", ""]
    if isinstance(importances, str):
        lines += [f"Not computed: {importances}.", ""]
    else:
        _plot_importances(importances, folder / "importances.png")
        lines += ["![importances](importances.png)", ""]
        for objective, ranked in importances.items():
            text = ", ".join(f"{p} {v:.2f}" for p, v in ranked.items())
            lines += [f"- {objective}: {text}"]
        lines += [""]
    if multi:
        lines += ["## Pareto front (plots)", ""]
        if best:
            _plot_pareto(study, names, folder / "pareto.png")
            lines += ["![Pareto front](pareto.png)", ""]
        else:
            lines += ["No trial has completed yet.", ""]
    if _plot_curves(trials, folder / "curves.png"):
        lines += ["## Probe score per segment", "", "![curves](curves.png)", ""]

    lines += ["## Trials and their cost", ""]
    header = ["#", "run", "K", LAM, "state", " / ".join(names), "steps", "wall s", "train s",
              "probe s", "audio-h", "note"]  # fmt: skip
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for trial in trials:
        user = trial.user_attrs
        cost = user.get("cost", {})
        segments = user.get("segments", {})
        steps = max((int(s) for s in segments), default=None)
        row = [str(trial.number), str(user.get("run", "-")), str(trial.params.get("k", "-")),
               _lam_text(trial), trial.state.name.lower(), _value_text(trial),
               str(steps) if steps is not None else "-", _num(user.get("wall_s"), ".0f"),
               _num(cost.get("train_s"), ".0f"), _num(cost.get("probe_s"), ".0f"),
               _num(user.get("audio_hours"), ".3f"), trial_note(trial)]  # fmt: skip
        lines.append("| " + " | ".join(row) + " |")
    # A retry carries its interrupted attempt's cost (and its run's audio-hours): count it once.
    wall = sum(float(t.user_attrs.get("wall_s", 0.0)) for t in counted)
    hours = sum(float(t.user_attrs.get("audio_hours", 0.0)) for t in counted)
    lines += ["", f"Total: {wall:.0f} s of trial wall time, {hours:.3f} audio-hours trained "
              "(a retry's figures include its interrupted attempt's).", ""]  # fmt: skip
    lines += ["## Resume and inspect", "",
              "Rerun the same command to continue: finished trials are kept, a trial left running "
              "is retried from its run's last checkpoint, and the total is honoured."]  # fmt: skip
    if dashboard:
        lines += ["", "Browse the study live (`pip install optuna-dashboard`):", "", "```sh",
                  dashboard, "```"]  # fmt: skip
    path = folder / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def summary(study: optuna.Study, report: str) -> tuple[str, FrozenTrial | None]:
    """The sweep's closing lines for stdout: one row per trial, then the best trial, where the
    report went and the best config's command; and the best trial (None when none completed)."""
    trials = [t for t in study.get_trials(deepcopy=False) if t.state.name != "WAITING"]
    lines = [f"{'#':>4} {'K':>6} {'lambda':>8} {'state':<9} {'value':<24} {'wall s':>8}  note"]
    for t in trials:
        lam = f"{t.params['lam']:.4g}" if "lam" in t.params else "-"
        values = ", ".join(f"{v:.4f}" for v in t.values) if t.values else "-"
        wall = t.user_attrs.get("wall_s")
        wall = "-" if wall is None else f"{wall:.0f}"
        lines.append(f"{t.number:>4} {t.params.get('k', '-')!s:>6} {lam:>8} {t.state.name.lower():<9} "
                     f"{values:<24} {wall:>8}  {trial_note(t)}")  # fmt: skip
    best = best_trials(study)
    if not best:
        return "\n".join([*lines, f"no trial completed; report: {report}"]), None
    top = best[0]
    lines += [f"best trial: #{top.number} {top.params} -> {top.values} (run {top.user_attrs.get('run')})",
              f"report: {report}/report.md",
              f"best config, ready to run:\n  {top.user_attrs.get('command')}"]  # fmt: skip
    return "\n".join(lines), top
