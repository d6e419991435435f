"""Text normalisation shared by corpus preparation, training and scoring."""

from __future__ import annotations

import re
import unicodedata

_NOT_ALLOWED = re.compile(r"[^a-z' ]+")
_SPACES = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Lowercase, strip accents, map everything but ``a-z``, apostrophe and space to a space.

    Example:
        >>> normalize_text("  H I N I C H, twenty-four!")
        'h i n i c h twenty four'
    """
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    return _SPACES.sub(" ", _NOT_ALLOWED.sub(" ", text)).strip()
