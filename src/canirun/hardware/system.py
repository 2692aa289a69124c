"""CPU, memory, disk, OS and machine identity: psutil plus /proc and cgroup files.

Each probe catches its own failures and reports them as ``ProbeIssue``s; a
figure it could not read stays ``None``. Files are read under ``root`` so that
tests run against fixture trees.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

import psutil

from canirun.hardware import cpu as cpu_info
from canirun.hardware.cgroup import CgroupLimits
from canirun.hardware.model import Cpu, Disk, Docker, Machine, Memory, OsInfo, ProbeIssue
from canirun.hardware.which import which

Issues = list[ProbeIssue]


def _psutil_call(issues: Issues, what: str, fn, *args):  # type: ignore[no-untyped-def]
    """Run one psutil call; a failure becomes a probe issue and None."""
    try:
        return fn(*args)
    except Exception as exc:  # psutil raises OSError, RuntimeError, NotImplementedError...
        issues.append(ProbeIssue("psutil", f"{what}: {type(exc).__name__}: {exc}"))
        return None


def probe_cpu(root: Path, limits: CgroupLimits, issues: Issues) -> Cpu:
    identity = cpu_info.CpuIdentity(None, None, None)
    try:
        if sys.platform.startswith("linux"):
            identity = cpu_info.read_linux_identity(root)
        elif sys.platform == "darwin":
            identity = cpu_info.read_darwin_identity()
        elif sys.platform == "win32":
            from canirun.hardware import windows

            registry, _ = windows.winreg_reader()
            identity = windows.read_windows_identity(registry, windows.kernel32_features())
    except OSError as exc:
        issues.append(ProbeIssue("cpuinfo", f"cannot read CPU details: {exc}"))
    logical = os.cpu_count()
    physical = _psutil_call(issues, "physical core count", psutil.cpu_count, False)
    freq = _psutil_call(issues, "CPU frequency", psutil.cpu_freq)
    max_mhz = float(freq.max) if freq is not None and freq.max else None
    if max_mhz is None and freq is not None and freq.current:
        # VMs often hide the maximum (psutil gives 0.0); the current clock is what the
        # vCPU runs at, and on a host that scales its clock down, a cautious stand-in.
        max_mhz = float(freq.current)
    affinity = cpu_info.affinity_cores()
    bounds = [float(v) for v in (logical, affinity, limits.cpu_quota) if v]
    return Cpu(
        model=identity.model,
        vendor=identity.vendor,
        arch=cpu_info.machine_arch(),
        physical_cores=physical,
        logical_cores=logical,
        usable_cores=min(bounds) if bounds else None,
        quota_cores=limits.cpu_quota,
        affinity_cores=affinity,
        max_frequency_mhz=max_mhz,
        flags=identity.flags,
    )


def probe_memory(limits: CgroupLimits, issues: Issues) -> Memory:
    vm = _psutil_call(issues, "virtual memory", psutil.virtual_memory)
    swap = _psutil_call(issues, "swap", psutil.swap_memory)
    total = vm.total if vm is not None else None
    limit = limits.memory_limit
    if limit is not None and total is not None and limit >= total:
        limit = None  # a limit above the host's RAM does not bind
    return Memory(
        total_bytes=total,
        available_bytes=vm.available if vm is not None else None,
        limit_bytes=limit,
        limit_used_bytes=limits.memory_used if limit is not None else None,
        cgroup_version=limits.version,
        limit_unreadable=limits.memory_limit_unreadable,
        swap_total_bytes=swap.total if swap is not None else None,
        swap_free_bytes=swap.free if swap is not None else None,
    )


def free_memory(limits: CgroupLimits) -> int | None:
    """What a new allocation may take: the host's available RAM or the container's room
    (limit minus usage), whichever is smaller; None when either cannot be read."""
    try:
        room: int | None = psutil.virtual_memory().available
    except Exception:  # psutil raises OSError, RuntimeError...: assume the worst
        return None
    if room is not None and limits.memory_limit is not None:
        if limits.memory_used is None:
            return None
        room = min(room, max(0, limits.memory_limit - limits.memory_used))
    return room


def default_models_dir(env: Mapping[str, str] = os.environ) -> Path | None:
    """Where Hugging Face keeps downloads: HF_HUB_CACHE, HF_HOME/hub, then ~/.cache.

    None when there is no home directory to expand "~" into (no HOME and no
    passwd entry, as in some minimal containers).
    """
    try:
        if env.get("HF_HUB_CACHE"):
            return Path(env["HF_HUB_CACHE"]).expanduser()
        if env.get("HF_HOME"):
            return Path(env["HF_HOME"]).expanduser() / "hub"
        cache = env.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
        folder = Path(cache).expanduser() / "huggingface" / "hub"
    except RuntimeError:  # pathlib: "Could not determine home directory"
        return None
    return None if str(folder).startswith("~") else folder


def probe_disk(path: Path | None, issues: Issues) -> Disk:
    if path is None:
        issues.append(
            ProbeIssue("disk", "no home directory to find the model cache in: use --models-dir")
        )
        return Disk()
    path = Path(os.path.abspath(path))
    measured = path
    # os.path.exists, not Path.exists: it answers False instead of raising for
    # a name too long or a parent this user may not search.
    while not os.path.exists(measured) and measured != measured.parent:
        measured = measured.parent
    usage = _psutil_call(issues, f"disk usage of {measured}", psutil.disk_usage, str(measured))
    return Disk(
        path=str(path),
        measured_path=str(measured),
        exists=measured == path,
        total_bytes=usage.total if usage is not None else None,
        free_bytes=usage.free if usage is not None else None,
    )


def _os_release(root: Path) -> str | None:
    for name in ("etc/os-release", "usr/lib/os-release"):
        try:
            text = (root / name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        values = dict(
            line.split("=", 1) for line in text.splitlines() if "=" in line and line[0] != "#"
        )
        pretty = values.get("PRETTY_NAME") or values.get("NAME")
        return pretty.strip().strip("\"'") if pretty else None
    return None


def _libc() -> str | None:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION")  # "glibc 2.36"; fast, unlike platform.libc_ver
    except (AttributeError, ValueError, OSError):
        return None


def detect_container(root: Path, env: Mapping[str, str] = os.environ) -> tuple[bool, str | None]:
    if (root / ".dockerenv").exists():
        return True, "docker"
    if (root / "run/.containerenv").exists():
        return True, "podman"
    if env.get("KUBERNETES_SERVICE_HOST"):
        return True, "kubernetes"
    if env.get("container"):
        return True, env["container"]
    try:
        init_cgroup = (root / "proc/1/cgroup").read_text(encoding="utf-8", errors="replace")
    except OSError:
        init_cgroup = ""
    for marker, kind in (("kubepods", "kubernetes"), ("docker", "docker"), ("lxc", "lxc")):
        if marker in init_cgroup:
            return True, kind
    return False, None


def _docker_sockets(env: Mapping[str, str]) -> list[str]:
    host = env.get("DOCKER_HOST", "")
    if host.startswith("unix://"):
        return [host.removeprefix("unix://")]
    if host:
        return []  # a TCP daemon: canirun makes no network connections
    sockets = ["/var/run/docker.sock"]
    if env.get("XDG_RUNTIME_DIR"):
        sockets.insert(0, f"{env['XDG_RUNTIME_DIR']}/docker.sock")
    return sockets


def probe_docker(env: Mapping[str, str] = os.environ) -> Docker:
    """Docker is usable when its client is on PATH and its daemon socket accepts us."""
    cli = which("docker") is not None
    if not cli:
        return Docker(cli=False, daemon=None, detail="no docker client on PATH")
    if env.get("DOCKER_HOST", "").startswith(("tcp://", "ssh://")):
        return Docker(cli=True, daemon=None, detail="DOCKER_HOST is remote; not contacted")
    reasons = []
    for path in _docker_sockets(env):
        if not os.path.exists(path):
            continue
        import socket

        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            try:
                sock.connect(path)
            except OSError as exc:
                reasons.append(f"{path}: {exc.strerror or exc}")
                continue
        return Docker(cli=True, daemon=True, detail=f"daemon socket {path}")
    detail = "; ".join(reasons) or "no daemon socket found"
    return Docker(cli=True, daemon=False, detail=detail)


def _uname() -> tuple[str | None, str | None, str | None, str | None]:
    """(system, release, machine, node); os.uname is much cheaper to import than platform."""
    if hasattr(os, "uname"):
        u = os.uname()
        return u.sysname or None, u.release or None, u.machine or None, u.nodename or None
    import platform

    return platform.system(), platform.release(), platform.machine(), platform.node()


def probe_os(root: Path) -> OsInfo:
    system, release, machine, _ = _uname()
    distribution = _os_release(root) if system == "Linux" else None
    if system == "Darwin":
        import platform

        distribution = f"macOS {platform.mac_ver()[0]}"
    container, kind = detect_container(root)
    return OsInfo(
        system=system,
        release=release,
        machine=machine,
        distribution=distribution,
        libc=_libc(),
        python_version="{}.{}.{}".format(*sys.version_info[:3]),
        container=container,
        container_kind=kind,
        docker=probe_docker(),
    )


def _raw_machine_id(root: Path) -> str | None:
    for name in ("etc/machine-id", "var/lib/dbus/machine-id"):
        try:
            value = (root / name).read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            continue
        if value:
            return value
    return None


def hash_machine_id(raw: str) -> str:
    """Salted and truncated, so reports can be told apart without leaking the raw id."""
    from canirun.sha import sha256

    return str(sha256(f"canirun-machine-id:{raw}".encode()).hexdigest())[:32]


def probe_machine(root: Path, issues: Issues) -> Machine:
    raw = _raw_machine_id(root)
    if raw is None:
        issues.append(
            ProbeIssue(
                "machine-id",
                "no /etc/machine-id: reports are told apart by hostname only",
                severity="info",
            )
        )
    return Machine(hostname=_uname()[3], id=hash_machine_id(raw) if raw else None)
