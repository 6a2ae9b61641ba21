"""A 3-node Redis Cluster on loopback ports, started with the machine's redis-server for a test session."""

from __future__ import annotations

import random
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from coalition.bus.embedded import find_redis_server

SLOTS = 16384


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def cluster_port() -> int:
    """A free port whose cluster-bus port (port + 10000) is free too: a node's port must be ≤ 55535."""
    for _ in range(200):
        port = random.randrange(20000, 55000)
        if _free(port) and _free(port + 10000):
            return port
    raise RuntimeError("redis cluster: no free pair of ports (port, port + 10000) found")


def _wait_for(predicate: object, what: str, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if predicate():  # type: ignore[operator]
                return
        except redis.RedisError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"redis cluster: {what} within {seconds:.0f} s")


@contextmanager
def redis_cluster(workdir: Path, nodes: int = 3) -> Iterator[str]:
    """Start `nodes` cluster-enabled servers, split the slots between them, join them; yield a
    `redis+cluster://` URL of the first node; stop every server afterwards."""
    binary = find_redis_server()
    ports: list[int] = []
    while len(ports) < nodes:
        if (port := cluster_port()) not in ports:
            ports.append(port)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for port in ports:
            node_dir = workdir / f"node-{port}"
            node_dir.mkdir(parents=True)
            procs.append(
                subprocess.Popen(
                    [
                        binary,
                        "--port",
                        str(port),
                        "--bind",
                        "127.0.0.1",
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--dir",
                        str(node_dir),
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        clients = [redis.Redis(host="127.0.0.1", port=port, socket_timeout=2) for port in ports]
        for client in clients:
            _wait_for(client.ping, "a node did not answer PING")
        for i, client in enumerate(clients):
            client.execute_command("CLUSTER", "ADDSLOTS", *range(i * SLOTS // nodes, (i + 1) * SLOTS // nodes))
        for port in ports[1:]:
            clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", port)

        def every_node_ok() -> bool:
            return all(b"cluster_state:ok" in c.execute_command("CLUSTER", "INFO") for c in clients)

        _wait_for(every_node_ok, "the cluster did not reach cluster_state:ok")
        for client in clients:
            client.close()
        yield f"redis+cluster://127.0.0.1:{ports[0]}/0"
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
