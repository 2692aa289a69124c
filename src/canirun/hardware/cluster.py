"""The machines of a cluster: N copies of one (what-if) or a folder of reports.

Each node is a ``Host`` exactly as ``--hardware`` would load it, named by its
hostname (else its file name). Pure apart from reading the folder given.
"""

from __future__ import annotations

from pathlib import Path

from canirun.errors import InputError
from canirun.hardware.model import Host
from canirun.records import Record, record

MAX_NODES = 1024
SUFFIXES = (".json", ".toml")


@record(slots=True)
class Cluster(Record):
    """The nodes a multi-node plan may use, where they were described, and notes."""

    source: str  # "what-if" (--nodes), "reports" (--cluster), "ray" (--ray)
    nodes: tuple[tuple[str, Host], ...]
    notes: tuple[str, ...] = ()


def identical_nodes(host: Host, count: int) -> Cluster:
    """``--nodes N``: N machines like this one (after --gpu/--ram what-ifs)."""
    if not 1 <= count <= MAX_NODES:
        raise InputError(f"--nodes: {count} is not between 1 and {MAX_NODES}")
    return Cluster("what-if", tuple((f"node-{i + 1}", host) for i in range(count)))


def _files(folder: Path) -> list[Path]:
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise InputError(f"--cluster {folder}: cannot list it: {exc.strerror or exc}") from None
    files = [p for p in entries if p.suffix.lower() in SUFFIXES and p.is_file()]
    if not files:
        raise InputError(f"--cluster {folder}: no .json or .toml reports in it")
    if len(files) > MAX_NODES:
        raise InputError(f"--cluster {folder}: {len(files)} files; at most {MAX_NODES} nodes")
    return files


def load_cluster(folder: Path) -> Cluster:
    """``--cluster DIR``: one node per report (``canirun hardware/scan --json`` of each)."""
    import os

    from canirun.hardware.file import load_hardware_file

    if not os.path.isdir(folder):  # False, not an exception, for EACCES or a name too long
        raise InputError(f"--cluster {folder}: not a folder of reports")
    nodes: list[tuple[str, Host]] = []
    seen: set[str] = set()
    for path in _files(folder):
        try:
            host = load_hardware_file(path)
        except InputError as exc:
            raise InputError(f"--cluster: {exc}") from None
        name = host.machine.hostname or path.stem
        if name in seen:
            raise InputError(
                f"--cluster {folder}: two reports for {name!r} ({path.name} and another); "
                "keep one per node"
            )
        seen.add(name)
        nodes.append((name, host))
    return Cluster("reports", tuple(nodes))


def load_ray(address: str) -> Cluster:
    """``--ray ADDRESS``: every alive node of a running Ray cluster, probed there."""
    from canirun.hardware.ray_cluster import load_ray_cluster

    nodes, notes = load_ray_cluster(address)
    return Cluster("ray", nodes, notes)


def largest(cluster: Cluster) -> Host:
    """The node with the most GPU memory: the one single-machine verdicts are about."""
    return max(
        (host for _, host in cluster.nodes),
        key=lambda h: sum(g.memory_total_bytes or 0 for g in h.hardware.gpus),
    )
