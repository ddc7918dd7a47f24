"""AudioSet labels from corpus metadata: the label baseline the paper compares UTS tags against.

Each pretraining clip gets the AudioSet ontology classes its metadata supports (the corpus's `labels`
JSON, its domain and its file name) through the one table `RULES` (uts.tags.audioset_rules), plus
their ancestors in the ontology. Classes the ontology restricts (`abstract`, `blacklist`: "Human
voice", "Sounds of things", ...) are walked through for ancestors but never given as labels, as in
the released AudioSet. A clip the table maps to nothing is a failed row with the reason.

Tags are the class names in one deterministic form, `tag_form`: parentheses and commas become
separators and the vocabulary's normaliser is applied ("Male speech, man speaking" ->
`male-speech-man-speaking`, "Keyboard (musical)" -> `keyboard-musical`); every name of the ontology
keeps a distinct identity under `uts.tags.normalize.tag_key`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from uts.llm.backends import TAG_SCHEMA
from uts.tags.audioset_rules import RULES, Rule, rules_digest
from uts.tags.normalize import normalize_tag, normalize_tags

__all__ = [
    "LABELS_VERSION",
    "LABEL_COLUMNS",
    "RULES",
    "Ontology",
    "Rule",
    "clip_classes",
    "clip_labels",
    "labels_tags_table",
    "load_ontology",
    "parse_ontology",
    "rules_digest",
    "tag_form",
]

LABELS_VERSION = "1"  # bump when the matching (not the table: its digest is fingerprinted) changes
LABEL_COLUMNS = ("clip_id", "labels", "domain", "partition")
RESTRICTIONS = frozenset({"abstract", "blacklist"})
_LETTERS = re.compile(r"[a-z]+")
_AUDIO_SUFFIX = re.compile(r"\.(wav|flac|ogg|oga|opus|mp3)$")


@dataclass(frozen=True)
class Ontology:
    """The AudioSet class tree (a DAG: "Bell" has two parents) by class name."""

    parents: Mapping[str, tuple[str, ...]]  # name -> parent names, in the file's order
    restricted: frozenset[str]  # names of abstract or blacklisted classes
    sha256: str  # of the file's bytes

    def ancestors(self, name: str) -> list[str]:
        """Every ancestor of a class, nearest first (breadth first), restricted ones included.

        Raises:
            KeyError: no class has this name.
        """
        seen: dict[str, None] = {}
        frontier = list(self.parents[name])
        while frontier:
            step: list[str] = []
            for parent in frontier:
                if parent not in seen:
                    seen[parent] = None
                    step.extend(self.parents[parent])
            frontier = step
        return list(seen)

    def closure(self, name: str) -> frozenset[str]:
        """The class and every ancestor (restricted ones included)."""
        return frozenset({name, *self.ancestors(name)})

    def _chosen(self, parents: tuple[str, ...], context: frozenset[str]) -> tuple[str, ...]:
        """The parents a clip's other classes support: those sharing the most ancestors with
        them; none supported: the restricted (generic) parents, else all."""
        if len(parents) < 2:
            return parents
        shared = [len(self.closure(p) & context) for p in parents]
        if max(shared) > 0:
            return tuple(p for p, n in zip(parents, shared, strict=True) if n == max(shared))
        return tuple(p for p in parents if p in self.restricted) or parents

    def labels(self, names: Iterable[str]) -> list[str]:
        """The classes and their ancestors, first-seen order, restricted classes left out.

        A class with several parents ("Growling": Dog, Cat, Roaring cats, Canidae) goes up only
        through the parents the clip's other classes support (a wolf's growl: Canidae), so that
        sharing a sound word does not make a wolf a cat.

        Raises:
            KeyError: a name is not a class of the ontology.
        """
        classes = list(dict.fromkeys(names))
        out: dict[str, None] = {}
        for name in classes:
            context = frozenset().union(*(self.closure(c) for c in classes if c != name))
            seen, frontier = {name}, [name]
            while frontier:
                node = frontier.pop(0)
                if node not in self.restricted:
                    out.setdefault(node, None)
                for parent in self._chosen(self.parents[node], context):
                    if parent not in seen:
                        seen.add(parent)
                        frontier.append(parent)
        return list(out)


def parse_ontology(data: bytes) -> Ontology:
    """Read ontology.json (a list of {id, name, child_ids, restrictions}).

    Raises:
        ValueError: not such a list, a duplicate id or name, or a child id that is no class.
    """
    rows = json.loads(data)
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ValueError("the ontology must be a JSON list of class objects")
    names = {r["id"]: r["name"] for r in rows}
    if len(names) != len(rows) or len(set(names.values())) != len(rows):
        raise ValueError("the ontology repeats a class id or name")
    parents: dict[str, list[str]] = {r["name"]: [] for r in rows}
    for row in rows:
        for child in row["child_ids"]:
            if child not in names:
                raise ValueError(f"class {row['name']!r} names an unknown child {child!r}")
            parents[names[child]].append(row["name"])
    restricted = frozenset(r["name"] for r in rows if RESTRICTIONS & set(r.get("restrictions", ())))
    return Ontology(parents={k: tuple(v) for k, v in parents.items()}, restricted=restricted,
                    sha256=hashlib.sha256(data).hexdigest())  # fmt: skip


@functools.cache
def load_ontology() -> Ontology:
    """The ontology shipped with the package (uts/tags/data/audioset_ontology.json)."""
    data = (resources.files("uts.tags") / "data" / "audioset_ontology.json").read_bytes()
    return parse_ontology(data)


def tag_form(name: str) -> str:
    """A class name as a tag: `Dental drill, dentist's drill` -> `dental-drill-dentist's-drill`.

    Raises:
        ValueError: nothing usable is left of the name.
    """
    form = normalize_tag(re.sub(r"[(),]", " ", name))
    if form is None:
        raise ValueError(f"class name {name!r} gives no tag")
    return form


def _words(value: Any) -> frozenset[str]:
    text = json.dumps(value) if isinstance(value, bool) else str(value).lower()
    return frozenset({text, *_LETTERS.findall(text)})


def _holds(words: frozenset[str], wanted: Iterable[str]) -> bool:
    return any(all(part in words for part in w.split("+")) for w in wanted)


def clip_classes(labels: Mapping[str, Any], domain: str, clip_id: str,
                 rules: Iterable[Rule] = RULES) -> list[str]:  # fmt: skip
    """The classes the table gives a clip (before ancestors), in table order."""
    name = _AUDIO_SUFFIX.sub("", clip_id.lower().rsplit("/", 1)[-1])
    fields = {k: _words(v) for k, v in labels.items() if isinstance(v, str | int | float | bool)}
    fields |= {"domain": _words(domain), "name": _words(name)}
    source = str(labels.get("set", ""))
    out: dict[str, None] = {}
    for rule in rules:
        held = fields.get(rule.field)
        if rule.source not in ("*", source) or held is None:
            continue
        if _holds(held, rule.words) and not _holds(held, rule.unless):
            out |= dict.fromkeys(rule.classes)
    return list(out)


def clip_labels(labels: Mapping[str, Any], domain: str, clip_id: str) -> list[str]:
    """The clip's AudioSet labels: its classes and their ancestors, restricted classes left out."""
    return load_ontology().labels(clip_classes(labels, domain, clip_id))


def _metadata(text: str) -> tuple[dict[str, Any], str | None]:
    """The labels JSON as a dict, or the reason it is unusable."""
    try:
        labels = json.loads(text)
    except json.JSONDecodeError as exc:
        return {}, f"the labels column is not JSON ({exc.msg})"
    if not isinstance(labels, dict):
        return {}, "the labels column is not a JSON object"
    return labels, None


def _label_row(row: Mapping[str, Any]) -> dict[str, Any]:
    text = row["labels"] or "{}"
    labels, problem = _metadata(text)
    names = [] if problem else clip_labels(labels, row["domain"] or "", row["clip_id"])
    if not names and problem is None:
        problem = f"no AudioSet class maps from domain={row['domain']!r}, labels={text}"
    raw = json.dumps({"domain": row["domain"], "labels": labels, "classes": names}, sort_keys=True)
    return {"clip_id": row["clip_id"], "tags": normalize_tags(tag_form(n) for n in names),
            "raw": raw, "status": "failed" if problem else "ok", "error": problem,
            "domain": row["domain"]}  # fmt: skip


def labels_tags_table(shard: pa.Table) -> pa.Table:
    """Corpus rows -> tag rows holding the AudioSet labels of the pretraining clips."""
    pretrain = shard.filter(pc.equal(shard.column("partition"), "pretrain"))
    rows = [_label_row(row) for row in pretrain.select(list(LABEL_COLUMNS)).to_pylist()]
    return pa.Table.from_pylist(rows, schema=TAG_SCHEMA)
