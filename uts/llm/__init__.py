"""LLM stages' row logic shared by every backend: prompts, parsing, caption lint, the rules tagger."""

from uts.llm.parse import PARSER_VERSION, Parsed, lint_caption, parse_labels
from uts.llm.prompts import Prompt, load_prompt
from uts.llm.rules import RULES_VERSION, rules_tags

__all__ = [
    "PARSER_VERSION",
    "RULES_VERSION",
    "Parsed",
    "Prompt",
    "lint_caption",
    "load_prompt",
    "parse_labels",
    "rules_tags",
]
