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
from collections.abc import Mapping
from typing import Any

__all__ = ["StageError", "content_address", "spec_argv"]


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
