"""Plotly's JavaScript, served from the installed plotly package itself (no CDN, no vendored copy, works offline).

The bundle (about 4.8 MB) is read from `plotly.offline.get_plotlyjs()` and gzipped once per process. Its URL
carries the plotly package version, so browsers may keep it for a year: a new plotly gives a new URL.

Strict CSP (`style-src 'self'`, no inline style): plotly.js adds `<style>` elements when it loads unless an element
with the expected id is already on the page. Its own rules go into `/static/plotly-rules.css` (a `<link>` with id
`plotly.js-style-global`, filled through the CSSOM); the bundled maplibre CSS (map traces, unused here) is skipped
by placing an inert `<template>` with its id, found in the bundle by `INLINE_STYLE_GUARD`.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import re
from dataclasses import dataclass
from typing import Annotated

import plotly  # type: ignore[import-untyped]
from fastapi import APIRouter, Header
from fastapi.responses import Response
from plotly.offline import get_plotlyjs  # type: ignore[import-untyped]

from coalition.web.errors import Refused

router = APIRouter()

PLOTLY_VERSION: str = str(plotly.__version__)
PLOTLY_JS_URL = f"/assets/plotly-{PLOTLY_VERSION}.min.js"
_FOREVER = "public, max-age=31536000, immutable"
# `if(!document.getElementById("ID")){var e=document.createElement("style")…`: CSS a module injects once per page.
INLINE_STYLE_GUARD = re.compile(r'getElementById\("([A-Za-z0-9_-]+)"\)\)\{var \w+=document\.createElement\("style"\)')


@dataclass(frozen=True, slots=True)
class Bundle:
    """One JavaScript file as bytes, gzipped, its strong ETag, and the ids that keep it from injecting <style>."""

    raw: bytes
    gzipped: bytes
    etag: str
    inline_style_ids: tuple[str, ...]


@functools.cache
def plotly_bundle() -> Bundle:
    """plotly.js from the plotly package, read and compressed on first use, then kept for the process."""
    text = get_plotlyjs()
    raw = text.encode("utf-8")
    return Bundle(
        raw,
        gzip.compress(raw, compresslevel=6, mtime=0),
        f'"{hashlib.sha256(raw).hexdigest()[:32]}"',
        tuple(dict.fromkeys(INLINE_STYLE_GUARD.findall(text))),
    )


@router.get("/assets/plotly-{version}.min.js", include_in_schema=False)
def plotly_js(
    version: str,
    accept_encoding: Annotated[str, Header()] = "",
    if_none_match: Annotated[str, Header()] = "",
) -> Response:
    """The plotly.js bundle of the installed plotly (public: a library, not run data), cached for a year."""
    if version != PLOTLY_VERSION:
        raise Refused(404, f"this console serves plotly {PLOTLY_VERSION}, not {version!r}")
    bundle = plotly_bundle()
    headers = {"Cache-Control": _FOREVER, "ETag": bundle.etag, "Vary": "Accept-Encoding"}
    if bundle.etag in (tag.strip() for tag in if_none_match.split(",")):
        return Response(status_code=304, headers=headers)
    if "gzip" in accept_encoding.lower():
        headers["Content-Encoding"] = "gzip"
        body = bundle.gzipped
    else:
        body = bundle.raw
    return Response(body, media_type="text/javascript; charset=utf-8", headers=headers)
