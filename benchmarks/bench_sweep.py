"""Sweep scaling: the same grid of runs with 1 and with 2 local sweep workers (`coalition sweep --jobs N`), end
to end as a user sees it (worker start-up, the queue on Redis, every run recorded in a fresh SQLite ledger).

The runs are CPU-bound Python, so 2 workers can approach 2× only on 2 idle cores; on a shared machine the ratio
says how much of a second core the sweep actually got. The CPU seconds of each sweep (the coordinator and its
workers, user + system) are noted beside it: on a busy machine they, not the wall time, say whether two workers
do more work than one (each worker's start-up, imports above all, is paid once per worker).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from statistics import median

import orjson

from benchmarks.harness import Measurement

SECTION = "sweep"
SCENARIO = "price-spike"


def _redis_url() -> str | None:
    import redis

    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    try:
        return url if client.ping() else None
    except redis.RedisError:
        return None
    finally:
        client.close()


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # waited-for descendants: the coordinator and its workers
    return usage.ru_utime + usage.ru_stime


def sweep_seconds(jobs: int, seeds: str, folder: Path, redis_url: str | None) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one `coalition sweep` (a fresh ledger, so every run is run)."""
    data = folder / f"data-{jobs}-{len(list(folder.iterdir()))}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("COALITION_")}
    env["COALITION_DATA_DIR"] = str(data)
    env.pop("REDIS_URL", None)
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
    cpu_before = _children_cpu()
    done = subprocess.run(
        [sys.executable, "-m", "coalition", "sweep", SCENARIO, "--seeds", seeds, "--jobs", str(jobs), "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    if done.returncode != 0:
        raise RuntimeError(f"coalition sweep failed: {done.stderr.strip()[-500:]}")
    cpu = _children_cpu() - cpu_before
    doc = orjson.loads(done.stdout)
    return float(doc["seconds"]), cpu


def run(quick: bool) -> list[Measurement]:
    seeds = "1-8" if quick else "1-24"
    count = 8 if quick else 24
    repeats = 2 if quick else 3
    redis_url = _redis_url()
    figures: dict[int, list[float]] = {1: [], 2: []}
    cpu: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        folder = Path(tmp)
        for _ in range(repeats):  # interleaved, so both see the same load
            for jobs in (1, 2):
                wall, used = sweep_seconds(jobs, seeds, folder, redis_url)
                figures[jobs].append(wall)
                cpu[jobs].append(used)
    where = "Redis at REDIS_URL / 127.0.0.1:6379" if redis_url else "a private redis-server"
    one = f"coalition sweep, {count} runs of {SCENARIO}, --jobs 1"
    results = [
        Measurement(SECTION, one, "s", median(figures[1]), min(figures[1]), max(figures[1]), repeats, False),
        Measurement(
            SECTION,
            f"coalition sweep, {count} runs of {SCENARIO}, --jobs 2",
            "s",
            median(figures[2]),
            min(figures[2]),
            max(figures[2]),
            repeats,
            higher_is_better=False,
            baseline=one,
            target="≥ 1.7× faster than --jobs 1",
            target_ratio=1.7,
            notes=f"wall time incl. worker start-up; queue on {where}; {os.cpu_count()} cores shared with others; "
            f"CPU of the whole sweep (coordinator and workers): median {median(cpu[1]):.1f} s with --jobs 1, "
            f"{median(cpu[2]):.1f} s with --jobs 2",
        ),
    ]
    return results
