"""The Unified Tag System: normalise tags, count and score them, and use the vocabulary."""

from uts.tags.normalize import NORMALIZER_VERSION, normalize_tag, normalize_tags, tag_key
from uts.tags.sources import TagInputError, resolve_sources
from uts.tags.vocab import Vocabulary, VocabularyError, load_vocab, rank_tags, tag_scores

__all__ = [
    "NORMALIZER_VERSION",
    "TagInputError",
    "Vocabulary",
    "VocabularyError",
    "load_vocab",
    "normalize_tag",
    "normalize_tags",
    "rank_tags",
    "resolve_sources",
    "tag_key",
    "tag_scores",
]
