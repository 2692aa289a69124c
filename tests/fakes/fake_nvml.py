"""A scripted stand-in for the ``pynvml`` module (nvidia-ml-py).

It offers the functions, constants and error class canirun uses, with the same
names and calling conventions, driven by a list of ``FakeGpu`` scripts. Each
GPU can declare functions that are "not supported" or that report the GPU as
lost, so every failure path of the probe can be exercised without a driver.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

# Error codes as nvml.h numbers them.
NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_TIMEOUT = 10
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18
NVML_ERROR_UNKNOWN = 999

_NAMES = {
    NVML_ERROR_UNINITIALIZED: "Uninitialized",
    NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
    NVML_ERROR_NOT_SUPPORTED: "Not Supported",
    NVML_ERROR_NO_PERMISSION: "Insufficient Permissions",
    NVML_ERROR_NOT_FOUND: "Not Found",
    NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
    NVML_ERROR_TIMEOUT: "Timeout",
    NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
    NVML_ERROR_FUNCTION_NOT_FOUND: "Function Not Found",
    NVML_ERROR_GPU_IS_LOST: "GPU is lost",
    NVML_ERROR_LIB_RM_VERSION_MISMATCH: "RM has detected an NVML/RM version mismatch.",
    NVML_ERROR_UNKNOWN: "Unknown Error",
}

ALL_ERRORS = tuple(_NAMES)


class NVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return _NAMES.get(self.value, f"Unknown Error {self.value}")


@dataclass
class FakeMig:
    uuid: str
    total: int
    free: int


@dataclass
class FakeGpu:
    name: str = "NVIDIA GeForce RTX 4090"
    uuid: str = "GPU-11111111-2222-3333-4444-555555555555"
    total: int = 25_757_220_864  # 24564 MiB, as nvidia-smi reports an RTX 4090
    free: int = 24_000_000_000
    cc: tuple[int, int] = (8, 9)
    bus_width: int = 384
    mem_clock: int = 10501
    pcie: tuple[int, int] = (4, 16)
    mig: list[FakeMig] | None = None
    # function name -> NVML error code it raises for this GPU
    errors: dict[str, int] = field(default_factory=dict)


class FakeNvml:
    """Module-like object: pass it to ``probe_gpus`` or install it with monkeypatch."""

    NVMLError = NVMLError
    NVML_CLOCK_MEM = 2
    NVML_DEVICE_MIG_ENABLE = 1
    NVML_DEVICE_MIG_DISABLE = 0
    nvmlMemory_v2 = 0x02000028

    def __init__(
        self,
        gpus: list[FakeGpu] | None = None,
        *,
        init_error: int | None = None,
        driver: str = "550.54.15",
        cuda: int = 12040,
        count_error: int | None = None,
        system_errors: dict[str, int] | None = None,
    ) -> None:
        self.gpus = gpus or []
        # nvmlSystem* function name -> the NVML error code it raises
        self.system_errors = system_errors or {}
        self.init_error = init_error
        self.count_error = count_error
        self.driver = driver
        self.cuda = cuda
        self.init_calls = 0
        self.shutdown_calls = 0
        for name, value in globals().items():
            if name.startswith("NVML_ERROR_") or name == "NVML_SUCCESS":
                setattr(self, name, value)

    # -- library ---------------------------------------------------------------
    def nvmlInit(self) -> None:
        self.init_calls += 1
        if self.init_error is not None:
            raise NVMLError(self.init_error)

    def nvmlShutdown(self) -> None:
        self.shutdown_calls += 1

    def _system(self, fn: str) -> None:
        if fn in self.system_errors:
            raise NVMLError(self.system_errors[fn])

    def nvmlSystemGetDriverVersion(self) -> str:
        self._system("nvmlSystemGetDriverVersion")
        return self.driver

    def nvmlSystemGetCudaDriverVersion_v2(self) -> int:
        self._system("nvmlSystemGetCudaDriverVersion_v2")
        return self.cuda

    def nvmlDeviceGetCount(self) -> int:
        if self.count_error is not None:
            raise NVMLError(self.count_error)
        return len(self.gpus)

    # -- devices ---------------------------------------------------------------
    def _gpu(self, handle: Any, fn: str) -> FakeGpu:
        gpu: FakeGpu = handle.gpu
        code = gpu.errors.get(fn)
        if code is not None:
            raise NVMLError(code)
        return gpu

    def nvmlDeviceGetHandleByIndex(self, index: int) -> Any:
        gpu = self.gpus[index]
        code = gpu.errors.get("nvmlDeviceGetHandleByIndex")
        if code is not None:
            raise NVMLError(code)
        return SimpleNamespace(gpu=gpu, mig=None)

    def nvmlDeviceGetName(self, handle: Any) -> str:
        return self._gpu(handle, "nvmlDeviceGetName").name

    def nvmlDeviceGetUUID(self, handle: Any) -> str:
        if handle.mig is not None:
            return str(handle.mig.uuid)
        return self._gpu(handle, "nvmlDeviceGetUUID").uuid

    def nvmlDeviceGetMemoryInfo(self, handle: Any, version: int | None = None) -> Any:
        if handle.mig is not None:
            m = handle.mig
            return SimpleNamespace(total=m.total, free=m.free, used=m.total - m.free)
        gpu = self._gpu(handle, "nvmlDeviceGetMemoryInfo")
        return SimpleNamespace(total=gpu.total, free=gpu.free, used=gpu.total - gpu.free)

    def nvmlDeviceGetCudaComputeCapability(self, handle: Any) -> tuple[int, int]:
        return self._gpu(handle, "nvmlDeviceGetCudaComputeCapability").cc

    def nvmlDeviceGetMemoryBusWidth(self, handle: Any) -> int:
        return self._gpu(handle, "nvmlDeviceGetMemoryBusWidth").bus_width

    def nvmlDeviceGetMaxClockInfo(self, handle: Any, clock: int) -> int:
        assert clock == self.NVML_CLOCK_MEM
        return self._gpu(handle, "nvmlDeviceGetMaxClockInfo").mem_clock

    def nvmlDeviceGetMaxPcieLinkGeneration(self, handle: Any) -> int:
        return self._gpu(handle, "nvmlDeviceGetMaxPcieLinkGeneration").pcie[0]

    def nvmlDeviceGetMaxPcieLinkWidth(self, handle: Any) -> int:
        return self._gpu(handle, "nvmlDeviceGetMaxPcieLinkWidth").pcie[1]

    def nvmlDeviceGetMigMode(self, handle: Any) -> tuple[int, int]:
        gpu = self._gpu(handle, "nvmlDeviceGetMigMode")
        mode = self.NVML_DEVICE_MIG_ENABLE if gpu.mig is not None else 0
        return (mode, mode)

    def nvmlDeviceGetMaxMigDeviceCount(self, handle: Any) -> int:
        gpu = self._gpu(handle, "nvmlDeviceGetMaxMigDeviceCount")
        return 7 if gpu.mig is not None else 0

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: Any, index: int) -> Any:
        gpu = self._gpu(handle, "nvmlDeviceGetMigDeviceHandleByIndex")
        if gpu.mig is None or index >= len(gpu.mig):
            raise NVMLError(NVML_ERROR_NOT_FOUND)
        return SimpleNamespace(gpu=gpu, mig=gpu.mig[index])


def a100_mig() -> FakeGpu:
    """An A100 80GB split into two 3g.40gb MIG instances."""
    return FakeGpu(
        name="NVIDIA A100-SXM4-80GB",
        uuid="GPU-aaaaaaaa-0000-0000-0000-000000000000",
        total=85_899_345_920,
        free=85_000_000_000,
        cc=(8, 0),
        bus_width=5120,
        mem_clock=1593,
        mig=[
            FakeMig("MIG-11111111-aaaa-bbbb-cccc-000000000001", 42_949_672_960, 42_000_000_000),
            FakeMig("MIG-11111111-aaaa-bbbb-cccc-000000000002", 42_949_672_960, 40_000_000_000),
        ],
    )
