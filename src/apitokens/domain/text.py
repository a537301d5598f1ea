"""Text a caller sends that is stored, or shown on a terminal or a page: what it may contain."""

from __future__ import annotations

import re

FORBIDDEN_CLASS = (
    "\\x00-\\x1f\\x7f-\\x9f"  # C0 and C1 control characters, DEL
    "\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069"  # bidirectional controls
    "\\u2028\\u2029"  # line and paragraph separators
)
"""What a name may not contain, as the body of a regex class (ECMA 262 and Python alike).
Lone surrogates (U+D800 to U+DFFF) are refused too; no JSON Schema pattern can name them."""

_FORBIDDEN = re.compile(f"[{FORBIDDEN_CLASS}\\ud800-\\udfff]")
_SURROGATE = re.compile("[\\ud800-\\udfff]")
_UNSHOWABLE = re.compile(f"[{FORBIDDEN_CLASS}\\ud800-\\udfff]")


def lone_surrogate(text: str) -> str | None:
    """A description of the first lone surrogate in ``text``, or None."""
    found = _SURROGATE.search(text)
    if found is None:
        return None
    return f"U+{ord(found.group()):04X} at position {found.start()}"


def forbidden_character(text: str) -> str | None:
    """A description of the first control, bidi control or lone surrogate, or None."""
    found = _FORBIDDEN.search(text)
    if found is None:
        return None
    return f"U+{ord(found.group()):04X} at position {found.start()}"


def printable(text: str) -> str:
    """``text`` with every control, bidi control and lone surrogate written as an escape,
    so that quoting it in a message can neither break the encoding nor drive a terminal."""
    return _UNSHOWABLE.sub(lambda found: f"\\u{ord(found.group()):04x}", text)
