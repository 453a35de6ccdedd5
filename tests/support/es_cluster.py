"""A three-node Elasticsearch cluster on loopback, for scale-out tests.

Contract:
- :class:`LocalCluster` starts ``nodes`` processes of the same distribution as the test
  harness (the integ-test zip with the newswire analysis plugin, :mod:`pipeline.devtools.esserver`),
  each with its own data dir, HTTP and transport port on 127.0.0.1, all in one cluster
  (``discovery.seed_hosts`` = every transport port, ``cluster.initial_master_nodes`` = every
  node name). ``start()`` returns when ``_cluster/health`` reports every node and status
  green; heap is ``heap`` per node (256 MiB by default).
- ``urls`` are the nodes' HTTP URLs; ``store_url`` joins them with commas (the form
  :class:`~pipeline.stores.elasticsearch.ElasticsearchStore` takes for several nodes).
- ``stop_node(i)`` ends node ``i`` (SIGTERM, then SIGKILL after ``timeout``); ``stop()`` ends
  every node and deletes the data dirs. Processes run in their own process group.
- Failures raise :class:`pipeline.devtools.esserver.EsServerError` with the tail of each node's log.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.devtools.esserver import (
    EsServerError,
    ServerConfig,
    ensure_distribution,
    free_port,
    runtime_root,
)


@dataclass
class NodeConfig(ServerConfig):
    """One node of a multi-node cluster: discovery by seed hosts instead of single-node."""

    name: str = "node-0"
    cluster: str = "newswire-cluster"
    seeds: tuple[str, ...] = ()
    masters: tuple[str, ...] = ()

    def command(self) -> list[str]:
        cmd = super().command()
        replaced = {
            "discovery.type=single-node": None,
            f"node.name={'newswire'}": f"node.name={self.name}",
            f"cluster.name=newswire-{self.port}": f"cluster.name={self.cluster}",
        }
        out: list[str] = []
        for arg in cmd:
            if arg in replaced:
                if replaced[arg] is None:
                    out.pop()  # the "-E" before it
                    continue
                arg = str(replaced[arg])
            out.append(arg)
        out += ["-E", f"discovery.seed_hosts={','.join(self.seeds)}"]
        out += ["-E", f"cluster.initial_master_nodes={','.join(self.masters)}"]
        return out


def _health(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"{url}/_cluster/health", timeout=2) as resp:
            data: dict[str, Any] = json.loads(resp.read())
            return data
    except (OSError, ValueError):
        return None


class LocalCluster:
    """``nodes`` Elasticsearch processes forming one cluster on loopback."""

    def __init__(self, nodes: int = 3, heap: str = "256m", timeout: float = 240.0) -> None:
        home = ensure_distribution()
        self.root = Path(tempfile.mkdtemp(prefix="es-cluster-", dir=runtime_root()))
        os.chmod(self.root, 0o755)  # the nodes run as the ES user when we are root
        self.timeout = timeout
        ports: set[int] = set()
        while len(ports) < 2 * nodes:
            ports.add(free_port())
        port_list = sorted(ports)
        names = tuple(f"node-{i}" for i in range(nodes))
        seeds = tuple(f"127.0.0.1:{port_list[nodes + i]}" for i in range(nodes))
        cluster = f"newswire-cluster-{port_list[0]}"
        self.configs = [
            NodeConfig(
                home=home,
                data_dir=self.root / names[i],
                port=port_list[i],
                transport_port=port_list[nodes + i],
                heap=heap,
                name=names[i],
                cluster=cluster,
                seeds=seeds,
                masters=names,
            )
            for i in range(nodes)
        ]
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * nodes

    @property
    def urls(self) -> list[str]:
        return [c.url for c in self.configs]

    @property
    def store_url(self) -> str:
        return ",".join(self.urls)

    def _log_tails(self) -> str:
        parts = []
        for c in self.configs:
            log = c.data_dir / "console.log"
            if log.is_file():
                parts.append(
                    f"--- {c.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
                )
        return "\n".join(parts)

    def start(self) -> LocalCluster:
        for i, config in enumerate(self.configs):
            config.prepare()
            with open(config.data_dir / "console.log", "w") as console:
                self.procs[i] = subprocess.Popen(
                    config.command(),
                    env=config.env(),
                    cwd=str(config.home),
                    stdout=console,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    **config.popen_kwargs(),
                )
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            for i, proc in enumerate(self.procs):
                if proc is not None and proc.poll() is not None:
                    tails = self._log_tails()
                    self.stop()
                    raise EsServerError(f"node-{i} exited with {proc.returncode}\n{tails}")
            health = _health(self.urls[0])
            if health and health.get("number_of_nodes") == len(self.configs) and health["status"] == "green":
                return self
            time.sleep(1)
        tails = self._log_tails()
        self.stop()
        raise EsServerError(
            f"the cluster did not turn green with every node in {self.timeout:.0f} s\n{tails}"
        )

    def stop_node(self, i: int, timeout: float = 30.0) -> None:
        proc = self.procs[i]
        if proc is None:
            return
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout)
        self.procs[i] = None

    def stop(self) -> None:
        for i in range(len(self.procs)):
            try:
                self.stop_node(i)
            except ProcessLookupError:
                self.procs[i] = None
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
