"""The one way a job runs a stage: parse the flags into the stage's spec, run it on the store,
print its summary, return its exit code."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from stages.base import StageError
from uts.store import Store

__all__ = ["parser_for", "run_job", "run_stage"]


def parser_for(stage: ModuleType, prog: str) -> argparse.ArgumentParser:
    """A job's parser: --store, then the stage's own flags."""
    description = (stage.__doc__ or "").strip().splitlines()[0]
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--store", default="./uts-store", help="store root: folder or URI (default ./uts-store)")  # fmt: skip
    stage.add_arguments(parser)
    return parser


def run_job(stage: ModuleType, argv: Sequence[str] | None, prog: str) -> int:
    """`python jobs/<stage>.py`: 0 done, 1 the stage failed, 2 bad arguments or missing inputs."""
    parser = parser_for(stage, prog)
    args = parser.parse_args(argv)
    return run_stage(stage, stage.spec_from_args(args, parser), Store(args.store))


def run_stage(stage: ModuleType, spec: Any, store: Store) -> int:
    """`stage.run(spec, store)` as its job runs it: the summary on stdout, an error on stderr,
    the job's exit code back (the study runs its steps this way)."""
    try:
        result = stage.run(spec, store)
    except StageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    if result.summary:
        print(result.summary)
    return int(result.exit_code)
