"""Optuna studies over K and lambda; each trial trains and probes through functions it is given.

space: the search space; storage: where a study lives; study: sampler, pruner, settings;
objective: one trial = one segmented pretraining run + probes (training and probing passed in);
loop: trials up to a total, resumed after a killed driver; report: report.md and plots.
`stages/sweep.py` wires them to the pretrain and evaluate stages.
"""

from tuning.loop import LoopConfig, LoopResult, TrialError, counted_trials, reap_stale, run_trials
from tuning.objective import Command, Probe, Train, TrialSetup, make_objective, segment_steps
from tuning.report import write_report
from tuning.space import SweepSpace, parse_ks, parse_range
from tuning.storage import StorageError, SweepStorage, open_storage
from tuning.study import StudyMismatch, make_pruner, make_sampler, open_study

__all__ = [
    "Command",
    "LoopConfig",
    "LoopResult",
    "Probe",
    "StorageError",
    "StudyMismatch",
    "SweepSpace",
    "SweepStorage",
    "Train",
    "TrialError",
    "TrialSetup",
    "counted_trials",
    "make_objective",
    "make_pruner",
    "make_sampler",
    "open_storage",
    "open_study",
    "parse_ks",
    "parse_range",
    "reap_stale",
    "run_trials",
    "segment_steps",
    "write_report",
]
