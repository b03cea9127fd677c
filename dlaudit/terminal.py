"""Text that is safe to print on a terminal.

Everything dlaudit prints passes through :func:`printable`: a string from a model
file (a card's class names), a data file or a path can hold control characters, and
``\\x1b]0;...\\x07`` retitles a terminal, ``\\x1b[2J`` clears it, ``\\r`` overwrites a
line with another; bidirectional overrides reorder what is shown. They are shown as
escapes instead. Newlines and tabs are kept (dlaudit's own layout).
"""

from __future__ import annotations

import re

__all__ = ["printable"]

_UNPRINTABLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f"  # C0 controls but tab and newline, DEL, C1 controls (\x9b is a CSI)
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"  # bidirectional marks, embeddings, overrides and isolates
    "\ud800-\udfff]"  # lone surrogates: bytes of a file name that are not UTF-8 (Python's surrogateescape)
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # the undecodable byte it stands for
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every character that could control a terminal shown as an escape.

    >>> printable("cat\\x1b]0;pwned\\x07 ok\\n")
    'cat\\\\x1b]0;pwned\\\\x07 ok\\n'
    >>> printable("r\\u202egnp.exe")
    'r\\\\u202egnp.exe'
    """
    return _UNPRINTABLE.sub(_escape, text)
