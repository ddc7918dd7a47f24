"""The embedded default as a plan: the specs `make demo` (`python jobs/pretrain.py` with no model
arguments) runs, in order, and the runner that takes them one after the other.

    ingest (source demo) -> tasks -> caption (corpus) -> tag (rules) -> build_vocab -> pretrain

Every step is a no-op when its output is already complete, so a rerun on a finished store only
finds the run complete and prints its probe table again. The vocabulary follows the newest tags:
when it was counted from another tags folder (a newer tagger ran), it is rebuilt with overwrite.
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
from collections.abc import Iterable, Iterator
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
from uts.store import Store, latest_complete

__all__ = ["Spec", "built_from", "demo_inputs", "demo_plan", "make_demo_inputs", "run_plan"]

Spec = IngestSpec | TasksSpec | CaptionSpec | TagSpec | VocabSpec | PretrainSpec

# The stage that runs each kind of spec.
STAGES: dict[type, ModuleType] = {
    IngestSpec: ingest,
    TasksSpec: tasks,
    CaptionSpec: caption,
    TagSpec: tag,
    VocabSpec: vocab,
    PretrainSpec: pretrain,
}


def demo_inputs(store: Store, *, cache: str, vocab_name: str) -> Iterator[Spec]:
    """The embedded default's inputs, in order: the demo corpus (its packages cached in `cache`),
    its probe tasks, captions (the clips' own text), rules tags and the vocabulary `vocab_name`.

    Lazy: the vocabulary's spec is made once the steps before it have run, because it names the
    tags folder they left (the newest complete one, as pretraining's --tags latest picks).
    """
    yield IngestSpec(corpus=DEMO, source="demo", cache=cache)
    yield TasksSpec(corpus=DEMO)
    yield CaptionSpec(corpus=DEMO, backend="corpus")
    yield TagSpec(corpus=DEMO, backend="rules")
    fp = str(latest_complete(store, "tags", DEMO))
    stale = store.is_complete("vocab", vocab_name) and not built_from(store, vocab_name, fp)
    yield VocabSpec(tags=(store.uri("tags", DEMO, fp),), name=vocab_name, overwrite=stale)


def demo_plan(
    store: Store, *, cache: str, vocab_name: str, train: PretrainSpec | None = None
) -> Iterator[Spec]:
    """`make demo` as specs: the inputs (demo_inputs), then `train` (default: the demo preset on
    the demo corpus) with its vocabulary named, so that running it trains at once."""
    yield from demo_inputs(store, cache=cache, vocab_name=vocab_name)
    yield dataclasses.replace(train or PretrainSpec(cache=cache), vocab=vocab_name)


def make_demo_inputs(store: Store, *, vocab_name: str, cache: str) -> None:
    """Make whatever of the embedded default's inputs the store lacks (jobs that train on them:
    pretrain, sweep). Start Ray first when it needs more CPUs than one per core.

    Raises:
        StageError: (1) a step failed; its own error was printed above.
    """
    run_plan(store, demo_inputs(store, cache=cache, vocab_name=vocab_name))


def run_plan(store: Store, plan: Iterable[Spec]) -> list[Any]:
    """Run the specs in order; returns their results.

    Each input step is announced on stderr as "[embedded default] <job>: <flags>" and prints its
    summary on stdout as its job would. A vocabulary already counted from the tags it names is
    skipped. Pretraining is the plan's goal: it announces itself, and its result's summary is
    left for the caller to print (the job prints it last).

    Raises:
        StageError: (1) an input step failed or refused (its error is printed first); a
            pretraining spec's own StageError as raised.
    """
    results: list[Any] = []
    for spec in plan:
        stage = STAGES[type(spec)]
        if isinstance(spec, PretrainSpec):
            results.append(stage.run(spec, store))
            continue
        if isinstance(spec, VocabSpec) and _counted(store, spec):
            continue
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
        results.append(result)
    return results


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
