"""`python -m benchmarks [--quick] [--only bus,ledger]`: run every bench_*.py and write docs/benchmarks.md.

Each section runs in its own interpreter (benchmarks/section.py says why); its measurements come back as JSON."""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.harness import Measurement

ROOT = Path(__file__).resolve().parents[1]
MODULES = (
    "bus",
    "ledger",
    "merkle",
    "governance",
    "agents",
    "lanes",
    "loop",
    "replay",
    "startup",
    "web",
    "sweep",
    "workers",
)


def _fmt(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _verdict(m: Measurement, by_name: dict[tuple[str, str], Measurement]) -> tuple[str, str]:
    """(ratio text, pass text) for a measurement against its baseline and target."""
    ratio_txt, ok = "", None
    base = by_name.get((m.section, m.baseline)) if m.baseline else None
    if base is not None and base.median > 0 and m.median > 0:
        ratio = m.median / base.median if m.higher_is_better else base.median / m.median
        ratio_txt = f"{ratio:.2f}×" if m.higher_is_better else f"{m.median / base.median:.2f}× (time)"
        if m.target_ratio is not None:
            ok = ratio >= m.target_ratio
    if m.target_absolute is not None:
        absolute_ok = m.median >= m.target_absolute if m.higher_is_better else m.median <= m.target_absolute
        ok = absolute_ok if ok is None else ok and absolute_ok
    return ratio_txt, "" if ok is None else ("met" if ok else "**missed**")


def render(results: list[Measurement], *, quick: bool, seconds: float) -> str:
    by_name = {(m.section, m.name): m for m in results}
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC "
        f"({'quick' if quick else 'full'} sizes, {seconds:.0f} s) on {platform.machine()}, "
        f"Python {platform.python_version()}, {platform.system()}. Medians with min–max over repeats; every "
        "baseline was measured in the same run, so the ratio is the figure that counts on a noisy machine. Each "
        "section runs in a fresh interpreter.",
        "",
    ]
    for section in dict.fromkeys(m.section for m in results):
        lines += [
            f"## {section}",
            "",
            "| measurement | median | min–max | unit | baseline | ratio | target | result |",
            "|---|---:|---|---|---|---|---|---|",
        ]
        for m in (r for r in results if r.section == section):
            ratio, outcome = _verdict(m, by_name)
            lines.append(
                f"| {m.name} | {_fmt(m.median)} | {_fmt(m.low)}–{_fmt(m.high)} | {m.unit} | {m.baseline or ''} "
                f"| {ratio} | {m.target or ''} | {outcome} |"
            )
        notes = [f"- *{m.name}*: {m.notes}" for m in results if m.section == section and m.notes]
        lines += ["", *notes, ""] if notes else [""]
    return "\n".join(lines)


def _section(section: str, *, quick: bool) -> list[Measurement]:
    """One section's measurements, measured in a fresh interpreter (its progress and errors go to stderr)."""
    command = [sys.executable, "-m", "benchmarks.section", section, *(["--quick"] if quick else [])]
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench section {section!r} failed (exit {done.returncode}); its error is above")
    return [Measurement(**json.loads(line)) for line in done.stdout.splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds, not minutes)")
    parser.add_argument("--only", default="", help="comma-separated sections, e.g. bus,ledger")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    wanted = [s for s in args.only.split(",") if s] or list(MODULES)
    unknown = sorted(set(wanted) - set(MODULES))
    if unknown:
        parser.error(f"unknown section(s): {', '.join(unknown)}; choose from {', '.join(MODULES)}")
    started = time.perf_counter()
    results: list[Measurement] = []
    for section in wanted:
        print(f"bench {section} …", file=sys.stderr, flush=True)
        results.extend(_section(section, quick=args.quick))
    text = render(results, quick=args.quick, seconds=time.perf_counter() - started)
    args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
