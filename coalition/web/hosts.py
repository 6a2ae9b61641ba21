"""Which `Host` header values the console answers to, and the console instance a request reaches.

DNS rebinding points an attacker's name at 127.0.0.1 so that a page from the attacker's site can read the console
as same-origin; the browser still sends the attacker's name as `Host`. So only loopback names (with the console's
port, when known) and the names configured with `coalition serve --allow-host` are answered; anything else is a
400 naming the header, before any route runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

LOOPBACK_NAMES: frozenset[str] = frozenset({"127.0.0.1", "localhost", "[::1]"})


def split_host(value: str) -> tuple[str, int | None] | None:
    """("name", port or None) of a Host header value, lower-cased; None when it is not a host[:port]."""
    value = value.strip().lower()
    if not value or any(c.isspace() or c in "/\\@?#" for c in value):
        return None
    if value.startswith("["):
        name, bracket, rest = value.partition("]")
        if not bracket:
            return None
        name += "]"
        if not rest:
            return name, None
        if not rest.startswith(":"):
            return None
        port_text = rest[1:]
    else:
        name, colon, port_text = value.partition(":")
        if not colon:
            return name, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return None
    return name, int(port_text)


@dataclass(frozen=True, slots=True)
class HostAllowlist:
    """Loopback names with the console's `port` (any port if None), plus configured names ("name" or "name:port").

    A configured name without a port is answered with no port (behind a proxy on 80/443) or the console's port.
    """

    port: int | None = None
    names: tuple[str, ...] = ()

    @classmethod
    def of(cls, port: int | None, names: Iterable[str] = ()) -> HostAllowlist:
        checked = []
        for name in names:
            if split_host(name) is None:
                raise ValueError(f"--allow-host {name!r} is not a host name or host:port")
            checked.append(name.strip().lower())
        return cls(port, tuple(checked))

    def allows(self, host: str | None) -> bool:
        parsed = split_host(host or "")
        if parsed is None:
            return False
        name, port = parsed
        if name in LOOPBACK_NAMES and (self.port is None or port == self.port):
            return True
        for configured in self.names:
            c_name, c_port = split_host(configured) or ("", None)
            if c_name != name:
                continue
            if c_port is not None:
                if port == c_port:
                    return True
            elif port is None or self.port is None or port == self.port:
                return True
        return False

    def describe(self) -> str:
        port = f":{self.port}" if self.port is not None else "[:any port]"
        loopback = ", ".join(f"{n}{port}" for n in sorted(LOOPBACK_NAMES))
        return loopback + "".join(f", {n}" for n in self.names)


def instance_of(host: str | None) -> str:
    """The console instance a request reached, as its normalised host:port (sessions are bound to it)."""
    parsed = split_host(host or "")
    if parsed is None:
        return ""
    name, port = parsed
    return name if port is None else f"{name}:{port}"


def cookie_suffix(host: str | None) -> str:
    """ "_PORT" for a Host with a port, else "": two consoles on one machine use different cookie names."""
    parsed = split_host(host or "")
    return f"_{parsed[1]}" if parsed is not None and parsed[1] is not None else ""
