"""Stored text reaches a terminal as text: escape sequences, NUL, carriage returns and bidi overrides are shown as
visible escapes by the one sanitiser every CLI printer uses, and rich's own styling still works around them."""

from __future__ import annotations

import io

from hypothesis import given
from hypothesis import strategies as st
from rich.table import Table

from coalition.cli.terminal import TerminalConsole, clean

BIDI = "\u061c\u200e\u200f\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
HOSTILE = "ok\x1b]0;pwned\x07\x1b[2J\x00\rTOTAL 0\u202egnp.exe\u2066x\u2069\x9b31m"


class TestClean:
    """What `clean` keeps, and what it makes visible."""

    def test_controls_and_bidi_become_visible_escapes(self) -> None:
        assert clean(HOSTILE) == ("ok\\x1b]0;pwned\\x07\\x1b[2J\\x00\\x0dTOTAL 0\\u202egnp.exe\\u2066x\\u2069\\x9b31m")

    def test_ordinary_text_tabs_and_newlines_pass(self) -> None:
        text = "Precio €58/MWh — 東京\tnext line\n✓"
        assert clean(text) == text

    @given(st.text())
    def test_nothing_unsafe_survives(self, text: str) -> None:
        out = clean(text)
        assert not any(ord(c) < 0x20 and c not in "\t\n" for c in out)
        assert not any(0x7F <= ord(c) <= 0x9F for c in out)
        assert not any(
            c in out for c in "\u061c\u200e\u200f\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
        )


class TestTerminalConsole:
    """Everything rich renders goes through `clean`; its own colours are still written."""

    def test_a_table_cell_cannot_reach_the_terminal(self) -> None:
        buffer = io.StringIO()
        console = TerminalConsole(file=buffer, force_terminal=True, color_system="standard", width=200)
        table = Table("rationale")
        table.add_row(HOSTILE)
        console.print(table)
        console.print(f"[red]{HOSTILE}[/red]", markup=True)
        out = buffer.getvalue()
        assert "\x1b]0;" not in out
        assert "\x1b[2J" not in out
        assert "\x00" not in out
        assert "\r" not in out
        assert "\u202e" not in out
        assert "\\x1b[2J" in out
        assert "\x1b[31m" in out  # rich's own red, untouched
