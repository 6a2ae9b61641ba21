"""The Bus over Redis Streams consumer groups: XADD / XREADGROUP / XACK, XAUTOCLAIM for stale entries.

Redis entry ids are not identities: a producer retry after an ambiguous timeout can append the same
envelope twice, so consumers deduplicate on the envelope id (see `IdempotencyStore`). The client speaks
RESP2; `_stream_entries` is the one place that also accepts the RESP3 reply shape of a caller's client.

The hot path pays per batch what it can: `publish_many` appends a chunk of envelopes in one round trip, on our own
client to one server as MULTI, an XADD per entry and EXEC, packed by hand (`coalition.bus.resp`: queuing, packing and
parsing one redis-py pipelined command per entry cost more than the codec spends encoding the envelope), elsewhere
(a cluster, a caller's client) with one script call (the same XADDs, in order, as one command; the server then
copies every entry into Lua and back, about half its publish time); `read` turns a reply into Deliveries in
one loop (`_deliveries`; the codec still validates every entry) straight from the reply as Redis sent it on the
bus's own client (redis-py's reply callback built a tuple and a dict per entry only to be read once), and an ack
of one topic is one XACK.
A transaction, like a script, runs alone on the server, so each chunk is appended atomically (a pipeline did not
promise it); the script path needs EVALSHA and SCRIPT LOAD, which redis-py uses to (re)load the script after NOSCRIPT,
and a signed publish with a MAXLEN sends its record bookkeeping as one EVAL inside the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from coalition.bus import resp
from coalition.bus.base import Delivery, delivered
from coalition.bus.batch_records import Batch
from coalition.bus.codec import decode, encode
from coalition.bus.envelope import Envelope
from coalition.bus.errors import BusError, BusUnavailable, MessageRejected

FIELD = b"m"  # the one field of every entry: the codec's bytes
# the keys of a namespace's batch records (beside its streams, under its hash tag; no topic starts with "~")
_BATCHES = "~batches"  # hash: signature → the batch's leaves
_HOLDERS = "~batch-holders"  # hash: signature → how many runs of entries still hold it (with a MAXLEN)
_ORDER = "~batch-order:"  # + topic: list of `<signature><last entry id>`, oldest first (with a MAXLEN)
_RECLAIM_ROUNDS = 10  # XAUTOCLAIM scans at most 10×COUNT pending entries per call; bound the follow-ups
_TRIMMED_SCAN = 1000  # pending ids of one consumer checked for trimmed entries in one go
_PUBLISH_CHUNK = 1000  # envelopes per script call (≈ 1 MB of 1 KB envelopes): bounds how long Redis is busy
_SIGNATURE_SIZE = 64  # an Ed25519 signature: the field of a batch record
# KEYS: the streams; ARGV: MAXLEN ("" for none), then runs of consecutive entries bound for one stream, each as
# (1-based index into KEYS, how many entries, then their data), in order. One XADD per entry, then one approximate
# XTRIM per stream (what XADD's own MAXLEN ~ would have trimmed: the script runs alone, so nobody sees a stream
# longer in between); returns the new entry ids in the same order. Runs rather than an index beside every entry:
# a batch usually goes to one stream, and the per-entry index and its `tonumber` cost the server about a tenth of
# the script's time.
_PUBLISH_SCRIPT = f"""
local ids = {{}}
local n = 0
local at = 2
while at <= #ARGV do
  local key = KEYS[tonumber(ARGV[at])]
  local last = at + 1 + tonumber(ARGV[at + 1])
  for i = at + 2, last do
    n = n + 1
    ids[n] = redis.call('XADD', key, '*', '{FIELD.decode()}', ARGV[i])
  end
  at = last + 1
end
if ARGV[1] ~= '' then
  for k = 1, #KEYS do
    redis.call('XTRIM', KEYS[k], 'MAXLEN', '~', ARGV[1])
  end
end
return ids
"""

# Lua shared by both signed scripts. `_OLDER`: whether stream id a is older than b. `_TRIM_AND_RELEASE` (with `k`
# streams in KEYS, then the records hash, the holders hash and each stream's list, and `maxlen`): trims each stream,
# pops the runs of its list whose last entry is older than the stream's first, and deletes a record with no holder
# left: a record lives as long as any entry of its batch.
_OLDER = """local function older(a, b)
  local ad, bd = string.find(a, '-', 1, true), string.find(b, '-', 1, true)
  local am, bm = tonumber(string.sub(a, 1, ad - 1)), tonumber(string.sub(b, 1, bd - 1))
  if am ~= bm then return am < bm end
  return tonumber(string.sub(a, ad + 1)) < tonumber(string.sub(b, bd + 1))
end
"""
_TRIM_AND_RELEASE = f"""for s = 1, k do
  redis.call('XTRIM', KEYS[s], 'MAXLEN', '~', maxlen)
  local order = KEYS[k + 2 + s]
  local head = redis.call('LINDEX', order, 0)
  if head then
    local first = redis.call('XRANGE', KEYS[s], '-', '+', 'COUNT', 1)[1]
    while head and (first == nil or older(string.sub(head, {_SIGNATURE_SIZE + 1}), first[1])) do
      redis.call('LPOP', order)
      local sig = string.sub(head, 1, {_SIGNATURE_SIZE})
      if redis.call('HINCRBY', held, sig, -1) <= 0 then
        redis.call('HDEL', held, sig)
        redis.call('HDEL', records, sig)
      end
      head = redis.call('LINDEX', order, 0)
    end
  end
end
"""

# The signed publish (`publish_batches`): KEYS are the streams, then the hash of batch records (signature → leaves),
# the hash of their holder counts and each stream's list of the batches it holds; ARGV: MAXLEN ("" for none), how
# many streams, how many records, the records as (signature, leaves), then runs of consecutive entries bound for one
# stream from one batch, each as (stream index, record index, how many entries, then their data). The records are
# written with the entries, in one script, so no consumer ever reads an entry before its record. With a MAXLEN, each
# run also pushes `<signature><its last entry id>` on its stream's list and counts one more holder; after a stream is
# trimmed, the runs whose last entry is older than the stream's first are popped and a record with no holder left
# is deleted: a record lives as long as any entry of its batch (a stream trimmed by an unsigned publish keeps its
# records until a signed one trims it again: longer, never shorter).
_SIGNED_PUBLISH_SCRIPT = f"""
{_OLDER}local maxlen = ARGV[1]
local k = tonumber(ARGV[2])
local records, held = KEYS[k + 1], KEYS[k + 2]
local sigs = {{}}
local at = 4
for r = 1, tonumber(ARGV[3]) do
  sigs[r] = ARGV[at]
  redis.call('HSET', records, ARGV[at], ARGV[at + 1])
  at = at + 2
end
local ids = {{}}
local n = 0
while at <= #ARGV do
  local s = tonumber(ARGV[at])
  local key = KEYS[s]
  local last = at + 2 + tonumber(ARGV[at + 2])
  local id
  for i = at + 3, last do
    n = n + 1
    id = redis.call('XADD', key, '*', '{FIELD.decode()}', ARGV[i])
    ids[n] = id
  end
  if maxlen ~= '' then
    local sig = sigs[tonumber(ARGV[at + 1])]
    redis.call('RPUSH', KEYS[k + 2 + s], sig .. id)
    redis.call('HINCRBY', held, sig, 1)
  end
  at = last + 1
end
if maxlen ~= '' then
{_TRIM_AND_RELEASE}end
return ids
"""

# The record bookkeeping of a signed publish sent as a transaction (`_publish_signed_transaction`, with a MAXLEN): it
# runs inside MULTI/EXEC right after the transaction's XADDs, so the newest entry of each stream is this transaction's
# last one there. KEYS as `_SIGNED_PUBLISH_SCRIPT`'s; ARGV: MAXLEN, how many streams, then (stream index, signature)
# for each batch with entries on that stream. Each pair pushes `<signature><the stream's newest id>` and counts one
# more holder (the newest id is at or after the batch's own last entry there: its record lives as long as that entry
# or longer, never shorter), then the streams are trimmed and their lists popped as `_SIGNED_PUBLISH_SCRIPT` does.
_SIGNED_HOLDERS_SCRIPT = f"""
{_OLDER}local maxlen = ARGV[1]
local k = tonumber(ARGV[2])
local records, held = KEYS[k + 1], KEYS[k + 2]
local newest = {{}}
for at = 3, #ARGV, 2 do
  local s = tonumber(ARGV[at])
  local id = newest[s]
  if not id then
    id = redis.call('XREVRANGE', KEYS[s], '+', '-', 'COUNT', 1)[1][1]
    newest[s] = id
  end
  redis.call('RPUSH', KEYS[k + 2 + s], ARGV[at + 1] .. id)
  redis.call('HINCRBY', held, ARGV[at + 1], 1)
end
{_TRIM_AND_RELEASE}return 0
"""
_SIGNED_HOLDERS_BODY = _SIGNED_HOLDERS_SCRIPT.encode()

Entry = tuple[bytes, dict[bytes, bytes] | None] | list[Any]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _ids(reply: list[bytes]) -> list[str]:
    """The entry ids a publish script returned, as text, in one join, decode and split (an id is digits and a dash:
    it holds no newline). Replies are bytes: the bus refuses a client that decodes them."""
    return b"\n".join(reply).decode().split("\n") if reply else []


def _stream_entries(reply: Any) -> list[tuple[bytes, list[Entry]]]:
    """XREADGROUP reply → [(stream key, entries)], for RESP2 `[[key, entries]]` and RESP3 `{key: [entries]}`."""
    if not reply:
        return []
    if isinstance(reply, dict):
        pairs = []
        for key, value in reply.items():
            # RESP3 wraps each stream's entries in one more list: {key: [[(id, fields), …]]}
            entries = value[0] if value and isinstance(value[0], list) else value
            pairs.append((key, entries))
        return pairs
    return [(key, entries) for key, entries in reply]


def _deliveries(
    topic: str, entries: Iterable[Entry], times: int, counts: dict[str, int] | None = None
) -> list[Delivery]:
    """The Deliveries of one topic's entries; a bad entry becomes a Delivery with its error, never an exception.

    `times` is the delivery count of every entry unless `counts` (by entry id) says otherwise.
    """
    deliveries: list[Delivery] = []
    append = deliveries.append
    for broker_id, sent in entries:
        entry_id = broker_id.decode() if isinstance(broker_id, bytes) else broker_id
        n = counts.get(entry_id, times) if counts else times
        fields = sent
        if type(sent) is list:  # as sent: [field, value, …]; ours is always [FIELD, data]
            if len(sent) == 2 and sent[0] == FIELD:
                data = sent[1]
            else:
                fields = dict(zip(sent[0::2], sent[1::2], strict=False))
                data = fields.get(FIELD)
        else:
            data = sent.get(FIELD) if sent else None
        if data is None:
            shown = sorted(_text(name) for name in (fields or {}))
            append(Delivery(topic, entry_id, n, None, b"", f"entry has no {FIELD.decode()!r} field: {shown}"))
            continue
        try:
            envelope = decode(data)
        except MessageRejected as exc:
            append(Delivery(topic, entry_id, n, None, data, exc.reason))
        except Exception as exc:  # read must never raise for one bad entry: the consumer dead-letters it
            append(Delivery(topic, entry_id, n, None, data, f"undecodable: {type(exc).__name__}: {exc}"))
        else:
            append(delivered(topic, entry_id, n, envelope, data))
    return deliveries


def _unparsed_reads(client: redis.Redis) -> None:
    """Have a client of ours (RESP2) hand XREADGROUP replies over as Redis sends them: redis-py's callback builds a
    tuple and a dict for every entry, which `_deliveries` reads past at once (a tenth of a read's time). Only our
    own client: a caller's keeps its callbacks, and its replies are read in their parsed shape. A URL that asks for
    RESP3 (`?protocol=3`) overrides our RESP2, and its raw replies have another shape: it keeps the callback too."""
    if str(client.connection_pool.connection_kwargs.get("protocol", 2)) != "2":
        return
    client.response_callbacks.pop("XREADGROUP", None)


def _exchange(conn: Any, body: bytes, queued: int) -> Any:
    """Write a packed transaction and read its replies: MULTI's OK, one QUEUED per command, then EXEC's array. A
    refused command leaves replies unread: the connection is dropped rather than handed back out of step.

    The QUEUED replies are read straight from the connection's parser, one call each: the connection's own read wraps
    every reply in the error handling done here once (about 45 of the 300 µs a 100-entry publish waited for its
    replies, one QUEUED per entry)."""
    conn.send_packed_command([body])
    try:
        conn.read_response()
        parse = conn._parser.read_response  # an error reply comes back as a ResponseError, not raised
        for _ in range(queued):
            reply = parse()
            if isinstance(reply, redis.ResponseError):
                raise reply
        return conn.read_response()
    except OSError as exc:  # a socket error, which the connection's read turns into a ConnectionError too
        conn.disconnect()
        raise redis.ConnectionError(f"reading a transaction's replies: {exc}") from exc
    except BaseException:
        conn.disconnect()
        raise


def _failure(url: str, what: str, exc: redis.RedisError) -> BusError:
    """The bus error for a failed Redis call: BusUnavailable when the broker could not be reached."""
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
        return BusUnavailable(url, f"{what}: {exc}")
    return BusError(f"{what} on {url} failed: {exc}")


def _nogroup(exc: redis.RedisError) -> bool:
    """True for the reply Redis gives when a stream or its group is missing (deleted, or the broker lost data)."""
    return isinstance(exc, redis.ResponseError) and "NOGROUP" in str(exc)


def _connection_kwargs(client: redis.Redis | RedisCluster) -> dict[str, Any]:
    """How a client connects (host, port, timeouts, …): a cluster client keeps them in its nodes manager."""
    if isinstance(client, RedisCluster):
        return dict(client.nodes_manager.connection_kwargs)
    return dict(client.connection_pool.connection_kwargs)


def _describe(client: redis.Redis | RedisCluster) -> str:
    """A URL-like name of where a client points, for error messages (no password)."""
    if isinstance(client, RedisCluster):
        node = cast(Any, client).get_default_node()  # redis-py leaves it unannotated
        where = f"{node.host}:{node.port}" if node is not None else "?"
        return f"redis+cluster://{where}"
    kwargs = client.connection_pool.connection_kwargs
    if kwargs.get("path"):
        return f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}"
    return f"redis://{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"


def _cluster_url(url: str) -> str | None:
    """The plain redis:// URL of a `redis+cluster://` one (a Redis Cluster, reached through any of its nodes)."""
    for scheme, plain in (("redis+cluster://", "redis://"), ("rediss+cluster://", "rediss://")):
        if url.startswith(scheme):
            return plain + url[len(scheme) :]
    return None


class RedisStreamsBus:
    """A `Bus` where each topic is the stream `{<namespace>}:<topic>` and each entry holds one encoded envelope.

    The braces are a Redis Cluster hash tag: every stream of a namespace (one per run) lives in one slot, so a
    multi-stream XREADGROUP and the publish script's multi-key call work on a cluster as on one server. A
    `redis+cluster://host:port` URL (any node) or a `redis.cluster.RedisCluster` client selects a cluster.
    `client_name` names the connections (CLIENT SETNAME: what CLIENT LIST shows for them).
    """

    def __init__(
        self,
        client_or_url: redis.Redis | RedisCluster | str,
        namespace: str = "coalition",
        *,
        maxlen: int | None = 1_000_000,
        socket_timeout: float = 5.0,
        connect_timeout: float = 2.0,
        retries: int = 3,
        client_name: str | None = None,
    ) -> None:
        if not namespace or any(c in namespace for c in ":{}"):
            raise ValueError(f"namespace must be non-empty and contain no ':', '{{' or '}}', got {namespace!r}")
        if maxlen is not None and (isinstance(maxlen, bool) or not isinstance(maxlen, int) or maxlen < 0):
            raise ValueError(f"maxlen must be a non-negative integer or None, got {maxlen!r}")
        self._redis: redis.Redis | RedisCluster
        if isinstance(client_or_url, str) and (cluster_url := _cluster_url(client_or_url)) is not None:
            self._redis = RedisCluster.from_url(
                cluster_url,
                protocol=2,
                socket_timeout=socket_timeout,
                socket_connect_timeout=connect_timeout,
                retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries),
                client_name=client_name,
            )
            self._owns_client = True
        elif isinstance(client_or_url, str):
            retry = Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries)
            self._redis = redis.Redis.from_url(
                client_or_url,
                protocol=2,
                socket_timeout=socket_timeout,
                socket_connect_timeout=connect_timeout,
                retry=retry,
                retry_on_error=[redis.ConnectionError, redis.TimeoutError],
                client_name=client_name,
            )
            _unparsed_reads(self._redis)
            self._owns_client = True
        else:
            if _connection_kwargs(client_or_url).get("decode_responses"):
                raise ValueError("RedisStreamsBus needs a client with decode_responses=False (entries are bytes)")
            self._redis = client_or_url
            self._owns_client = False
        self.namespace = namespace
        self.url = _describe(self._redis)
        self._maxlen = maxlen
        # XADD's arguments between the key and the field, as redis-py's `xadd(maxlen=…, approximate=True)` sends them
        self._xadd_head: tuple[bytes | str, ...] = (
            (b"MAXLEN", b"~", str(maxlen), b"*") if maxlen is not None else (b"*",)
        )
        # our own client on one server publishes with MULTI/EXEC packed by hand (`_transaction`): the same XADDs,
        # appended atomically, without the script's per-entry cost on the server (its ARGV strings copied into Lua
        # and back); a cluster, or a caller's client, keeps the scripts (redis-py routes and retries them)
        self._transactions = self._owns_client and isinstance(self._redis, redis.Redis)
        self._publish_script = self._redis.register_script(_PUBLISH_SCRIPT)
        self._signed_publish_script = self._redis.register_script(_SIGNED_PUBLISH_SCRIPT)
        self._socket_timeout = _connection_kwargs(self._redis).get("socket_timeout")
        self._groups: set[tuple[str, str]] = set()
        self._r = cast(Any, self._redis)  # redis-py annotates replies as `Awaitable | Any`; we use it synchronously

    def __repr__(self) -> str:
        return f"RedisStreamsBus({self.url!r}, namespace={self.namespace!r})"

    def key(self, topic: str) -> str:
        """The Redis key of a topic's stream: the namespace is its hash tag (one cluster slot per namespace)."""
        return f"{{{self.namespace}}}:{topic}"

    # -- producing ---------------------------------------------------------------------------------------

    def publish(self, topic: str, envelope: Envelope) -> str:
        return self.publish_raw(topic, encode(envelope))

    def publish_many(self, items: Sequence[tuple[str, Envelope]]) -> list[str]:
        # encode everything first: an envelope that cannot be encoded fails the call before anything is sent
        return self.publish_wire([(topic, encode(envelope)) for topic, envelope in items])

    def publish_encoded(self, items: Sequence[tuple[str, Envelope, bytes]]) -> list[str]:
        return self.publish_wire([(topic, data) for topic, _, data in items])

    def publish_wire(self, items: Sequence[tuple[str, bytes]]) -> list[str]:
        if self._transactions:
            return self._publish_transaction(items)
        maxlen = "" if self._maxlen is None else str(self._maxlen)
        ids: list[str] = []
        try:
            for start in range(0, len(items), _PUBLISH_CHUNK):
                keys: dict[str, int] = {}  # topic → the 1-based index of its stream in KEYS
                args: list[str | bytes | int] = [maxlen]
                run_topic: str | None = None  # the topic of the current run of entries
                run_at = 0  # where that run's count stands in args
                for topic, data in items[start : start + _PUBLISH_CHUNK]:
                    if topic != run_topic:
                        index = keys.get(topic)
                        if index is None:
                            index = keys[topic] = len(keys) + 1
                        if run_topic is not None:
                            args[run_at] = len(args) - run_at - 1
                        run_topic, run_at = topic, len(args) + 1
                        args += (index, 0)
                    args.append(data)
                args[run_at] = len(args) - run_at - 1
                reply = self._publish_script(keys=[self.key(topic) for topic in keys], args=args)
                ids += _ids(reply)
        except redis.RedisError as exc:
            raise _failure(self.url, f"publishing {len(items)} messages", exc) from exc
        return ids

    def _publish_transaction(self, items: Sequence[tuple[str, bytes]]) -> list[str]:
        """`publish_wire` as one MULTI/EXEC per chunk: an XADD per entry (with MAXLEN ~, as redis-py's xadd)."""
        tail = (*(a if isinstance(a, bytes) else a.encode() for a in self._xadd_head), FIELD)
        ids: list[str] = []
        try:
            for start in range(0, len(items), _PUBLISH_CHUNK):
                heads: dict[str, bytes] = {}
                parts = [resp.MULTI]
                append = parts.append
                chunk = items[start : start + _PUBLISH_CHUNK]
                for topic, data in chunk:
                    head = heads.get(topic)
                    if head is None:
                        head = heads[topic] = resp.command_head(len(tail) + 3, b"XADD", self.key(topic).encode(), *tail)
                    append(head)
                    append(b"$%d\r\n" % len(data))
                    append(data)
                    append(resp.CRLF)
                append(resp.EXEC)
                ids += _ids(self._transaction(b"".join(parts), len(chunk)))
        except redis.RedisError as exc:
            raise _failure(self.url, f"publishing {len(items)} messages", exc) from exc
        return ids

    def _publish_signed_transaction(
        self, items: Sequence[tuple[str, Envelope | None, bytes]], batches: Sequence[Batch], batch_of: Sequence[int]
    ) -> list[str]:
        """`publish_batches` as one MULTI/EXEC per chunk: the chunk's batch records (one HSET), an XADD per entry, then
        with a MAXLEN the holder bookkeeping and the trim (`_SIGNED_HOLDERS_SCRIPT`), all applied at once."""
        ids: list[str] = []
        records_key = self.batch_records_key().encode()
        try:
            for start in range(0, len(items), _PUBLISH_CHUNK):
                stop = min(start + _PUBLISH_CHUNK, len(items))
                keys: dict[str, int] = {}  # topic → the 1-based index of its stream in KEYS
                heads: list[bytes] = []
                used: dict[int, None] = {}  # the batches with entries in this chunk, in order
                holders: dict[tuple[int, int], None] = {}  # (stream index, batch) pairs, in order
                body: list[bytes] = []
                append = body.append
                run_topic, run_batch, head = "", -1, b""  # the current run of entries to one stream from one batch
                for (topic, _, data), batch in zip(items[start:stop], batch_of[start:stop], strict=True):
                    if batch != run_batch or topic != run_topic:
                        index = keys.get(topic)
                        if index is None:
                            index = keys[topic] = len(keys) + 1
                            heads.append(resp.command_head(5, b"XADD", self.key(topic).encode(), b"*", FIELD))
                        used[batch] = None
                        holders[(index, batch)] = None
                        run_topic, run_batch, head = topic, batch, heads[index - 1]
                    append(head)
                    append(b"$%d\r\n" % len(data))
                    append(data)
                    append(resp.CRLF)
                fields = [part for batch in used for part in batches[batch]]
                parts = [resp.MULTI, resp.command(b"HSET", records_key, *fields), *body]
                queued = stop - start + 1
                if self._maxlen is not None:
                    streams = [self.key(topic).encode() for topic in keys]
                    parts.append(
                        resp.command(
                            b"EVAL",
                            _SIGNED_HOLDERS_BODY,
                            b"%d" % (2 * len(keys) + 2),
                            *streams,
                            records_key,
                            self.key(_HOLDERS).encode(),
                            *(self.key(_ORDER + topic).encode() for topic in keys),
                            b"%d" % self._maxlen,
                            b"%d" % len(keys),
                            *(part for index, batch in holders for part in (b"%d" % index, batches[batch][0])),
                        )
                    )
                    queued += 1
                parts.append(resp.EXEC)
                reply = self._transaction(b"".join(parts), queued)
                ids += _ids(reply[1 : 1 + stop - start])
        except redis.RedisError as exc:
            raise _failure(self.url, f"publishing {len(items)} signed messages", exc) from exc
        return ids

    def _transaction(self, body: bytes, queued: int) -> list[Any]:
        """Send `body` (MULTI, `queued` commands, EXEC) on one connection of the pool and return EXEC's replies; the
        first that is an error is raised. Retried as redis-py retries a command (the connection's `Retry`): a server
        that lost the connection before EXEC discards the whole transaction."""
        pool = cast(redis.Redis, self._redis).connection_pool  # `_transactions`: never a cluster client
        conn = cast(Any, pool.get_connection())
        try:
            reply = conn.retry.call_with_retry(lambda: _exchange(conn, body, queued), lambda _error: conn.disconnect())
        finally:
            pool.release(conn)
        for item in reply:
            if isinstance(item, Exception):
                raise item
        return cast(list[Any], reply)

    def publish_batches(
        self, items: Sequence[tuple[str, Envelope | None, bytes]], batches: Sequence[Batch], batch_of: Sequence[int]
    ) -> list[str]:
        """Append signed entries and their batches' records in one script call per chunk (see `_SIGNED_PUBLISH_SCRIPT`):
        each chunk carries the records of the batches it holds entries of."""
        if any(len(signature) != _SIGNATURE_SIZE for signature, _ in batches):
            raise ValueError(f"a batch record is named by its {_SIGNATURE_SIZE}-byte signature")
        if self._transactions:
            return self._publish_signed_transaction(items, batches, batch_of)
        maxlen = "" if self._maxlen is None else str(self._maxlen)
        ids: list[str] = []
        try:
            for start in range(0, len(items), _PUBLISH_CHUNK):
                keys: dict[str, int] = {}  # topic → the 1-based index of its stream in KEYS
                used: dict[int, int] = {}  # batch → the 1-based index of its record in this call
                records: list[bytes] = []
                runs: list[str | bytes | int] = []
                run_at = 0  # where the current run's count stands in runs
                run_topic: str | None = None  # the topic of the current run of entries
                run_batch = -1  # the batch of the current run (in `batches`)
                stop = min(start + _PUBLISH_CHUNK, len(items))
                for (topic, _, data), batch in zip(items[start:stop], batch_of[start:stop], strict=True):
                    if batch != run_batch or topic != run_topic:
                        record = used.get(batch)
                        if record is None:
                            record = used[batch] = len(used) + 1
                            records += batches[batch]
                        index = keys.get(topic)
                        if index is None:
                            index = keys[topic] = len(keys) + 1
                        if run_topic is not None:
                            runs[run_at] = len(runs) - run_at - 1
                        run_topic, run_batch = topic, batch
                        runs += (index, record, 0)
                        run_at = len(runs) - 1
                    runs.append(data)
                runs[run_at] = len(runs) - run_at - 1
                reply = self._signed_publish_script(
                    keys=[
                        *(self.key(topic) for topic in keys),
                        self.batch_records_key(),
                        self.key(_HOLDERS),
                        *(self.key(_ORDER + topic) for topic in keys),
                    ],
                    args=[maxlen, len(keys), len(used), *records, *runs],
                )
                ids += _ids(reply)
        except redis.RedisError as exc:
            raise _failure(self.url, f"publishing {len(items)} signed messages", exc) from exc
        return ids

    def batch_records_key(self) -> str:
        """The Redis key of the namespace's batch records (a hash: signature → leaves), in the streams' slot."""
        return self.key(_BATCHES)

    def batch_records(self, signatures: Sequence[bytes]) -> list[bytes | None]:
        """The record of each signed batch (None: none kept), in one HMGET on the run's slot."""
        if not signatures:
            return []
        try:
            return list(self._r.hmget(self.batch_records_key(), list(signatures)))
        except redis.RedisError as exc:
            raise _failure(self.url, f"reading {len(signatures)} batch records", exc) from exc

    def publish_raw(self, topic: str, data: bytes) -> str:
        try:
            return _text(self._r.execute_command("XADD", self.key(topic), *self._xadd_head, FIELD, data))
        except redis.RedisError as exc:
            raise _failure(self.url, f"publishing to {topic!r}", exc) from exc

    # -- groups and consuming ----------------------------------------------------------------------------

    def ensure_group(self, topic: str, group: str, *, from_start: bool = True) -> None:
        try:
            self._r.xgroup_create(self.key(topic), group, id="0" if from_start else "$", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise _failure(self.url, f"creating group {group!r} on {topic!r}", exc) from exc
        except redis.RedisError as exc:
            raise _failure(self.url, f"creating group {group!r} on {topic!r}", exc) from exc
        self._groups.add((topic, group))

    def _ensure_groups(self, topics: Sequence[str], group: str) -> None:
        for topic in topics:
            if (topic, group) not in self._groups:
                self.ensure_group(topic, group)

    def _forget_groups(self, topics: Sequence[str], group: str) -> None:
        """After a NOGROUP reply (stream deleted, broker lost its data): create the groups again next time."""
        for topic in topics:
            self._groups.discard((topic, group))

    def read(
        self, topics: Sequence[str], group: str, consumer: str, *, count: int = 100, block_ms: int = 0
    ) -> list[Delivery]:
        if count <= 0:
            raise ValueError(f"count must be positive, got {count}")
        if block_ms > 0 and self._socket_timeout is not None and block_ms >= self._socket_timeout * 1000:
            raise ValueError(f"block_ms={block_ms} must be shorter than the socket timeout ({self._socket_timeout}s)")
        keys = {self.key(topic): topic for topic in topics}
        streams = dict.fromkeys(keys, ">")
        block = block_ms if block_ms > 0 else None
        for attempt in (1, 2):
            self._ensure_groups(topics, group)
            try:
                reply = self._r.xreadgroup(group, consumer, streams, count=count, block=block)
                break
            except redis.RedisError as exc:
                if _nogroup(exc):
                    self._forget_groups(topics, group)
                    if attempt == 1:
                        continue
                raise _failure(self.url, f"reading {list(topics)} as {group}/{consumer}", exc) from exc
        deliveries: list[Delivery] = []
        for key, entries in _stream_entries(reply):
            deliveries += _deliveries(keys[_text(key)], entries, 1)
        return deliveries

    def reclaim_stale(
        self, topics: Sequence[str], group: str, consumer: str, *, min_idle_ms: int, count: int = 100
    ) -> list[Delivery]:
        deliveries: list[Delivery] = []
        self._ensure_groups(topics, group)
        try:
            for topic in topics:
                claimed = self._autoclaim(self.key(topic), group, consumer, min_idle_ms, count)
                if claimed:
                    counts = self._delivery_counts(self.key(topic), group, [broker_id for broker_id, _ in claimed])
                    deliveries += _deliveries(topic, claimed, 1, counts)
        except redis.RedisError as exc:
            if _nogroup(exc):
                self._forget_groups(topics, group)
            raise _failure(self.url, f"reclaiming for {group}/{consumer}", exc) from exc
        return deliveries

    def _autoclaim(self, key: str, group: str, consumer: str, min_idle_ms: int, count: int) -> list[Entry]:
        claimed: list[Entry] = []
        cursor: bytes | str = "0-0"
        for _ in range(_RECLAIM_ROUNDS):
            reply = self._r.xautoclaim(key, group, consumer, min_idle_ms, start_id=cursor, count=count - len(claimed))
            cursor = reply[0]
            # Redis 7 drops pending entries that were trimmed away and lists them apart; Redis 6.2 hands each back
            # as a nil entry (no id, no fields) and keeps it pending, now owned by this consumer: drop those.
            if any(not fields for _, fields in reply[1]):
                self._drop_trimmed(key, group, consumer)
            claimed.extend((broker_id, fields) for broker_id, fields in reply[1] if fields)
            if _text(cursor) == "0-0" or len(claimed) >= count:
                break
        return claimed

    def _drop_trimmed(self, key: str, group: str, consumer: str) -> None:
        """Ack this consumer's pending ids whose entries no longer exist in the stream (trimmed or deleted)."""
        rows = self._r.xpending_range(key, group, min="-", max="+", count=_TRIMMED_SCAN, consumername=consumer)
        pipe = self._r.pipeline(transaction=False)
        for row in rows:
            pipe.xrange(key, min=row["message_id"], max=row["message_id"], count=1)
        gone = [row["message_id"] for row, found in zip(rows, pipe.execute(), strict=True) if not found]
        if gone:
            self._r.xack(key, group, *gone)

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
        if not deliveries:
            return 0
        topic = deliveries[0].topic
        ids = [delivery.broker_id for delivery in deliveries if delivery.topic == topic]
        try:
            if len(ids) == len(deliveries):  # the usual case: one topic, one XACK
                return int(self._r.xack(self.key(topic), group, *ids))
            by_topic: dict[str, list[str]] = {topic: ids}
            for delivery in deliveries:
                if delivery.topic != topic:
                    by_topic.setdefault(delivery.topic, []).append(delivery.broker_id)
            pipe = self._r.pipeline(transaction=False)
            for each, each_ids in by_topic.items():
                pipe.xack(self.key(each), group, *each_ids)
            return sum(int(n) for n in pipe.execute())
        except redis.RedisError as exc:
            raise _failure(self.url, f"acknowledging {len(deliveries)} entries for {group}", exc) from exc

    # -- inspection --------------------------------------------------------------------------------------

    def pending_count(self, topic: str, group: str) -> int:
        try:
            summary = self._r.xpending(self.key(topic), group)
        except redis.RedisError as exc:
            if _nogroup(exc):
                return 0
            raise _failure(self.url, f"counting pending entries of {group} on {topic!r}", exc) from exc
        return int(summary["pending"])

    def length(self, topic: str) -> int:
        try:
            return int(self._r.xlen(self.key(topic)))
        except redis.RedisError as exc:
            raise _failure(self.url, f"measuring {topic!r}", exc) from exc

    def range(self, topic: str, *, start: str = "-", end: str = "+", count: int | None = None) -> list[Delivery]:
        try:
            entries = self._r.xrange(self.key(topic), min=start, max=end, count=count)
        except redis.RedisError as exc:
            raise _failure(self.url, f"reading the range of {topic!r}", exc) from exc
        return _deliveries(topic, entries, 0)

    def delete_namespace(self) -> int:
        """Delete every stream of this namespace (tests, resets); returns how many keys went."""
        try:
            keys = list(self._r.scan_iter(match=f"{{{self.namespace}}}:*", count=1000))
            deleted = sum(int(self._r.delete(key)) for key in keys)  # one key per call: any node of a cluster
        except redis.RedisError as exc:
            raise _failure(self.url, f"deleting namespace {self.namespace!r}", exc) from exc
        self._groups.clear()
        return deleted

    def delete_other_namespaces(self, pattern: str) -> int:
        """Delete the streams of every namespace matching the glob `pattern` except this bus's own: what a killed
        earlier attempt of a run left behind (its content is in the ledger, and a resume runs on fresh streams)."""
        try:
            keys = [
                key
                for key in self._r.scan_iter(match=f"{{{pattern}}}:*", count=1000)
                if not _text(key).startswith(f"{{{self.namespace}}}:")
            ]
            return sum(int(self._r.delete(key)) for key in keys)  # one by one: each namespace is its own slot
        except redis.RedisError as exc:
            raise _failure(self.url, f"deleting namespaces {pattern!r}", exc) from exc

    def close(self) -> None:
        if self._owns_client:
            self._redis.close()
