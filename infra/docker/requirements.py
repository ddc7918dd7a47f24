"""Print the dependencies of pyproject.toml, one per line, for `pip install -r` (the Dockerfile).

    python infra/docker/requirements.py                       # [project] dependencies
    python infra/docker/requirements.py --extras llm,dev      # and those optional groups

The image installs the dependencies in a layer of their own, before the source is copied, so a
code change does not reinstall them. Standard library only (it runs in the bare base image).
Exit codes: 0 printed, 2 an unknown extra (the message lists the known ones).
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path


def requirements(pyproject: Path, extras: Sequence[str]) -> list[str]:
    """The requirement strings of the project and of the named optional groups, in file order.

    Raises:
        KeyError: an extra that pyproject.toml does not define (the message lists the known ones).
    """
    with pyproject.open("rb") as f:
        project = tomllib.load(f)["project"]
    optional: dict[str, list[str]] = project.get("optional-dependencies", {})
    out = list(project.get("dependencies", []))
    for name in extras:
        if name not in optional:
            raise KeyError(
                f"{pyproject} has no extra {name!r}; known: {', '.join(sorted(optional))}"
            )
        out.extend(optional[name])
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="requirements.py", description=__doc__.splitlines()[0])
    parser.add_argument("--pyproject", type=Path, default=Path("pyproject.toml"))
    parser.add_argument("--extras", default="", help="comma-separated optional groups")
    args = parser.parse_args(argv)
    extras = [name.strip() for name in args.extras.split(",") if name.strip()]
    try:
        lines = requirements(args.pyproject, extras)
    except KeyError as exc:
        print(f"requirements.py: {exc.args[0]}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
