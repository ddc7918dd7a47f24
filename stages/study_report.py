"""What a study leaves in <store>/studies/<name>/: study.json (every step's command, status and
wall time; the runs and which were evaluated) and report.md (the comparison table of the
evaluated runs beside both baselines, the steps, each run's lineage). Written after every study
that started, failed ones included: what ran and what is missing."""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from typing import Any

from stages.evaluate import results_folder
from stages.study_plan import Step
from stages.study_presets import Settings
from uts.store import Store

__all__ = ["report", "write_study"]


def write_study(
    store: Store, s: Settings, *, command: str, exit_code: int, wall_s: float,
    steps: Sequence[Step], runs: Sequence[str],
) -> tuple[str, dict[str, Any], str]:  # fmt: skip
    """Publish study.json and report.md (replacing an earlier study of the same name).

    Returns:
        (the study folder's URI, the study.json record, the comparison table: "" when no run
        was evaluated).
    """
    folder = results_folder(s.protocol, s.layers)
    evaluated = [r for r in runs if store.is_complete("evals", r, folder)]
    rows: dict[str, Any] = {}
    lineage: dict[str, Any] = {}
    for run in evaluated:
        summary = store.read_json("evals", run, folder, "summary.json")
        if not rows:
            rows.update(summary.get("baselines", {}))
        rows[run] = summary["results"]
        lineage[run] = {**(summary.get("lineage") or {}), "state": summary.get("state")}
    table = ""
    if rows:
        from uts.probe.report import comparison_table

        table = comparison_table(rows)
    record = {
        "name": s.name, "preset": s.preset_name, "exit_code": exit_code, "command": command,
        "wall_s": wall_s, "protocol": s.protocol, "layers": s.layers, "runs": list(runs),
        "evaluated": evaluated,
        "stages": [{"name": x.name, "command": shlex.join(x.command), "status": x.status,
                    "wall_s": x.wall_s, "note": x.note} for x in steps],
    }  # fmt: skip
    with store.staging() as staged:
        (staged / "study.json").write_text(json.dumps(record, indent=2) + "\n", "utf-8")
        (staged / "report.md").write_text(report(record, table, lineage), "utf-8")
        uri = store.publish(staged, "studies", s.name, overwrite=True)
    return uri, record, table


def report(record: dict[str, Any], table: str, lineage: dict[str, Any]) -> str:
    """report.md: the study's command, the comparison table, the steps and each run's lineage."""
    lines = [f"# Study {record['name']}", "",
             f"Preset `{record['preset']}`; probe protocol `{record['protocol']}` at depth `{record.get('layers', 'final')}`; exit code {record['exit_code']}; "
             f"{record['wall_s']:.0f} s.", "", f"    {record['command']}", "", "## Comparison", ""]  # fmt: skip
    lines += [table or "(no run was evaluated yet)", "", "## Stages", "", "| stage | status | wall s | note |",
              "|---|---|---|---|"]  # fmt: skip
    lines += [
        f"| {s['name']} | {s['status']} | {s['wall_s']:.0f} | {s['note']} |"
        for s in record["stages"]
    ]
    lines += ["", "## Runs", ""]
    for run, info in lineage.items():
        state = info.get("state") or {}
        config = info.get("config") or {}
        lam = f", lambda {config.get('lam')}" if config.get("objective") == "multitask" else ""
        lines.append(f"- `{run}`: objective {config.get('objective')}, K {config.get('k')}{lam}, "
                     f"{state.get('step')} steps, vocabulary "
                     f"{(info.get('vocab') or {}).get('fingerprint')}, tags {(info.get('tags') or {}).get('fingerprint')}")  # fmt: skip
    return "\n".join(lines) + "\n"
