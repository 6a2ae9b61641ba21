"""Models that misbehave, through the real CLI against the local wire server: a 6.8 MB answer, impossible token
counts, answers slower than the timeout, text full of terminal escapes, NUL and bidi controls. Each ends in a
completed run with a recorded stop and the engine's wording: a bounded ledger, no traceback, no silent stall, and
nothing in `ledger list` / `ledger explain` output that a terminal would act on."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llm_wire_server import FAKE_OPENAI_KEY, WireServer, answer_text

pytestmark = pytest.mark.e2e

COALITION = str(Path(sys.executable).with_name("coalition"))
SCENARIO = "chaos-week"
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


@pytest.fixture
def wire() -> Iterator[WireServer]:
    with WireServer() as server:
        yield server


def cli(
    *args: str, cwd: Path, wire: WireServer | None = None, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COALITION_", "OPENAI_", "ANTHROPIC_"))}
    env.pop("REDIS_URL", None)
    if wire is not None:
        env.update(
            COALITION_LLM="openai:gpt-4o-mini", OPENAI_API_KEY=FAKE_OPENAI_KEY, OPENAI_BASE_URL=wire.openai_base_url
        )
    env.update(extra or {})
    return subprocess.run(
        [COALITION, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=900, check=False
    )


def run(tmp_path: Path, wire: WireServer, run_id: str, **extra: str) -> subprocess.CompletedProcess[str]:
    ledger = str(tmp_path / "l.db")
    return cli("run", SCENARIO, "--bus", "memory", "--ledger", ledger, "--run-id", run_id, cwd=tmp_path, wire=wire,
               extra=extra)  # fmt: skip


def stops(ledger: Path, run_id: str) -> Counter[str]:
    conn = sqlite3.connect(ledger)
    try:
        rows = conn.execute(
            "SELECT json_extract(body, '$.payload.reason') FROM entries "
            "WHERE json_extract(body, '$.run_id') = ? AND json_extract(body, '$.message_type') = 'model.stopped'",
            (run_id,),
        ).fetchall()
    finally:
        conn.close()
    return Counter(str(r[0]) for r in rows)


def ledger_bytes(tmp_path: Path) -> int:
    return sum(p.stat().st_size for p in tmp_path.glob("l.db*"))


def completed(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode in (0, 1), done.stderr[-3000:]  # 1: an expectation about the wording may not hold
    assert "Traceback" not in done.stderr


class TestHostileAnswers:
    """Each misbehaviour is a recorded stop; the run goes on with the engine's wording."""

    def test_a_6_8_mb_answer_is_refused_not_stored(self, tmp_path: Path, wire: WireServer) -> None:
        wire.speaker = lambda body: "lorem ipsum " * 566_667  # 6.8 MB of text, for every request
        done = run(tmp_path, wire, "huge")
        completed(done)
        assert stops(tmp_path / "l.db", "huge")["oversized"] >= 1
        assert ledger_bytes(tmp_path) < 20_000_000, "a 6.8 MB answer was stored (it once made a 392 MB ledger)"

    def test_negative_and_absurd_token_counts_are_a_recorded_provider_error(
        self, tmp_path: Path, wire: WireServer
    ) -> None:
        wire.usage_override = {"prompt_tokens": -5, "completion_tokens": 10**15, "total_tokens": -1}
        done = run(tmp_path, wire, "usage")
        completed(done)
        assert stops(tmp_path / "l.db", "usage")["bad_usage"] >= 1

    def test_a_slow_model_is_announced_then_given_up_on(self, tmp_path: Path, wire: WireServer) -> None:
        """Answers slower than COALITION_LLM_TIMEOUT: "waiting for model …" appears, the call is abandoned at the
        timeout (a recorded stop), and the run finishes long before the provider would have answered."""
        wire.delay_next(100, times=2)
        started = time.monotonic()
        done = run(tmp_path, wire, "slow", COALITION_LLM_TIMEOUT="3")
        elapsed = time.monotonic() - started
        completed(done)
        assert "waiting for model openai:gpt-4o-mini" in done.stdout + done.stderr
        assert stops(tmp_path / "l.db", "slow")["timeout"] >= 1
        assert elapsed < 100, f"the run waited {elapsed:.0f} s: as long as the provider"

    def test_escape_nul_and_bidi_text_never_reaches_the_terminal(self, tmp_path: Path, wire: WireServer) -> None:
        """The model's words are stored exactly (in its model_call entry); every printer shows them escaped, and the
        JSON printers' output parses back to the exact stored text."""
        evil = " \x1b]0;owned\x07\x1b[2J\x00\rAPPROVED \u202egnp.exe\u2066\x9b31m"
        wire.speaker = lambda body: answer_text(body) + evil  # the decision it carries, so the words check passes
        done = run(tmp_path, wire, "evil")
        completed(done)
        ledger = str(tmp_path / "l.db")
        seq = _first_entry_holding(tmp_path / "l.db", "evil", "\x1b]0;owned")
        outputs = [done.stdout]
        for args in (
            ("ledger", "list", "--run", "evil", "--limit", "0"),
            ("ledger", "list", "--run", "evil", "--limit", "0", "--json"),
            ("ledger", "show", str(seq)),
            ("ledger", "explain", str(seq)),
        ):
            shown = cli(*args, "--ledger", ledger, cwd=tmp_path)
            assert shown.returncode == 0, shown.stderr
            outputs.append(shown.stdout)
        for output in outputs:
            assert not UNSAFE.findall(output), sorted(set(UNSAFE.findall(output)))
        shown = list(_strings(json.loads(outputs[3])))  # the JSON printer loses nothing
        assert any("\x1b]0;owned" in part and "\u202egnp.exe\u2066" in part for part in shown)


def _first_entry_holding(ledger: Path, run_id: str, text: str) -> int:
    """The first entry of the run whose stored JSON holds (part of) the model's words."""
    conn = sqlite3.connect(ledger)
    try:
        for seq, body in conn.execute("SELECT seq, body FROM entries ORDER BY seq"):
            doc: dict[str, Any] = json.loads(body)
            if doc.get("run_id") == run_id and any(text in part for part in _strings(doc)):
                return int(seq)
    finally:
        conn.close()
    pytest.fail(f"no entry of {run_id} holds the model's text {text!r}")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
