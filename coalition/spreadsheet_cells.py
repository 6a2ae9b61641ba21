"""Cells written to CSV that a spreadsheet must show as text: a ledger export holds rationales and reasons people
and models wrote, and a cell starting with a formula character runs as a formula when the file is opened (OWASP
CSV injection). The console's export and the CLI's `ledger list --csv` write their cells through `formula_safe`.
"""

from __future__ import annotations

# Spreadsheets read a cell as a formula when it starts with one of these, also after leading blanks (Excel and
# LibreOffice skip spaces; a tab or CR at the start is itself a trigger in some importers). The full-width forms
# (＝ ＋ － ＠) are folded to these by some spreadsheets' input normalisation.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_LEADING_BLANKS = " \t\r\n\u00a0\u3000"


def formula_safe(text: str) -> str:
    """The cell with a leading `'` when a spreadsheet could run it as a formula."""
    if text[:1] in _FORMULA_STARTS or text.lstrip(_LEADING_BLANKS)[:1] in _FORMULA_STARTS:
        return "'" + text
    return text
