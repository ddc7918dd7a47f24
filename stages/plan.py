"""The embedded default as a plan: the specs `make demo` (`python jobs/pretrain.py` with no model
arguments) runs, in order, and the runner that takes them one after the other.

    ingest (source demo) -> tasks -> tag (labels) -> build_vocab demo-audioset
        -> caption (acoustic) -> tag (rules) -> build_vocab demo-uts
        -> pretrain on demo-uts -> pretrain on demo-audioset (same recipe) -> one probe table

Every step is a no-op when its output is already complete, so a rerun on a finished store only
finds the runs complete and prints the probe table again. A plan is a generator that `run_plan`
sends each step's result back into, so every step names the exact folder the one before it left;
a vocabulary counted from another tags folder (another captioner or tagger ran) is rebuilt with
overwrite.
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
from collections.abc import Generator, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

from stages import caption, ingest, pretrain, tag, tasks, vocab
from stages.base import StageError, spec_argv
from stages.caption import CaptionSpec
from stages.ingest import IngestSpec
from stages.pretrain import DEMO, PretrainSpec
from stages.tag import TagSpec
from stages.tasks import TasksSpec
from stages.vocab import VocabSpec
from uts.store import Store

__all__ = [
    "LABELS_VOCAB",
    "Spec",
    "built_from",
    "demo_comparison",
    "demo_inputs",
    "demo_plan",
    "make_demo_inputs",
    "run_plan",
]

Spec = IngestSpec | TasksSpec | CaptionSpec | TagSpec | VocabSpec | PretrainSpec

LABELS_VOCAB = "demo-audioset"  # the AudioSet-label baseline's vocabulary

# The stage that runs each kind of spec.
STAGES: dict[type, ModuleType] = {
    IngestSpec: ingest,
    TasksSpec: tasks,
    CaptionSpec: caption,
    TagSpec: tag,
    VocabSpec: vocab,
    PretrainSpec: pretrain,
}


def demo_inputs(
    store: Store, *, cache: str, vocab_name: str, labels_vocab: str | None = LABELS_VOCAB
) -> Generator[Spec, Any, dict[str, str]]:
    """The embedded default's inputs, in order: the demo corpus (its packages cached in `cache`),
    its probe tasks, the acoustic captions, their rules tags and the vocabulary `vocab_name`; with
    `labels_vocab`, first the clips' AudioSet labels (tag backend `labels`) and their vocabulary.

    Run by `run_plan`, which sends each step's result back: every step names the exact folder the
    step before it left (captions -> tags -> vocabulary), never "the newest". The labels come
    before the rules tags so that the rules tags stay the corpus's newest (what `--tags latest`,
    e.g. a sweep's, picks). Returns the tags fingerprints: {"uts": ..., "labels": ...}.
    """
    yield IngestSpec(corpus=DEMO, source="demo", cache=cache)
    yield TasksSpec(corpus=DEMO)
    found: dict[str, str] = {}
    if labels_vocab:
        labels = yield TagSpec(corpus=DEMO, backend="labels")
        found["labels"] = labels.fingerprint
        yield _vocab_spec(store, labels_vocab, labels.fingerprint)
    captions = yield CaptionSpec(corpus=DEMO, backend="acoustic")
    tags = yield TagSpec(corpus=DEMO, backend="rules", captions=captions.fingerprint)
    found["uts"] = tags.fingerprint
    yield _vocab_spec(store, vocab_name, tags.fingerprint)
    return found


def _vocab_spec(store: Store, name: str, tags_fp: str) -> VocabSpec:
    """Vocabulary `name` from the tags folder `tags_fp` (rebuilt when counted from other tags)."""
    stale = store.is_complete("vocab", name) and not built_from(store, name, tags_fp)
    return VocabSpec(tags=(store.uri("tags", DEMO, tags_fp),), name=name, overwrite=stale)


def demo_plan(
    store: Store, *, cache: str, vocab_name: str, train: PretrainSpec | None = None,
    labels_vocab: str | None = LABELS_VOCAB,
) -> Generator[Spec, Any, None]:  # fmt: skip
    """`make demo` as specs: the inputs (demo_inputs), then `train` (default: the demo preset on
    the demo corpus) on the UTS tags with its vocabulary named, so that running it trains at once;
    with `labels_vocab`, then the same recipe on the AudioSet labels (the paper's comparison), at
    K = the smaller of train's K and that vocabulary's size, named <corpus>-labels-<objective>-k<K>."""
    fps = yield from demo_inputs(
        store, cache=cache, vocab_name=vocab_name, labels_vocab=labels_vocab
    )
    base = train or PretrainSpec(cache=cache)
    # With the labels baseline, the caller prints one table for both runs (stages.pretrain).
    probe = base.probe if not labels_vocab else False
    yield dataclasses.replace(base, vocab=vocab_name, tags=fps["uts"], probe=probe)
    if labels_vocab:
        config = base.config()
        k = min(config.k, int(store.read_json("vocab", labels_vocab, "vocab.json")["size"]))
        yield dataclasses.replace(base, vocab=labels_vocab, tags=fps["labels"], k=k, probe=False,
                                  name=f"{DEMO}-labels-{config.objective}-k{k}{pretrain.seed_suffix(config)}")  # fmt: skip


def demo_comparison(
    store: Store, uts_run: pretrain.PretrainResult, labels_run: pretrain.PretrainResult
) -> str:
    """The embedded default's table: log-mel, random-init, MTC on the UTS tags and MTC on the
    AudioSet labels (same recipe), per task, per domain and the mean, with a legend."""
    runs = [(r.checkpoint, r.run) for r in (uts_run, labels_run) if r.checkpoint]
    legend = (f"{uts_run.run}: MTC on the UTS tags of the acoustic captions (vocabulary demo-uts); "
              f"{labels_run.run}: the same recipe on the clips' AudioSet labels (demo-audioset). "
              "One run each; over training seeds 0-2 (README), UTS-MTC led its own random init by "
              "+0.012 to +0.024 on the mean ('The paper's comparison').")  # fmt: skip
    return pretrain.report_probes(store, runs) + "\n\n" + legend


def make_demo_inputs(store: Store, *, vocab_name: str, cache: str) -> None:
    """Make whatever of the embedded default's UTS inputs the store lacks (jobs that train on them:
    sweep), the AudioSet labels aside. Start Ray first when it needs more CPUs than one per core.

    Raises:
        StageError: (1) a step failed; its own error was printed above.
    """
    run_plan(store, demo_inputs(store, cache=cache, vocab_name=vocab_name, labels_vocab=None))


def run_plan(store: Store, plan: Iterable[Spec]) -> list[Any]:
    """Run the specs in order; returns their results.

    A generator plan is sent each step's result (None for a vocabulary already counted). Each
    input step is announced on stderr as "[embedded default] <job>: <flags>" and prints its
    summary on stdout as its job would. A vocabulary already counted from the tags it names is
    skipped. Pretraining is the plan's goal: it announces itself, and its result's summary is
    left for the caller to print (the job prints it last).

    Raises:
        StageError: (1) an input step failed or refused (its error is printed first); a
            pretraining spec's own StageError as raised.
    """
    results: list[Any] = []
    steps = iter(plan)
    sent: Any = None
    while True:
        try:
            spec = steps.send(sent) if isinstance(steps, Generator) else next(steps)
        except StopIteration:
            return results
        sent = _run_step(store, spec)
        if sent is not None:
            results.append(sent)


def _run_step(store: Store, spec: Spec) -> Any:
    """One step of run_plan: its result (None for a vocabulary already counted)."""
    stage = STAGES[type(spec)]
    if isinstance(spec, PretrainSpec):
        return stage.run(spec, store)
    if isinstance(spec, VocabSpec) and _counted(store, spec):
        return None
    step = Path(stage.SCRIPT).stem
    flags = shlex.join(["--store", store.root_uri, *spec_argv(spec)])
    print(f"[embedded default] {step}: {flags}", file=sys.stderr)
    failed = f"the embedded default's {step} step failed"
    try:
        result = stage.run(spec, store)
    except StageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise StageError(failed, 1) from exc
    if result.summary:
        print(result.summary, flush=True)
    if result.exit_code != 0:
        raise StageError(failed, 1)
    return result


def built_from(store: Store, name: str, tags_fp: str) -> bool:
    """Whether vocabulary `name` is complete and was counted from the tags folder `tags_fp`."""
    if not store.is_complete("vocab", name):
        return False
    sources = store.read_json("vocab", name, "vocab.json").get("sources", [])
    return any(f"/{tags_fp}/" in str(source.get("uri", "")) for source in sources)


def _counted(store: Store, spec: VocabSpec) -> bool:
    """A plan's vocabulary (one tags folder) that already holds exactly those tags."""
    if len(spec.tags) != 1:
        return False
    return built_from(store, spec.name, spec.tags[0].rstrip("/").rsplit("/", 1)[-1])
