"""YAML for policy and scenario files: safe, and with dates left as text so that pydantic validates them and a
bad date is reported at its path in the document (PyYAML's own date parsing raises without a location)."""

from __future__ import annotations

from typing import Any

import yaml

_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class DocumentLoader(yaml.SafeLoader):
    """SafeLoader without the implicit timestamp resolver."""


DocumentLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_document(text: str) -> Any:
    """Parse one YAML document; raises yaml.YAMLError (with a problem mark) on bad syntax."""
    return yaml.load(text, Loader=DocumentLoader)  # noqa: S506 - DocumentLoader is a SafeLoader
