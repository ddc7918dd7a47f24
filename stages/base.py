"""What every stage shares: the error a job turns into an exit code, the content address of a
spec's inputs, and the command line that rebuilds a spec.

A stage module (stages/<name>.py) has:
    SCRIPT                      the entry point that runs it, e.g. "jobs/caption.py"
    <Name>Spec                  frozen, keyword-only: one field per flag (--store aside), with its default
    add_arguments(parser)       the flags, defaults taken from the spec
    spec_from_args(namespace)   flags -> spec (argparse-level checks: parser.error)
    run(spec, store) -> Result  the work; raises StageError for bad input or a failed stage
A Result has `summary` (the lines the job prints at the end) and `exit_code`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from uts.store import Store

__all__ = ["CorpusTarget", "StageError", "content_address", "corpus_target", "spec_argv"]


class StageError(Exception):
    """A stage cannot start (bad input: exit code 2) or failed (exit code 1); the message says
    what was wrong and what to do, for people."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def content_address(inputs: Mapping[str, Any]) -> str:
    """The 16-hex-digit hash of everything that changes a stage's output (the folder name of its
    output under the store): same inputs, same folder; any change, a new one."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:16]


def spec_argv(spec: Any) -> list[str]:
    """The flags that rebuild `spec` from its defaults, in field order (for messages, study.json
    and lineage: the command a user would type).

    A field's flag is --<name with dashes>, or metadata["flag"]; a bool field that is on by default
    is written as metadata["off"] (e.g. --no-probe) when off; a tuple field repeats its flag per
    value, or (metadata["nargs"] True) gives all its values after one flag; fields with
    metadata["cli"] False are not flags.
    """
    argv: list[str] = []
    for field in dataclasses.fields(spec):
        if field.metadata.get("cli", True) is False:
            continue
        value = getattr(spec, field.name)
        default = field.default if field.default is not dataclasses.MISSING else None
        if field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        if value == default:
            continue
        flag = field.metadata.get("flag", "--" + field.name.replace("_", "-"))
        if isinstance(value, bool):
            if value:
                argv.append(flag)
            elif "off" in field.metadata:
                argv.append(field.metadata["off"])
        elif isinstance(value, tuple | list) and field.metadata.get("nargs"):
            argv += [flag, *map(str, value)]
        elif isinstance(value, tuple | list):
            for item in value:
                argv += [flag, str(item)]
        elif value is not None:
            argv += [flag, str(value)]
    return argv


@dataclasses.dataclass(frozen=True)
class CorpusTarget:
    """A stage that reads a corpus's shards: what it reads and where its output goes."""

    shards: list[str]  # the corpus's shard URIs
    inputs: dict[str, Any]  # everything that changes the output (hashed into the fingerprint)
    fingerprint: str
    uri: str  # <store>/<kind>/<corpus>/<fingerprint>
    complete: bool  # the output folder is already published


def corpus_target(
    store: Store, kind: str, corpus: str, inputs_for: Callable[[str], dict[str, Any]]
) -> CorpusTarget:
    """The shards of `corpus` and the output folder of a stage whose inputs are
    `inputs_for(corpus fingerprint)`.

    Raises:
        StageError: (code 2) no such corpus; the message says to ingest it first.
    """
    from uts.data import list_shards

    try:
        shards = list_shards(store.uri("corpora", corpus))
    except FileNotFoundError as exc:
        raise StageError(f"{exc}; run jobs/ingest.py first") from exc
    inputs = inputs_for(store.read_json("corpora", corpus, "corpus.json")["fingerprint"])
    fp = content_address(inputs)
    return CorpusTarget(
        shards, inputs, fp, store.uri(kind, corpus, fp), store.is_complete(kind, corpus, fp)
    )
