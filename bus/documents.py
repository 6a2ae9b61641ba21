"""The one YAML loader for every document a person hands Coalition (scenarios, policies, price tables): safe types
only, dates left as text, and bounded — size, nesting, alias expansion — with duplicate keys refused at their line.

A 1.4 KB policy of nested aliases ("billion laughs") once expanded to 13.8 GB; a duplicate key silently let the
second value govern. Both are refused here in one line, before any model sees the data. libyaml's C parser is the
base where it is installed (≈ 13× faster than the pure-Python one); the checks are the same either way.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import yaml

MAX_DOCUMENT_BYTES = 1_000_000  # the largest shipped scenario is ~17 KB
MAX_DEPTH = 40  # mappings and sequences inside each other; the shipped documents need 6
MAX_NODES = 100_000  # scalars, mappings and sequences once every alias is expanded

_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MERGE = "tag:yaml.org,2002:merge"


class DocumentError(Exception):
    """A document that cannot be used: `where` is "line L, column C" (or "(file)"), `reason` says what is wrong."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


@cache
def _document_loader() -> Any:
    """SafeLoader (libyaml's when available) without the implicit timestamp resolver: a bad date is then reported
    by the model's validation at its path in the document, which PyYAML's own date parsing cannot do.

    Built on the first document, not at import: a command that reads only what a ledger recorded (`approvals
    list`, the policy of a run) parses no YAML and does not load PyYAML."""
    import yaml

    base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class DocumentLoader(base):  # type: ignore[misc]
        pass

    DocumentLoader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return DocumentLoader


def _at(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "(yaml)"


def read_document(path: Path) -> Any:
    """Read, decode (UTF-8) and load the YAML file at `path`; DocumentError names what is wrong and where."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as exc:
        raise DocumentError("(file)", f"cannot be read: {exc.strerror or exc}") from None
    return load_document(decode_document(raw))


def decode_document(raw: bytes) -> str:
    """UTF-8 text of a document of at most MAX_DOCUMENT_BYTES; DocumentError at the first bad byte's line."""
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise DocumentError("(file)", f"larger than {MAX_DOCUMENT_BYTES:,} bytes; a document is expected to be small")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DocumentError(f"line {line}, column {column}", f"not UTF-8 text (byte 0x{raw[exc.start]:02x})") from None


def load_document(text: str) -> Any:
    """Parse one bounded YAML document; DocumentError (with line and column where known) on any problem."""
    if len(text.encode("utf-8", errors="surrogatepass")) > MAX_DOCUMENT_BYTES:
        raise DocumentError("(file)", f"larger than {MAX_DOCUMENT_BYTES:,} bytes; a document is expected to be small")
    import yaml

    try:
        _check_events(text)
        loader = _document_loader()(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _check_nodes(node)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        problem = exc.problem or str(exc).splitlines()[0]
        raise DocumentError(_at(exc.problem_mark), f"invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:  # the reader's "unacceptable character" errors carry no mark
        raise DocumentError("(yaml)", f"invalid YAML: {' '.join(str(exc).split())}") from None


def _check_events(text: str) -> None:
    """Nesting depth, from the parser's events, before anything is built (a deep document is refused early)."""
    import yaml

    loader = _document_loader()(text)
    try:
        depth = 0
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise DocumentError(_at(event.start_mark), f"nested deeper than {MAX_DEPTH} levels")
            elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                depth -= 1
    finally:
        loader.dispose()


def _check_nodes(root: yaml.Node) -> None:
    """Duplicate keys (with both lines) and the size once aliases are expanded (shared nodes counted each time)."""
    import yaml

    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        known = sizes.get(id(node))
        if known == 0:
            raise DocumentError(_at(node.start_mark), "an alias refers to a value that contains it (a cycle)")
        if known is not None:
            return known
        sizes[id(node)] = 0  # in progress: meeting it again below means a cycle
        total = 1
        if isinstance(node, yaml.MappingNode):
            seen: dict[tuple[str, str], yaml.Node] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != _MERGE:
                    first = seen.setdefault((key.tag, key.value), key)
                    if first is not key:
                        raise DocumentError(
                            _at(key.start_mark),
                            f"duplicate key {key.value!r} (first at line {first.start_mark.line + 1})",
                        )
                total += size(key) + size(value)
        elif isinstance(node, yaml.SequenceNode):
            total += sum(size(item) for item in node.value)
        if total > MAX_NODES:
            raise DocumentError(
                _at(node.start_mark), f"expands to more than {MAX_NODES:,} values (aliases nested too far)"
            )
        sizes[id(node)] = total
        return total

    size(root)
