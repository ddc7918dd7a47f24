"""Prompts live in versioned files (`prompts/<name>_v<N>.txt`); the version is part of every stage
fingerprint, so changing a prompt means a new file and a new output folder."""

from __future__ import annotations

from importlib import resources

__all__ = ["Prompt", "load_prompt"]


class Prompt:
    def __init__(self, name: str, version: int, text: str) -> None:
        self.name, self.version, self.text = name, version, text

    @property
    def id(self) -> str:
        return f"{self.name}_v{self.version}"

    def render(self, **fields: str) -> str:
        """The prompt with `{field}` placeholders filled (other braces are left alone)."""
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
