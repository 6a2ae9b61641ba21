"""The Bus over Redis Streams consumer groups: XADD / XREADGROUP / XACK, XAUTOCLAIM for stale entries.

Redis entry ids are not identities: a producer retry after an ambiguous timeout can append the same
envelope twice, so consumers deduplicate on the envelope id (see `IdempotencyStore`). The client speaks
RESP2; `_stream_entries` is the one place that also accepts the RESP3 reply shape of a caller's client.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from coalition.bus.base import Delivery
from coalition.bus.codec import decode, encode
from coalition.bus.envelope import Envelope
from coalition.bus.errors import BusError, BusUnavailable, MessageRejected

FIELD = b"m"  # the one field of every entry: the codec's bytes
_PIPELINE_CHUNK = 1000
_RECLAIM_ROUNDS = 10  # XAUTOCLAIM scans at most 10×COUNT pending entries per call; bound the follow-ups

Entry = tuple[bytes, dict[bytes, bytes] | None]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _stream_entries(reply: Any) -> list[tuple[bytes, list[Entry]]]:
    """XREADGROUP reply → [(stream key, entries)], for RESP2 `[[key, entries]]` and RESP3 `{key: [entries]}`."""
    if not reply:
        return []
    if isinstance(reply, dict):
        pairs = []
        for key, value in reply.items():
            # RESP3 wraps each stream's entries in one more list: {key: [[(id, fields), …]]}
            entries = value[0] if value and isinstance(value[0], list) else value
            pairs.append((key, list(entries)))
        return pairs
    return [(key, list(entries)) for key, entries in reply]


def _describe(client: redis.Redis) -> str:
    """A URL-like name of where a client points, for error messages (no password)."""
    kwargs = client.connection_pool.connection_kwargs
    if kwargs.get("path"):
        return f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}"
    return f"redis://{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"


class RedisStreamsBus:
    """A `Bus` where each topic is the stream `<namespace>:<topic>` and each entry holds one encoded envelope."""

    def __init__(
        self,
        client_or_url: redis.Redis | str,
        namespace: str = "coalition",
        *,
        maxlen: int | None = 1_000_000,
        socket_timeout: float = 5.0,
        connect_timeout: float = 2.0,
        retries: int = 3,
    ) -> None:
        if not namespace or ":" in namespace:
            raise ValueError(f"namespace must be non-empty and contain no ':', got {namespace!r}")
        if isinstance(client_or_url, str):
            retry = Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries)
            self._redis = redis.Redis.from_url(
                client_or_url,
                protocol=2,
                socket_timeout=socket_timeout,
                socket_connect_timeout=connect_timeout,
                retry=retry,
                retry_on_error=[redis.ConnectionError, redis.TimeoutError],
            )
            self._owns_client = True
        else:
            if client_or_url.connection_pool.connection_kwargs.get("decode_responses"):
                raise ValueError("RedisStreamsBus needs a client with decode_responses=False (entries are bytes)")
            self._redis = client_or_url
            self._owns_client = False
        self.namespace = namespace
        self.url = _describe(self._redis)
        self._maxlen = maxlen
        self._socket_timeout = self._redis.connection_pool.connection_kwargs.get("socket_timeout")
        self._groups: set[tuple[str, str]] = set()
        self._r = cast(Any, self._redis)  # redis-py annotates replies as `Awaitable | Any`; we use it synchronously

    def __repr__(self) -> str:
        return f"RedisStreamsBus({self.url!r}, namespace={self.namespace!r})"

    def key(self, topic: str) -> str:
        """The Redis key of a topic's stream."""
        return f"{self.namespace}:{topic}"

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        try:
            yield
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise BusUnavailable(self.url, f"{what}: {exc}") from exc
        except redis.RedisError as exc:
            raise BusError(f"{what} on {self.url} failed: {exc}") from exc

    # -- producing ---------------------------------------------------------------------------------------

    def _xadd_args(self) -> dict[str, Any]:
        return {"maxlen": self._maxlen, "approximate": True} if self._maxlen is not None else {}

    def publish(self, topic: str, envelope: Envelope) -> str:
        return self.publish_raw(topic, encode(envelope))

    def publish_many(self, items: Sequence[tuple[str, Envelope]]) -> list[str]:
        encoded = [(self.key(topic), encode(envelope)) for topic, envelope in items]
        ids: list[str] = []
        args = self._xadd_args()
        with self._guard(f"publishing {len(encoded)} messages"):
            for start in range(0, len(encoded), _PIPELINE_CHUNK):
                pipe = self._r.pipeline(transaction=False)
                for key, data in encoded[start : start + _PIPELINE_CHUNK]:
                    pipe.xadd(key, {FIELD: data}, **args)
                ids.extend(_text(broker_id) for broker_id in pipe.execute())
        return ids

    def publish_raw(self, topic: str, data: bytes) -> str:
        with self._guard(f"publishing to {topic!r}"):
            return _text(self._r.xadd(self.key(topic), {FIELD: data}, **self._xadd_args()))

    # -- groups and consuming ----------------------------------------------------------------------------

    def ensure_group(self, topic: str, group: str, *, from_start: bool = True) -> None:
        with self._guard(f"creating group {group!r} on {topic!r}"):
            try:
                self._r.xgroup_create(self.key(topic), group, id="0" if from_start else "$", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        self._groups.add((topic, group))

    def _ensure_groups(self, topics: Sequence[str], group: str) -> None:
        for topic in topics:
            if (topic, group) not in self._groups:
                self.ensure_group(topic, group)

    @contextmanager
    def _regrouping(self, topics: Sequence[str], group: str) -> Iterator[None]:
        """Create missing groups first; a NOGROUP reply (stream deleted, broker lost its data) forgets them."""
        self._ensure_groups(topics, group)
        try:
            yield
        except BusError as exc:
            if "NOGROUP" in str(exc):
                for topic in topics:
                    self._groups.discard((topic, group))
            raise

    def read(
        self, topics: Sequence[str], group: str, consumer: str, *, count: int = 100, block_ms: int = 0
    ) -> list[Delivery]:
        if count <= 0:
            raise ValueError(f"count must be positive, got {count}")
        if block_ms > 0 and self._socket_timeout is not None and block_ms >= self._socket_timeout * 1000:
            raise ValueError(f"block_ms={block_ms} must be shorter than the socket timeout ({self._socket_timeout}s)")
        keys = {self.key(topic): topic for topic in topics}
        for attempt in (1, 2):
            try:
                with self._regrouping(topics, group), self._guard(f"reading {list(topics)} as {group}/{consumer}"):
                    reply = self._r.xreadgroup(
                        group, consumer, dict.fromkeys(keys, ">"), count=count, block=block_ms if block_ms > 0 else None
                    )
                break
            except BusError as exc:
                if attempt == 2 or "NOGROUP" not in str(exc):
                    raise
        deliveries: list[Delivery] = []
        for key, entries in _stream_entries(reply):
            topic = keys[_text(key)]
            deliveries.extend(self._delivery(topic, broker_id, fields, 1) for broker_id, fields in entries)
        return deliveries

    def reclaim_stale(
        self, topics: Sequence[str], group: str, consumer: str, *, min_idle_ms: int, count: int = 100
    ) -> list[Delivery]:
        deliveries: list[Delivery] = []
        with self._regrouping(topics, group), self._guard(f"reclaiming for {group}/{consumer}"):
            for topic in topics:
                claimed = self._autoclaim(self.key(topic), group, consumer, min_idle_ms, count)
                if not claimed:
                    continue
                counts = self._delivery_counts(self.key(topic), group, [broker_id for broker_id, _ in claimed])
                deliveries.extend(
                    self._delivery(topic, broker_id, fields, counts.get(_text(broker_id), 1))
                    for broker_id, fields in claimed
                )
        return deliveries

    def _autoclaim(self, key: str, group: str, consumer: str, min_idle_ms: int, count: int) -> list[Entry]:
        claimed: list[Entry] = []
        cursor: bytes | str = "0-0"
        for _ in range(_RECLAIM_ROUNDS):
            reply = self._r.xautoclaim(key, group, consumer, min_idle_ms, start_id=cursor, count=count - len(claimed))
            cursor = reply[0]
            vanished = [broker_id for broker_id, fields in reply[1] if fields is None]
            if vanished:  # Redis 6.2 returns trimmed entries as nil and keeps them pending: drop them
                self._r.xack(key, group, *vanished)
            claimed.extend((broker_id, fields) for broker_id, fields in reply[1] if fields is not None)
            if _text(cursor) == "0-0" or len(claimed) >= count:
                break
        return claimed

    def _delivery_counts(self, key: str, group: str, broker_ids: list[bytes]) -> dict[str, int]:
        """XAUTOCLAIM bumps delivery counts but does not return them: ask XPENDING, one id per range."""
        pipe = self._r.pipeline(transaction=False)
        for broker_id in broker_ids:
            pipe.xpending_range(key, group, min=broker_id, max=broker_id, count=1)
        counts: dict[str, int] = {}
        for rows in pipe.execute():
            for row in rows:
                counts[_text(row["message_id"])] = int(row["times_delivered"])
        return counts

    def ack(self, group: str, deliveries: Sequence[Delivery]) -> int:
        by_key: dict[str, list[str]] = {}
        for delivery in deliveries:
            by_key.setdefault(self.key(delivery.topic), []).append(delivery.broker_id)
        if not by_key:
            return 0
        with self._guard(f"acknowledging {len(deliveries)} entries for {group}"):
            pipe = self._r.pipeline(transaction=False)
            for key, ids in by_key.items():
                pipe.xack(key, group, *ids)
            return sum(int(n) for n in pipe.execute())

    # -- inspection --------------------------------------------------------------------------------------

    def pending_count(self, topic: str, group: str) -> int:
        with self._guard(f"counting pending entries of {group} on {topic!r}"):
            try:
                summary = self._r.xpending(self.key(topic), group)
            except redis.ResponseError as exc:
                if "NOGROUP" in str(exc):
                    return 0
                raise
        return int(summary["pending"])

    def length(self, topic: str) -> int:
        with self._guard(f"measuring {topic!r}"):
            return int(self._r.xlen(self.key(topic)))

    def range(self, topic: str, *, start: str = "-", end: str = "+", count: int | None = None) -> list[Delivery]:
        with self._guard(f"reading the range of {topic!r}"):
            entries = self._r.xrange(self.key(topic), min=start, max=end, count=count)
        return [self._delivery(topic, broker_id, fields, 0) for broker_id, fields in entries]

    def delete_namespace(self) -> int:
        """Delete every stream of this namespace (tests, resets); returns how many keys went."""
        with self._guard(f"deleting namespace {self.namespace!r}"):
            keys = list(self._r.scan_iter(match=f"{self.namespace}:*", count=1000))
            deleted = int(self._r.delete(*keys)) if keys else 0
        self._groups.clear()
        return deleted

    def close(self) -> None:
        if self._owns_client:
            self._redis.close()

    # -- decoding ----------------------------------------------------------------------------------------

    @staticmethod
    def _delivery(topic: str, broker_id: bytes | str, fields: dict[bytes, bytes] | None, deliveries: int) -> Delivery:
        entry_id = _text(broker_id)
        raw = (fields or {}).get(FIELD)
        if raw is None:
            shown = sorted(_text(name) for name in (fields or {}))
            return Delivery(topic, entry_id, deliveries, None, b"", f"entry has no {FIELD.decode()!r} field: {shown}")
        data = raw
        try:
            envelope = decode(data)
        except MessageRejected as exc:
            return Delivery(topic, entry_id, deliveries, None, data, exc.reason)
        except Exception as exc:  # read must never raise for one bad entry: the consumer dead-letters it
            return Delivery(topic, entry_id, deliveries, None, data, f"undecodable: {type(exc).__name__}: {exc}")
        return Delivery(topic, entry_id, deliveries, envelope, data)
