"""Screen untrusted text (news, complaints, regulators' prose) for injection patterns: a signal, never a gate.

Agents never act on instructions found in such text; the screen only labels it so the label can travel
with the evidence (e.g. in research's shortlist) and be audited.
"""

from __future__ import annotations

import re
from typing import Final

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


def screen(text: str | None) -> list[str]:
    """The names of the suspicious patterns the text matches, in a fixed order (empty when clean)."""
    if not text:
        return []
    return [name for name, pattern in _PATTERNS if pattern.search(text)]
