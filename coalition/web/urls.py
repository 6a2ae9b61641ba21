"""URL building shared by the routes and the templates."""

from __future__ import annotations

from urllib.parse import quote


def path_segment(value: object) -> str:
    """One URL path segment: every reserved character encoded (a run id may hold `/`, `?`, `#` or spaces)."""
    return quote(str(value), safe="")
