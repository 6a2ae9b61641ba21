#!/usr/bin/env python3
"""Verify a Coalition audit package offline: needs only Python 3.11+ and the `cryptography` package.

    python verify.py [PACKAGE] [--key VERIFIER_KEY] [--state FILE]

PACKAGE is the audit package (a directory or a .zip; default: the directory this script is in). It checks:
1. the checkpoint (checkpoint.txt, a C2SP signed note) is signed by the ledger key — the package's own
   ledger-key.txt, or, better, the key you obtained from the ledger's operator (--key);
2. every entry of ledger.jsonl is the entry whose stored bytes are in proofs.jsonl, with its hash chain link, and
   each entry's RFC 6962 inclusion proof leads to the checkpoint's root; those bytes are exactly the JSON the
   ledger writes for their value (sorted keys, each once, no whitespace), so every reader reads one value; with
   run-chain.json (a whole run from a ledger that chains each run, PostgreSQL), the entries are that run's chain
   from GENESIS, each linked to the one before it, without any other run's entries: none is missing up to the
   package's last entry of the run. Entries after that one are not proven absent (run-chain.json is not signed and
   no checkpoint signs a run's head yet: `coalition ledger verify` checks the run heads on the ledger itself); the
   line says whether the package holds the run's run.finished entry. Without run-chain.json the line does not
   claim the run's chain;
3. the checkpoint extends the newest checkpoint of the same ledger this verifier has seen before (kept in --state,
   default ~/.local/state/coalition-verifier/), using the consistency proofs in consistency.json; then it remembers
   this one. A package that cannot be proven consistent with what you saw before is refused.

Exit 0: verified; 1: the package does not verify (the line says why); 2: it cannot be read.
This file is standalone on purpose (no Coalition import): read it, it is short.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import os
import sys
import zipfile
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

DASH = "\u2014 "


class Failed(Exception):
    """The package does not verify."""


class Unreadable(Exception):
    """The package or an argument cannot be used."""


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def leaf_hash(data: bytes) -> bytes:
    return _sha(b"\x00" + data)


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha(b"\x01" + left + right)


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.3.2."""
    if not 0 <= index < size:
        raise Failed(f"leaf index {index} is not below the tree size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise Failed("the inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise Failed("the inclusion proof is too short")
    return r


def verify_consistency(size1: int, size2: int, proof: list[bytes], root1: bytes, root2: bytes) -> None:
    """RFC 9162 section 2.1.4.2."""
    if size1 <= 0 or size2 < size1:
        raise Failed(f"no consistency from size {size1} to size {size2}")
    if size1 == size2:
        if proof or root1 != root2:
            raise Failed(f"two different trees of size {size1}")
        return
    if not proof:
        raise Failed("empty consistency proof")
    path = ([root1] if size1 & (size1 - 1) == 0 else []) + proof
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise Failed("the consistency proof is too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0 or fr != root1 or sr != root2:
        raise Failed(f"the tree of size {size2} does not extend the tree of size {size1}")


def parse_key(text: str) -> tuple[str, bytes, Ed25519PublicKey]:
    """A verifier key <name>+<key id hex>+<base64(0x01 ‖ Ed25519 public key)>."""
    try:
        name, hex_id, encoded = text.strip().split("+", 2)
        raw = base64.b64decode(encoded, validate=True)
        key_id = bytes.fromhex(hex_id)
    except (ValueError, binascii.Error):
        raise Unreadable("the verifier key is not <name>+<key id hex>+<base64 key>") from None
    if len(raw) != 33 or raw[0] != 1 or len(key_id) != 4:
        raise Unreadable("the verifier key is not an Ed25519 key")
    if _sha(name.encode() + b"\n" + raw)[:4] != key_id:
        raise Unreadable("the verifier key's id does not match its name and key")
    return name, key_id, Ed25519PublicKey.from_public_bytes(raw[1:])


def open_checkpoint(note: str, key: tuple[str, bytes, Ed25519PublicKey]) -> tuple[str, int, bytes]:
    """(origin, size, root) of a C2SP checkpoint signed by `key`."""
    name, key_id, public = key
    text, sep, signatures = note.rpartition("\n\n")
    if not sep:
        raise Failed("the checkpoint is not a signed note")
    text += "\n"
    for line in signatures.rstrip("\n").split("\n"):
        if not line.startswith(DASH):
            raise Failed("the checkpoint has a malformed signature line")
        signer, _, blob = line[len(DASH) :].partition(" ")
        try:
            raw = base64.b64decode(blob, validate=True)
        except binascii.Error:
            raise Failed("the checkpoint has a malformed signature") from None
        if signer == name and raw[:4] == key_id:
            try:
                public.verify(raw[4:], text.encode())
            except InvalidSignature:
                raise Failed("the checkpoint's signature does not verify (altered checkpoint)") from None
            lines = text.split("\n")
            try:
                return lines[0], int(lines[1]), base64.b64decode(lines[2], validate=True)
            except (IndexError, ValueError, binascii.Error):
                raise Failed("the checkpoint's text is not origin, size and root hash lines") from None
    raise Failed(f"the checkpoint is signed by an unknown key (expected {name}+{key_id.hex()})")


class _Number:
    """A JSON number other than an integer, as written (the ledger's writer spells floats its own way)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _not_a_number(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _canonical(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ",".join(f"{_canonical(k)}:{_canonical(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_canonical(v) for v in value) + "]"
    if isinstance(value, _Number):
        return value.text
    return json.dumps(value, ensure_ascii=False)


def canonical_problem(body: bytes) -> str | None:
    """Why `body` is not the JSON the ledger writes for its value (Coalition's bus/canonical.py: keys sorted and
    each once, no whitespace, UTF-8, the shortest escapes), or None; a number with a fraction or exponent is taken
    as written. A repeated key is named: readers disagree on its value (SQLite keeps the first, Python the last)."""
    repeated: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in items]
        if not repeated and len(set(keys)) != len(keys):
            repeated.append(next(key for index, key in enumerate(keys) if key in keys[:index]))
        return dict(items)

    try:
        value = json.loads(body, object_pairs_hook=pairs, parse_float=_Number, parse_constant=_not_a_number)
    except ValueError as exc:
        return f"not JSON ({exc})"
    if repeated:
        return f"the key {repeated[0]!r} appears twice in one object (readers disagree on its value)"
    if _canonical(value).encode() != body:
        return "its key order, spacing or escapes are not the canonical ones"
    return None


def _read(package: Path) -> dict[str, bytes]:
    names = ("checkpoint.txt", "ledger-key.txt", "proofs.jsonl", "ledger.jsonl", "consistency.json", "run-chain.json")
    try:
        if package.is_file():
            with zipfile.ZipFile(package) as zf:
                return {n: zf.read(n) for n in names if n in zf.namelist()}
        return {n: (package / n).read_bytes() for n in names if (package / n).is_file()}
    except (OSError, zipfile.BadZipFile) as exc:
        raise Unreadable(f"cannot read the package {package}: {exc}") from None


def _object(text: str | bytes, where: str) -> dict[str, Any]:
    """A JSON object the package holds, or Unreadable naming where it is not one."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise Unreadable(f"{where}: JSON nested too deeply to read") from None
    except ValueError as exc:
        raise Unreadable(f"{where}: not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise Unreadable(f"{where}: expected a JSON object, not {type(value).__name__}")
    return value


def _b64list(values: list[str]) -> list[bytes]:
    return [base64.b64decode(v, validate=True) for v in values]


def verify_package(files: dict[str, bytes], key_text: str | None, state_dir: Path) -> str:
    for needed in ("checkpoint.txt", "proofs.jsonl", "ledger.jsonl"):
        if needed not in files:
            raise Unreadable(f"the package has no {needed}")
    if key_text is None:
        if "ledger-key.txt" not in files:
            raise Unreadable("no --key given and the package has no ledger-key.txt")
        key_text = files["ledger-key.txt"].decode()
    key = parse_key(key_text)
    origin, size, root = open_checkpoint(files["checkpoint.txt"].decode(), key)

    proven: dict[int, dict[str, Any]] = {}
    for number, line in enumerate(files["proofs.jsonl"].decode().splitlines(), 1):
        item = _object(line, f"proofs.jsonl line {number}")
        if not isinstance(item.get("entry"), str):
            raise Unreadable(f"proofs.jsonl line {number}: its entry is not the text of the entry's stored bytes")
        body = item["entry"].encode()
        fields = _object(body, f"proofs.jsonl line {number}'s entry")
        if not isinstance(fields.get("prev_hash"), str):
            raise Unreadable(f"proofs.jsonl line {number}: the entry's prev_hash is not text")
        seq = fields["seq"]
        if item["leaf_index"] != seq - 1 or item["tree_size"] != size:
            raise Failed(f"proofs.jsonl line {number}: proof is not for seq {seq} in the checkpoint's tree")
        if hashlib.sha256(fields["prev_hash"].encode() + body).hexdigest() != item["hash"]:
            raise Failed(f"entry seq {seq}: its hash does not match its content (altered)")
        problem = canonical_problem(body)
        if problem is not None:
            raise Failed(f"entry seq {seq}: its stored bytes are not canonical JSON: {problem}")
        if root_from_inclusion(seq - 1, size, leaf_hash(body), _b64list(item["proof"])) != root:
            raise Failed(f"entry seq {seq}: its inclusion proof does not lead to the checkpoint's root (altered)")
        fields["hash"] = item["hash"]
        proven[seq] = fields
    lines = enumerate(files["ledger.jsonl"].decode().splitlines(), 1)
    entries: list[Any] = [_object(line, f"ledger.jsonl line {number}") for number, line in lines if line.strip()]
    for entry in entries:
        seq = entry.get("seq")
        if proven.get(seq) != entry:
            raise Failed(f"ledger.jsonl entry seq {seq} is not the entry proven included (altered)")
        if seq - 1 in proven and proven[seq - 1]["hash"] != entry["prev_hash"]:
            raise Failed(f"entry seq {seq} does not link to seq {seq - 1}")
    if len(entries) != len(proven):
        raise Failed(f"ledger.jsonl holds {len(entries)} entries but {len(proven)} are proven")
    chained = ""
    if "run-chain.json" in files:
        chained = _check_run_chain(
            _object(files["run-chain.json"], "run-chain.json"), [proven[seq] for seq in sorted(proven)]
        )

    memory = state_dir / (origin.replace("/", "_") + ".checkpoint")
    if memory.is_file():
        _, seen_size, seen_root = open_checkpoint(memory.read_text(), key)
        if seen_size > size:
            raise Failed(f"this package's checkpoint ({size} entries) is older than the one seen before ({seen_size})")
        proofs = _object(files.get("consistency.json", b"{}"), "consistency.json")
        if seen_size != size:
            if str(seen_size) not in proofs:
                raise Failed(f"the package cannot prove it extends the checkpoint seen before ({seen_size} entries)")
            verify_consistency(seen_size, size, _b64list(proofs[str(seen_size)]), seen_root, root)
        elif seen_root != root:
            raise Failed(f"two different checkpoints of {size} entries: the ledger forked")
    if not memory.is_file() or open_checkpoint(memory.read_text(), key)[1] < size:
        state_dir.mkdir(parents=True, exist_ok=True)
        temporary = memory.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(files["checkpoint.txt"].decode())
        os.replace(temporary, memory)
    return (
        f"OK: {len(entries)} entries proven included in {origin} at {size} entries (root {root.hex()}),"
        f" signed by {key[0]}+{key[1].hex()}; hash links hold{chained}"
    )


def _check_run_chain(claim: dict[str, Any], entries: list[dict[str, Any]]) -> str:
    """The proven entries, in seq order, are run `claim["run_id"]`'s chain from GENESIS: each one's prev_hash is
    the hash of the one before it in the run, and there are `claim["entries"]` of them."""
    run_id = claim.get("run_id")
    if not isinstance(run_id, str) or type(claim.get("entries")) is not int:
        raise Unreadable('run-chain.json: expected {"run_id": <text>, "entries": <a whole number>}')
    if len(entries) != claim["entries"]:
        raise Failed(
            f"run-chain.json says run {run_id} has {claim['entries']} entries, the package proves {len(entries)}"
        )
    previous = "0" * 64
    for number, entry in enumerate(entries, 1):
        if entry["run_id"] != run_id:
            raise Failed(f"entry seq {entry['seq']} is of run {entry['run_id']}, not of run {run_id}")
        if entry["prev_hash"] != previous:
            where = "GENESIS" if number == 1 else f"the hash of the run's entry {number - 1}"
            raise Failed(f"entry seq {entry['seq']} (the run's entry {number}) does not link to {where}")
        previous = entry["hash"]
    # what the chain proves is that nothing is missing up to the package's last entry of the run; whether the run
    # has entries after it is not provable here (run-chain.json is not signed, and no checkpoint signs the run's
    # head): say where the run's end is, if the package holds it, and that a tail beyond it is not proven absent
    finished = [entry["seq"] for entry in entries if entry.get("message_type") == "run.finished"]
    end = f"run.finished at seq {finished[-1]}" if finished else "no run.finished entry among them"
    return (
        f"; run {run_id}'s chain holds from GENESIS ({len(entries)} entries, none missing up to seq"
        f" {entries[-1]['seq'] if entries else 0}; {end}; entries after that seq are not proven absent offline)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify a Coalition audit package offline.")
    parser.add_argument("package", nargs="?", default=str(Path(__file__).resolve().parent))
    parser.add_argument("--key", help="the ledger's verifier key, obtained from its operator (default: the package's)")
    parser.add_argument("--state", help="where the newest checkpoint seen is remembered")
    args = parser.parse_args(argv)
    state = Path(args.state) if args.state else Path.home() / ".local" / "state" / "coalition-verifier"
    try:
        print(verify_package(_read(Path(args.package)), args.key, state))  # noqa: T201  (a standalone script: its output is the point)
    except Failed as exc:
        print(f"FAILED: {exc}")  # noqa: T201  (a standalone script: its output is the point)
        return 1
    except (Unreadable, ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError, binascii.Error) as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201  (a standalone script: its output is the point)
        return 2
    except RecursionError:
        print("error: the package holds JSON nested too deeply to read", file=sys.stderr)  # noqa: T201
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
