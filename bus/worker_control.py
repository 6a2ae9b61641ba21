"""The control plane of agent workers on Redis: heartbeats, run announcements, step barriers and step reports.

None of it is part of a run's story (nothing here is recorded; the traffic of the run itself stays on the run's
signed streams). Keys:

- `coalition:workers` (a set of names) and `coalition:worker:<name>` (the worker's last heartbeat as JSON, with a
  TTL): a worker whose key expired is dead, whatever the set still says;
- `coalition:agent-runs` (a hash run id → the run's announcement, an envelope signed by its coordinator for that
  run id: coalition.bus.control_messages): the runs served by agent workers right now;
- `{<namespace>}:agent-barrier` and `{<namespace>}:agent-done`: per run, streams read without consumer groups by
  every worker (barriers: envelopes signed by the coordinator, coalition.bus.control_messages) and by the
  coordinator (reports). The namespace is the run's hash tag, so on a Redis
  Cluster they live in the run's slot and go when the run's streams are deleted.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import orjson
import redis
from pydantic import BaseModel, ConfigDict, Field
from redis.cluster import RedisCluster

from coalition.bus.errors import BusError, BusUnavailable

WORKERS_SET = "coalition:workers"
WORKER_PREFIX = "coalition:worker:"
RUNS_KEY = "coalition:agent-runs"
_FIELD = b"j"


class Heartbeat(BaseModel):
    """What a worker says of itself every beat: who, where, which agents it serves, which runs it is in."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1, max_length=200)
    host: str
    pid: int
    agents: list[str]
    runs: list[str] = Field(default_factory=list)
    only_run: str | None = None  # a worker started for one run (--run) serves no other
    beat_at: str  # wall-clock ISO time of the beat (operations data: never part of a run)
    started_at: str

    def serves(self, agent: str, run_id: str) -> bool:
        return agent in self.agents and self.only_run in (None, run_id)


def beat_time() -> str:
    """The wall-clock time of a heartbeat, ISO 8601 in UTC: operations data about a process, read here in the
    control plane so that nothing under scenarios/ reads the wall clock (nothing of a run depends on it)."""
    return datetime.now(UTC).isoformat()


def wall_deadline(seconds: float) -> str:
    """The wall-clock time `seconds` from now, ISO 8601 in UTC: until when a coordinator waits for a superstep it
    posts (a barrier's expiry; the control plane reads the wall clock here, as for heartbeats)."""
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def is_past(moment: str) -> bool:
    """Whether the wall-clock time `moment` (ISO 8601 with an offset) has passed on this host."""
    return datetime.now(UTC) >= datetime.fromisoformat(moment)


def _failure(what: str, exc: redis.RedisError) -> BusError:
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
        return BusUnavailable("redis", f"{what}: {exc}")
    return BusError(f"{what} failed: {exc}")


def _cluster_url(url: str) -> str | None:
    for scheme, plain in (("redis+cluster://", "redis://"), ("rediss+cluster://", "rediss://")):
        if url.startswith(scheme):
            return plain + url[len(scheme) :]
    return None


class WorkerControl:
    """Heartbeats, announcements, barriers and reports over one Redis (or Redis Cluster) client."""

    def __init__(self, url: str, *, socket_timeout: float = 10.0) -> None:
        client: redis.Redis | RedisCluster
        cluster = _cluster_url(url)
        if cluster is not None:
            client = RedisCluster.from_url(cluster, protocol=2, socket_timeout=socket_timeout)
        else:
            client = redis.Redis.from_url(url, protocol=2, socket_timeout=socket_timeout)
        self._client = client
        self._r = cast(Any, client)

    def close(self) -> None:
        self._client.close()

    # -- heartbeats ---------------------------------------------------------------------------------------

    def beat(self, heartbeat: Heartbeat, *, ttl_s: float) -> None:
        try:
            self._r.set(WORKER_PREFIX + heartbeat.name, heartbeat.model_dump_json(), px=max(1, int(ttl_s * 1000)))
            self._r.sadd(WORKERS_SET, heartbeat.name)
        except redis.RedisError as exc:
            raise _failure(f"heartbeat of worker {heartbeat.name}", exc) from exc

    def leave(self, name: str) -> None:
        """A worker that stops cleanly says so at once (the coordinator need not wait for its key to expire)."""
        try:
            self._r.delete(WORKER_PREFIX + name)
            self._r.srem(WORKERS_SET, name)
        except redis.RedisError as exc:
            raise _failure(f"removing worker {name}", exc) from exc

    def alive(self) -> dict[str, Heartbeat]:
        """The workers whose heartbeat has not expired, by name (the expired ones are forgotten)."""
        try:
            names = sorted(n.decode() if isinstance(n, bytes) else str(n) for n in self._r.smembers(WORKERS_SET))
            beats = {name: self._r.get(WORKER_PREFIX + name) for name in names}
            gone = [name for name, raw in beats.items() if raw is None]
            if gone:
                self._r.srem(WORKERS_SET, *gone)
        except redis.RedisError as exc:
            raise _failure("listing workers", exc) from exc
        return {name: Heartbeat.model_validate_json(raw) for name, raw in beats.items() if raw is not None}

    # -- announcements ------------------------------------------------------------------------------------

    def announce(self, run_id: str, signed: bytes) -> None:
        """Announce a run: `signed` is its announcement's wire bytes (signed by the run's coordinator)."""
        try:
            self._r.hset(RUNS_KEY, run_id, signed)
        except redis.RedisError as exc:
            raise _failure(f"announcing run {run_id}", exc) from exc

    def withdraw(self, run_id: str) -> None:
        try:
            self._r.hdel(RUNS_KEY, run_id)
        except redis.RedisError as exc:
            raise _failure(f"withdrawing run {run_id}", exc) from exc

    def runs(self) -> dict[str, bytes]:
        """The announced runs: run id → the announcement's bytes as stored (verified by whoever acts on them)."""
        try:
            raw = self._r.hgetall(RUNS_KEY)
        except redis.RedisError as exc:
            raise _failure("listing announced runs", exc) from exc
        return {
            (key.decode() if isinstance(key, bytes) else str(key)): bytes(value)
            for key, value in raw.items()
            if isinstance(value, bytes)
        }

    # -- barriers and reports -----------------------------------------------------------------------------

    @staticmethod
    def barrier_key(namespace: str) -> str:
        return f"{{{namespace}}}:agent-barrier"

    @staticmethod
    def done_key(namespace: str) -> str:
        return f"{{{namespace}}}:agent-done"

    def post(self, key: str, document: Mapping[str, Any]) -> str:
        return self.append(key, orjson.dumps(dict(document)))

    def append(self, key: str, data: bytes) -> str:
        """Append `data` (a report's JSON, a barrier's wire bytes) to the stream `key`; its entry id."""
        try:
            entry_id = self._r.xadd(key, {_FIELD: data})
        except redis.RedisError as exc:
            raise _failure(f"posting to {key}", exc) from exc
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    def read(self, key: str, after: str, *, block_ms: int = 0, count: int = 1000) -> list[tuple[str, dict[str, Any]]]:
        """Entries of `key` after entry id `after` ("0": from the start), waiting up to `block_ms` for one; those
        that are not a JSON object are left out."""
        out: list[tuple[str, dict[str, Any]]] = []
        for entry_id, raw in self.read_bytes(key, after, block_ms=block_ms, count=count):
            try:
                doc = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if isinstance(doc, dict):
                out.append((entry_id, doc))
        return out

    def read_bytes(self, key: str, after: str, *, block_ms: int = 0, count: int = 1000) -> list[tuple[str, bytes]]:
        """`read`, each entry's bytes as appended (an entry without them: b"")."""
        try:
            reply = self._r.xread({key: after}, count=count, block=block_ms if block_ms > 0 else None)
        except redis.RedisError as exc:
            raise _failure(f"reading {key}", exc) from exc
        return [
            (
                entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id),
                bytes((fields or {}).get(_FIELD) or b""),
            )
            for _, entries in reply or []
            for entry_id, fields in entries
        ]
