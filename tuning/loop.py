"""Run a study's trials up to a total, P at a time, resuming after a killed driver.

Why not `study.optimize`: a rerun must honour the *total* (trials of earlier processes count), must
notice trials a killed process left RUNNING, and Optuna 5's JournalStorage has no heartbeat (only
RDBStorage does). So this loop keeps its own, the same on every storage:

- Heartbeat: while a trial runs, a thread writes the time into its system attr `uts:heartbeat`
  every `heartbeat_s` seconds.
- Stale: a RUNNING trial of another process whose last beat (or start) is older than `grace_s`
  belongs to a dead driver. It is marked FAIL (`uts:interrupted`) and re-queued with the same
  params and user attrs by Optuna's `RetryHeartbeatStaleTrialCallback` (which carries `grid_id`
  and the retry history): the retry keeps the run name in its user attrs, so its Train run resumes
  from its last checkpoint. After `max_retry` interruptions a trial stays failed.
- Counting: COMPLETE, PRUNED and FAIL trials count toward the total, except a FAIL that was
  retried (its retry counts instead). RUNNING trials of live drivers are counted as in flight, so
  two drivers on one RDB study do not overshoot.

Trials are asked for on the calling thread (samplers see one ask at a time) and run on a pool of
`parallel` threads; each trial's function blocks on its own Ray Train run, and Ray queues the runs
when the cluster is full.
"""

from __future__ import annotations

import contextlib
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState

__all__ = [
    "HEARTBEAT_ATTR",
    "LoopConfig",
    "LoopResult",
    "TrialError",
    "counted_trials",
    "reap_stale",
    "run_trials",
]

HEARTBEAT_ATTR = "uts:heartbeat"
INTERRUPTED_ATTR = "uts:interrupted"
FAIL_REASON = "fail_reason"  # user attr: why a trial failed (shown in the report)

Objective = Callable[[optuna.Trial], float | Sequence[float]]


class TrialError(RuntimeError):
    """A trial failed for a reason worth showing (a training run exited non-zero, ...)."""


@dataclass(frozen=True, kw_only=True)
class LoopConfig:
    total: int  # finished trials wanted in the study, earlier processes' included
    parallel: int = 1
    heartbeat_s: float = 10.0
    grace_s: float = 60.0  # no beat for this long: the trial's driver is dead
    max_retry: int = 3

    def __post_init__(self) -> None:
        if self.total < 1 or self.parallel < 1:
            raise ValueError(f"total and parallel must be >= 1, got {self.total}, {self.parallel}")
        if self.grace_s <= self.heartbeat_s:
            raise ValueError("grace_s must exceed heartbeat_s, or live trials look stale")


@dataclass(frozen=True)
class LoopResult:
    ran: list[int]  # trial numbers this process ran
    retried: list[int]  # stale trials of dead drivers this process re-queued
    counted: int  # finished trials in the study at the end


def counted_trials(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """The finished trials that count toward the total (see the module docstring)."""
    superseded = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    return [
        t
        for t in trials
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        or (t.state == TrialState.FAIL and t.number not in superseded)
    ]


def last_sign_of_life(trial: FrozenTrial) -> float:
    beat = trial.system_attrs.get(HEARTBEAT_ATTR)
    if beat is not None:
        return float(beat)
    start = trial.datetime_start
    return start.timestamp() if start is not None else 0.0


def reap_stale(study: optuna.Study, *, grace_s: float, mine: set[int], max_retry: int,
               now: float | None = None) -> list[int]:  # fmt: skip
    """Fail the RUNNING trials (not in `mine`, trial ids) whose driver stopped beating, and queue
    their retries. Returns the numbers of the trials failed."""
    now = time.time() if now is None else now
    reaped = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if trial._trial_id in mine or now - last_sign_of_life(trial) <= grace_s:
            continue
        storage = study._storage
        try:
            storage.set_trial_system_attr(trial._trial_id, INTERRUPTED_ATTR, now)
            if not storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another driver got there first, or it just finished
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
            retry(study, storage.get_trial(trial._trial_id))
        reaped.append(trial.number)
    return reaped


class _Heartbeat:
    """One thread beating for every trial this process runs."""

    def __init__(self, storage: optuna.storages.BaseStorage, interval: float) -> None:
        self.storage, self.interval = storage, interval
        self.ids: set[int] = set()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="sweep-heartbeat", daemon=True)

    def add(self, trial_id: int) -> None:
        with self.lock:
            self.ids.add(trial_id)
        self._beat(trial_id)

    def remove(self, trial_id: int) -> None:
        with self.lock:
            self.ids.discard(trial_id)

    def mine(self) -> set[int]:
        with self.lock:
            return set(self.ids)

    def _beat(self, trial_id: int) -> None:
        # A trial may finish between the copy of the ids and its beat.
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            self.storage.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())

    def _run(self) -> None:
        while not self.stop.wait(self.interval):
            for trial_id in self.mine():
                self._beat(trial_id)

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def _run_one(study: optuna.Study, trial: optuna.Trial, objective: Objective,
             beat: _Heartbeat, log: Callable[[str], None]) -> None:  # fmt: skip
    """Run one trial to its end state; never raises (a failure is recorded on the trial)."""
    try:
        values = objective(trial)
    except optuna.TrialPruned as exc:
        beat.remove(trial._trial_id)
        study.tell(trial, state=TrialState.PRUNED)
        log(f"trial {trial.number} pruned{f': {exc}' if str(exc) else ''}")
    except Exception as exc:  # a trial's failure must not end the sweep; it is recorded
        beat.remove(trial._trial_id)
        reason = f"{type(exc).__name__}: {exc}" if not isinstance(exc, TrialError) else str(exc)
        trial.set_user_attr(FAIL_REASON, reason)
        study.tell(trial, state=TrialState.FAIL)
        log(f"trial {trial.number} failed: {reason}")
    else:
        beat.remove(trial._trial_id)
        study.tell(trial, values)
        log(f"trial {trial.number} complete: {values}")


def run_trials(study: optuna.Study, objective: Objective, config: LoopConfig, *,
               on_finished: Callable[[], None] | None = None,
               log: Callable[[str], None] = print) -> LoopResult:  # fmt: skip
    """Run trials of `objective` until the study holds `config.total` counted trials.

    `on_finished` runs on this thread after each trial of this process ends (reports, uploads).
    """
    ran: list[int] = []
    retried: list[int] = []
    running: dict[Future[None], int] = {}
    waiting_on_others = False
    with (
        _Heartbeat(study._storage, config.heartbeat_s) as beat,
        ThreadPoolExecutor(config.parallel, thread_name_prefix="sweep-trial") as pool,
    ):
        while True:
            reaped = reap_stale(study, grace_s=config.grace_s, mine=beat.mine(),
                                max_retry=config.max_retry)  # fmt: skip
            for number in reaped:
                log(f"trial {number} was left running by a stopped sweep: queued to run again")
            retried += reaped
            trials = study.get_trials(deepcopy=False)
            done = len(counted_trials(trials))
            mine = beat.mine()
            others = [
                t for t in trials if t.state == TrialState.RUNNING and t._trial_id not in mine
            ]
            room = config.total - done - len(running) - len(others)
            if room > 0 and len(running) < config.parallel:
                trial = study.ask()
                beat.add(trial._trial_id)
                ran.append(trial.number)
                running[pool.submit(_run_one, study, trial, objective, beat, log)] = trial.number
                continue
            if running:
                finished, _ = wait(list(running), timeout=config.heartbeat_s,
                                   return_when=FIRST_COMPLETED)  # fmt: skip
                for future in finished:
                    running.pop(future)
                    future.result()
                    if on_finished is not None:
                        on_finished()
                continue
            if others and done < config.total:
                if not waiting_on_others:
                    log(f"waiting for trial(s) {[t.number for t in others]} of another driver "
                        f"(retried here if silent for {config.grace_s:.0f} s)")  # fmt: skip
                    waiting_on_others = True
                time.sleep(min(config.heartbeat_s, config.grace_s / 4))
                continue
            break
    counted = len(counted_trials(study.get_trials(deepcopy=False)))
    return LoopResult(ran=ran, retried=retried, counted=counted)
