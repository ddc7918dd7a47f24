"""Prompts live in versioned files (`prompts/<name>_v<N>.txt`); the version is part of every stage
fingerprint, so changing a prompt means a new file and a new output folder. A user's own prompt
(`tag.py --prompt-file`) is read with `prompt_from_file`; its text is fingerprinted."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

__all__ = ["PROMPT_FIELDS", "Prompt", "load_prompt", "prompt_from_file"]

# What a tagging prompt file may name: the caption ({caption} is the same text, the name the
# paper's extract_tags.py uses).
PROMPT_FIELDS = ("description", "caption")


class Prompt:
    """Prompt text with `{field}` placeholders. `python_format`: the text is a Python format
    string (literal braces doubled, as in a TEMPLATE copied from Python source) rendered with
    str.format; otherwise only the named placeholders are replaced and other braces stay."""

    def __init__(self, name: str, version: int, text: str, *, python_format: bool = False) -> None:
        self.name, self.version, self.text = name, version, text
        self.python_format = python_format

    @property
    def id(self) -> str:
        return f"{self.name}_v{self.version}"

    def render(self, **fields: str) -> str:
        """The prompt with `{field}` placeholders filled (other braces are left alone)."""
        if self.python_format:
            return self.text.format(**fields)
        out = self.text
        for key, value in fields.items():
            out = out.replace("{" + key + "}", value)
        return out


def load_prompt(name: str, version: int = 1) -> Prompt:
    """Raises FileNotFoundError naming the missing prompt file."""
    path = resources.files("uts.llm") / "prompts" / f"{name}_v{version}.txt"
    if not path.is_file():
        raise FileNotFoundError(f"no prompt file {name}_v{version}.txt in uts/llm/prompts")
    return Prompt(name, version, path.read_text(encoding="utf-8"))


def prompt_from_file(path: str) -> Prompt:
    """A tagging prompt from a file: its text exactly, with {description} (or {caption}) where the
    caption goes. Text with doubled braces ({{ }}) is read as a Python format string.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the text names no caption placeholder, or a placeholder other than those in
            PROMPT_FIELDS (the message names it).
    """
    import string

    from uts.store import open_fs

    fs, where = open_fs(path)
    if not fs.exists(where):
        raise FileNotFoundError(f"no prompt file {path}")
    with fs.open(where, "r", encoding="utf-8") as f:
        text = f.read()
    python_format = "{{" in text or "}}" in text
    if python_format:
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
        except ValueError as exc:
            raise ValueError(f"{path}: not a valid format string ({exc})") from exc
    else:
        names = set(re.findall(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", text))  # JSON braces do not match
    unknown = sorted(names - set(PROMPT_FIELDS))
    if unknown or not names:
        found = (
            f"it names {', '.join('{' + n + '}' for n in unknown)}" if unknown else "it names none"
        )
        raise ValueError(f"{path}: a tagging prompt needs {{description}} or {{caption}} where the "
                         f"caption goes, and no other placeholder; {found}")  # fmt: skip
    return Prompt(f"file:{Path(where).name}", 0, text, python_format=python_format)
