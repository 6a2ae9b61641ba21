"""What reaches a terminal: text the ledger stored (model answers, rationales, names, reasons) can carry escape
sequences, NUL, carriage returns or bidi overrides that repaint a screen or reorder what an auditor reads. Every
CLI printer goes through `clean` (one-line errors) or `TerminalConsole` (everything rich renders), which show each
such character as a visible escape (\\x1b, \\u202e) instead of letting the terminal act on it."""

from __future__ import annotations

import re
from collections.abc import Iterable

from rich.console import Console
from rich.segment import Segment

# C0 controls except tab and newline, DEL and the C1 controls, the bidi embedding/override/isolate marks (the
# "Trojan Source" set) and the Unicode line and paragraph separators.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(text: str) -> str:
    """`text` with every control and bidi character replaced by its visible escape."""
    return _UNSAFE.sub(_visible, text)


def json_text(document: str) -> str:
    """JSON text with every control and bidi character written as its \\uXXXX escape: the same JSON value for a
    parser, nothing a terminal acts on (such characters can only stand inside JSON strings)."""
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", document)


class TerminalConsole(Console):
    """A rich Console that cleans every piece of text it writes (its own styling and cursor control untouched)."""

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        return super()._render_buffer(
            segment if segment.control else Segment(clean(segment.text), segment.style) for segment in buffer
        )
