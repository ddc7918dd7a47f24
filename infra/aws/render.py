"""Write a copy of infra/aws/cluster.yaml with other autoscaling limits, region, AMI or IAM profile.

    python infra/aws/render.py --max-llm-workers 2 --max-train-workers 1 --region us-east-1 \\
        --ami ami-0123456789abcdef0 -o cluster.rendered.yaml
    ray up -y cluster.rendered.yaml        # from the repository root, like cluster.yaml

The Ray cluster launcher has no templating, so cluster.yaml is plain YAML with its limits marked
"# LIMIT"; this script loads it, changes the values asked for and writes the result (to stdout by
default). The copy keeps every setting but not the comments: edit cluster.yaml, render again.
Group flags apply to every node type of the group: --max-llm-workers to llm-*, --max-train-workers
to train-*, --max-cpu-workers to cpu*; --min/--max TYPE=N set one node type (applied after them).
Exit codes: 0 written, 2 a bad flag or an inconsistent result (the message says which).
Needs only the standard library and PyYAML.
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

DEFAULT_CONFIG = Path(__file__).resolve().parent / "cluster.yaml"
GROUPS = {"cpu": "cpu", "llm": "llm-", "train": "train-"}  # group flag -> node type name prefix


class RenderError(ValueError):
    """An override that does not fit the config; the message names the flag and the node type."""


def node_count(text: str) -> tuple[str, int]:
    """Parse TYPE=N (argparse type for --min/--max)."""
    name, sep, value = text.partition("=")
    if not sep or not name or not value.isdigit():
        raise argparse.ArgumentTypeError(f"expected NODE_TYPE=N with N >= 0, got {text!r}")
    return name, int(value)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="render.py", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG, help="source (default: cluster.yaml here)"
    )
    parser.add_argument("-o", "--output", default="-", help="file to write, or - (default stdout)")
    parser.add_argument("--cluster-name", default=None, help="cluster_name (default uts)")
    parser.add_argument("--region", default=None, help="provider.region (default us-west-2)")
    parser.add_argument(
        "--availability-zone",
        default=None,
        help="provider.availability_zone, e.g. us-east-1a,us-east-1b",
    )
    parser.add_argument("--max-workers", type=int, default=None, help="worker nodes in total")
    parser.add_argument(
        "--idle-timeout-minutes", type=float, default=None, help="idle minutes before scale-down"
    )
    for group in GROUPS:
        parser.add_argument(
            f"--max-{group}-workers",
            type=int,
            default=None,
            help=f"max_workers of every {GROUPS[group]}* node type",
        )
    parser.add_argument(
        "--min", type=node_count, action="append", default=[], metavar="TYPE=N",
        help="min_workers of one node type (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--max", type=node_count, action="append", default=[], metavar="TYPE=N",
        help="max_workers of one node type (repeatable)",
    )  # fmt: skip
    parser.add_argument("--ami", default=None, help="ImageId of every node type")
    parser.add_argument(
        "--worker-instance-profile",
        default=None,
        metavar="ARN",
        help="IamInstanceProfile of every worker node type (S3 access for --store s3://...)",
    )
    return parser.parse_args(argv)


def render(config: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The config with the overrides of `args` applied; the input is not modified.

    Raises:
        RenderError: a node type that does not exist, a group flag that matches no node type, a
            negative count, or limits that contradict each other (min above max, the min_workers
            of all types above the global max_workers).
    """
    out = copy.deepcopy(config)
    types: dict[str, dict[str, Any]] = out["available_node_types"]
    head = out["head_node_type"]
    workers = [name for name in types if name != head]

    if args.cluster_name is not None:
        out["cluster_name"] = args.cluster_name
    if args.region is not None:
        out["provider"]["region"] = args.region
        if args.availability_zone is None:
            out["provider"].pop("availability_zone", None)  # zones belong to the old region
    if args.availability_zone is not None:
        out["provider"]["availability_zone"] = args.availability_zone
    if args.max_workers is not None:
        out["max_workers"] = _count("--max-workers", args.max_workers)
    if args.idle_timeout_minutes is not None:
        if args.idle_timeout_minutes <= 0:
            raise RenderError(
                f"--idle-timeout-minutes must be > 0, got {args.idle_timeout_minutes}"
            )
        out["idle_timeout_minutes"] = args.idle_timeout_minutes

    for group, prefix in GROUPS.items():
        value = getattr(args, f"max_{group}_workers")
        if value is None:
            continue
        matched = [name for name in workers if name.startswith(prefix)]
        if not matched:
            raise RenderError(f"--max-{group}-workers: no node type starts with {prefix!r}")
        for name in matched:
            types[name]["max_workers"] = _count(f"--max-{group}-workers", value)
    for flag, key, pairs in (
        ("--min", "min_workers", args.min),
        ("--max", "max_workers", args.max),
    ):
        for name, value in pairs:
            if name not in workers:
                raise RenderError(f"{flag} {name}={value}: no worker node type {name!r}; "
                                  f"choose from {', '.join(workers)}")  # fmt: skip
            types[name][key] = value

    for name, node in types.items():
        if args.ami is not None:
            node["node_config"]["ImageId"] = args.ami
        if args.worker_instance_profile is not None and name != head:
            node["node_config"]["IamInstanceProfile"] = {"Arn": args.worker_instance_profile}

    for name in workers:
        low, high = types[name].get("min_workers", 0), types[name].get("max_workers")
        if high is not None and low > high:
            raise RenderError(f"node type {name}: min_workers {low} > max_workers {high}")
    total_min = sum(types[name].get("min_workers", 0) for name in workers)
    if total_min > out["max_workers"]:
        raise RenderError(f"the min_workers of all node types add up to {total_min}, "
                          f"more than max_workers {out['max_workers']}")  # fmt: skip
    return out


def _count(flag: str, value: int) -> int:
    if value < 0:
        raise RenderError(f"{flag} must be >= 0, got {value}")
    return value


class _PlainDumper(yaml.SafeDumper):
    """Writes shared objects out in full instead of as &anchors/*aliases (easier to read)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump(config: dict[str, Any], argv: Sequence[str]) -> str:
    header = (
        "# Rendered from infra/aws/cluster.yaml by infra/aws/render.py; edit that file, not this one.\n"
        f"# python infra/aws/render.py {' '.join(argv)}\n"
    )
    body = yaml.dump(config, Dumper=_PlainDumper, sort_keys=False, width=100)
    return header + body


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    try:
        config = yaml.safe_load(args.config.read_text())
        text = dump(render(config, args), argv)
    except (OSError, yaml.YAMLError) as exc:
        print(f"render.py: cannot read {args.config}: {exc}", file=sys.stderr)
        return 2
    except RenderError as exc:
        print(f"render.py: {exc}", file=sys.stderr)
        return 2
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
