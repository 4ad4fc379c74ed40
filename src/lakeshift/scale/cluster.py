"""Reaching a Dask cluster: ``--dask tcp://HOST:8786`` (a running scheduler) or
``--dask local:N`` (a LocalCluster of N worker processes on this machine, on loopback)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from lakeshift.errors import UsageError

#: How long the driver waits for a scheduler to answer, and for a first worker.
CONNECT_TIMEOUT_S = 5.0
WORKERS_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ClusterSpec:
    """What ``--dask`` names: a scheduler's address, or a local cluster's size."""

    address: str | None = None
    local_workers: int = 0

    @staticmethod
    def parse(text: str) -> ClusterSpec:
        text = text.strip()
        if text.startswith("local:"):
            n = text.removeprefix("local:")
            if not n.isdigit() or not 1 <= int(n) <= 256:
                raise UsageError(f"--dask {text}: local:N needs N from 1 to 256 worker "
                                 "processes, e.g. --dask local:4")
            return ClusterSpec(local_workers=int(n))
        scheme, sep, rest = text.partition("://")
        if not sep or scheme not in ("tcp", "tls", "ws", "wss") or not rest:
            raise UsageError(f"--dask {text!r}: give a scheduler address "
                             "(tcp://HOST:8786) or local:N")
        return ClusterSpec(address=text)

    def __str__(self) -> str:
        return self.address or f"local:{self.local_workers}"


class Fleet:
    """A connected client and (for local:N) the cluster it started; ``close`` ends both."""

    def __init__(self, client: Any, cluster: Any, spec: ClusterSpec) -> None:
        self.client = client
        self.cluster = cluster
        self.spec = spec

    def workers(self) -> list[str]:
        """The addresses of the cluster's workers now, sorted."""
        return sorted(self.client.scheduler_info(n_workers=-1)["workers"])

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()


def distributed_module() -> Any:
    """The distributed package (UsageError naming the extra when it is not installed)."""
    try:
        import distributed
    except ImportError:
        raise UsageError("--dask needs Dask distributed: pip install 'lakeshift[dask]'"
                         ) from None
    return distributed


def open_fleet(spec: ClusterSpec, connect_timeout: float = CONNECT_TIMEOUT_S) -> Fleet:
    """Connect to the cluster (UsageError, exit 2, when it cannot be reached or has no
    workers)."""
    distributed = distributed_module()
    if spec.local_workers:
        # Worker processes of this machine, on loopback only (the dashboard on a free port).
        cluster = distributed.LocalCluster(
            n_workers=spec.local_workers, threads_per_worker=1, processes=True,
            host="127.0.0.1", dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR)
        return Fleet(distributed.Client(cluster), cluster, spec)
    try:
        client = distributed.Client(spec.address, timeout=connect_timeout)
    except (OSError, TimeoutError) as e:
        raise UsageError(f"cannot reach the Dask scheduler at {spec.address} within "
                         f"{connect_timeout:.0f} s ({type(e).__name__}): start it "
                         "(`dask scheduler`) or fix --dask") from None
    fleet = Fleet(client, None, spec)
    try:
        client.wait_for_workers(1, timeout=WORKERS_TIMEOUT_S)
    except (OSError, TimeoutError):
        fleet.close()
        raise UsageError(f"the Dask cluster at {spec.address} has no workers after "
                         f"{WORKERS_TIMEOUT_S:.0f} s: start some (`dask worker "
                         f"{spec.address}`)") from None
    return fleet
