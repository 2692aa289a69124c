"""Every node of a running Ray cluster, probed where it runs (``--ray ADDRESS``).

canirun's own probe runs once on each alive node as a zero-resource task
pinned to that node (so busy nodes answer too) and sends its hardware record
back; Ray itself only carries it. A node that does not answer in time, or
whose probe fails, is a counted note, not a failure. Ray is an optional extra
(``pip install 'canirun-ai[ray]'``) and is imported only here, only when asked.

Test seam: a node whose environment sets ``CANIRUN_NODE_HARDWARE`` to a
hardware file answers with that file instead of probing (how the test suite
gives each fake node of one machine its own hardware).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from canirun.errors import InputError
from canirun.hardware.model import Host, to_jsonable

NODE_HARDWARE_ENV = "CANIRUN_NODE_HARDWARE"
INSTALL_HINT = "--ray needs Ray, an optional extra: pip install 'canirun-ai[ray]'"
PROBE_TIMEOUT_S = 60.0
CONNECT_TIMEOUT_S = 5.0


def probe_this_node() -> dict[str, Any]:
    """Runs on the node: its hardware record, as a report's ``hardware``/``machine``."""
    from canirun.hardware import probe
    from canirun.hardware.file import load_hardware_file

    fixture = os.environ.get(NODE_HARDWARE_ENV)
    host = load_hardware_file(Path(fixture)) if fixture else probe()
    return {
        "hardware": to_jsonable(host.hardware),
        "machine": to_jsonable(host.machine),
        "probe_issues": [to_jsonable(i) for i in host.issues],
    }


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise InputError(INSTALL_HINT) from None
    return ray


def _reachable(address: str) -> None:
    """Fail fast on HOST:PORT that nothing listens on: Ray itself retries for minutes."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        return  # "auto", "ray://..." and the like: Ray resolves them itself
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except (OSError, ValueError) as exc:
        why = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise InputError(
            f"--ray {address}: cannot connect to a Ray cluster: {why} "
            "(is `ray start --head` running there?)"
        ) from None


def _connect(ray: Any, address: str) -> bool:
    """Connect unless already connected; True when this call connected."""
    if ray.is_initialized():
        return False
    _reachable(address)
    try:
        ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "Could not find any running Ray instance" in first:
            # Ray's own advice names its flags (--address), not canirun's.
            first = "none is running here (start one with `ray start --head`, or give HOST:PORT)"
        raise InputError(f"--ray {address}: cannot connect to a Ray cluster: {first}") from None
    return True


def _name(data: dict[str, Any], node: dict[str, Any], taken: set[str]) -> str:
    machine = data.get("machine") or {}
    name = machine.get("hostname") or node.get("NodeManagerHostname") or "node"
    if name in taken:  # several nodes on one host (or a shared hostname)
        name = f"{name}-{str(node.get('NodeID', ''))[:8]}"
    taken.add(name)
    return str(name)


def load_ray_cluster(
    address: str, *, timeout: float = PROBE_TIMEOUT_S
) -> tuple[tuple[tuple[str, Host], ...], tuple[str, ...]]:
    """(name, host) for each node that answered, and notes on those that did not."""
    ray = _ray()
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from canirun.hardware.file import load_hardware_data

    connected = _connect(ray, address)
    try:
        everyone = ray.nodes()
        alive = [n for n in everyone if n.get("Alive")]
        notes = (
            [f"{len(everyone) - len(alive)} dead node(s) left out"]
            if len(alive) < len(everyone)
            else []
        )
        task = ray.remote(num_cpus=0, num_gpus=0)(probe_this_node)
        refs = [
            task.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
            ).remote()
            for n in alive
        ]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout)
        answered = set(ready)
        nodes: list[tuple[str, Host]] = []
        taken: set[str] = set()
        for node, ref in zip(alive, refs, strict=True):
            where = node.get("NodeManagerHostname") or node["NodeID"]
            if ref not in answered:
                notes.append(f"node {where}: no answer in {timeout:g} s")
                ray.cancel(ref, force=True)
                continue
            try:
                data = ray.get(ref)
                name = _name(data, node, taken)
                nodes.append((name, load_hardware_data(data, f"ray node {name}")))
            except Exception as exc:  # a failed probe or a bad record: that node only
                notes.append(f"node {where}: probe failed: {str(exc).splitlines()[0][:200]}")
        if not nodes:
            raise InputError(f"--ray {address}: no node answered ({'; '.join(notes) or 'none'})")
        return tuple(sorted(nodes, key=lambda n: n[0])), tuple(notes)
    finally:
        if connected:
            ray.shutdown()
