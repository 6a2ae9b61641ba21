"""Redis commands written as RESP by hand, for the bus's publish transaction: a command's fixed head is packed once
per call and each entry adds one length line and its bytes, where redis-py's packer spends several Python calls per
argument (what made its pipelines cost more than the codec)."""

from __future__ import annotations

MULTI = b"*1\r\n$5\r\nMULTI\r\n"
EXEC = b"*1\r\n$4\r\nEXEC\r\n"


def _bulk(data: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(data), data)


def command(*args: bytes) -> bytes:
    """One command of bytes arguments as RESP."""
    return b"".join([b"*%d\r\n" % len(args), *map(_bulk, args)])


def command_head(total: int, *args: bytes) -> bytes:
    """The first arguments of a command of `total` arguments; each of the rest follows as `$<length>` CRLF, its bytes,
    CRLF (written inline by the caller: one format per entry, not a call)."""
    return b"".join([b"*%d\r\n" % total, *map(_bulk, args)])


CRLF = b"\r\n"
