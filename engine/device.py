"""Where the model runs, and what to do when it does not fit.

One rule for the whole engine: CUDA when present (with bf16 autocast where the GPU supports it, fp16
otherwise), else the CPU. Out-of-memory is treated as a recoverable condition by the callers (inference halves
its window and finally moves to the CPU), so the test for it lives here next to the device choice.
"""
from __future__ import annotations

import contextlib
import logging

import torch

from engine.errors import InputError

log = logging.getLogger(__name__)

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def choose_device(name: str | torch.device | None = "auto") -> torch.device:
    """`auto` -> cuda:0 when a GPU is usable, else cpu; `cuda` without a GPU is an error the user can act
    on."""
    if isinstance(name, torch.device):
        return name
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    if name.startswith("cuda"):
        check_device(name)
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise ValueError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}")


class DeviceUnavailable(InputError, RuntimeError):
    """A device that was asked for and is not there: an InputError, so the CLI prints it as one `error:` line
    with exit status 2 and the window as a message, and a RuntimeError, as it was before, for callers that catch
    that."""


def check_device(name: str) -> None:
    """Raise DeviceUnavailable (one `error:` line and exit status 2 in the CLI, a message in the window) when
    `name` asks for a CUDA device this machine does not have, saying why and what to pass instead."""
    name = (name or "auto").lower()
    if not name.startswith("cuda"):
        return
    if not torch.cuda.is_available():
        why = ("this torch build has no CUDA support" if torch.version.cuda is None
               else f"torch {torch.__version__} finds no usable CUDA GPU")
        raise DeviceUnavailable(None, f"--device {name}: no CUDA GPU is available ({why}); use --device cpu or auto")
    if ":" in name:
        idx = name.split(":", 1)[1]
        if not idx.isdigit() or int(idx) >= torch.cuda.device_count():
            raise DeviceUnavailable(None, f"--device {name}: there is no such GPU ({torch.cuda.device_count()} found)")


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 on GPUs that have it (no loss scaling needed), fp16 on older ones, None (float32) on the CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device: torch.device, enabled: bool = True):
    """Mixed precision on CUDA, a no-op elsewhere (CPU autocast is slower than float32 for these
    convolutions)."""
    dtype = autocast_dtype(device)
    if not enabled or dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=dtype)


def is_oom(exc: BaseException) -> bool:
    """True for CUDA (and, through the same class, CPU allocator) out-of-memory errors."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def release_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


_LIBC = None


def trim_host_memory() -> None:
    """Give freed heap pages back to the OS (glibc `malloc_trim`; a no-op elsewhere).

    Long inference interleaves big short-lived tensors with many small long-lived objects (the RLE output),
    and glibc keeps the freed tensor pages in the fragmented heap, so the resident set creeps up with the
    video's length; trimming once per window keeps it flat."""
    global _LIBC
    if _LIBC is None:
        import ctypes
        import ctypes.util
        import sys

        _LIBC = False
        if sys.platform.startswith("linux"):
            try:
                lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                _LIBC = lib if hasattr(lib, "malloc_trim") else False
            except OSError:
                _LIBC = False
    if _LIBC:
        _LIBC.malloc_trim(0)


def describe(device: torch.device) -> str:
    """A short name for the status bar and logs."""
    if device.type == "cuda":
        idx = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{idx} ({torch.cuda.get_device_name(idx)})"
    return f"cpu ({torch.get_num_threads()} threads)"
