"""Redis Cluster (issue 14): a run's streams share one hash tag, so multi-stream reads stay in one slot; the bus
contract suite runs on a 3-node cluster (tests/contract, `cluster` backend) and a whole run gives the same digest
there as on the memory bus, from the API and from the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from redis.cluster import key_slot

from coalition.bus.memory import MemoryBus
from coalition.bus.redis_streams import RedisStreamsBus
from coalition.ledger.digest import run_digest
from coalition.ledger.sqlite import SqliteLedger
from coalition.scenarios.assembly import assemble_run
from coalition.scenarios.spec import load_scenario

pytestmark = pytest.mark.integration

SCENARIO = "chaos-week"


def _digest(bus: object, path: Path) -> str:
    ledger = SqliteLedger(path)
    try:
        assemble_run(load_scenario(SCENARIO), bus=bus, ledger=ledger, run_id=SCENARIO).run()  # type: ignore[arg-type]
        return run_digest(ledger, SCENARIO)
    finally:
        ledger.close()


class TestRedisCluster:
    """The hash tag is what makes a cluster work; with it, a run is the same run."""

    def test_a_runs_streams_share_one_slot(self, cluster_bus: RedisStreamsBus) -> None:
        topics = ("observations", "proposals", "verdicts", "executions", "control")
        assert len({key_slot(cluster_bus.key(topic).encode()) for topic in topics}) == 1

    def test_without_the_tag_a_multi_stream_read_is_refused(self, redis_cluster_url: str) -> None:
        """Negative control: untagged keys of one namespace land in different slots and the server refuses a
        read of them together (CROSSSLOT), which is what the hash tag prevents."""
        keys = [f"untagged:{topic}" for topic in ("observations", "proposals", "verdicts", "executions")]
        assert len({key_slot(key.encode()) for key in keys}) > 1
        node = redis.Redis.from_url(redis_cluster_url.replace("redis+cluster://", "redis://"))
        try:
            with pytest.raises(redis.ResponseError, match="same slot"):
                node.execute_command(
                    "XREADGROUP", "GROUP", "g", "c", "COUNT", 1, "STREAMS", *keys, *(">" for _ in keys)
                )
        finally:
            node.close()

    def test_a_run_on_the_cluster_has_the_memory_runs_digest(
        self, cluster_bus: RedisStreamsBus, tmp_path: Path
    ) -> None:
        on_cluster = _digest(cluster_bus, tmp_path / "cluster.db")
        in_memory = _digest(MemoryBus(namespace="mem"), tmp_path / "memory.db")
        assert on_cluster == in_memory

    def test_the_cli_runs_on_the_cluster(self, redis_cluster_url: str, tmp_path: Path) -> None:
        """`coalition run --bus redis+cluster://…` as an operator would type it: completes and verifies."""
        env = {**os.environ, "COALITION_DATA_DIR": str(tmp_path)}
        env.pop("REDIS_URL", None)
        cli = [str(Path(sys.executable).with_name("coalition"))]
        done = subprocess.run(
            [*cli, "run", SCENARIO, "--bus", redis_cluster_url],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        verified = subprocess.run(
            [*cli, "ledger", "verify"], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert verified.returncode == 0, verified.stdout + verified.stderr
