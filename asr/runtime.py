"""Process set-up shared by the commands: device, CPU threads, seeding, logging.

torch is imported by the functions that need it, so the core counts here serve ``asr transcribe
runtime=onnx``, which never loads torch.
"""

from __future__ import annotations

import logging
import os
import random
import time
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies summed over all CPUs, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return total - idle, total


def busy_cores(interval_s: float = 0.25) -> float:
    """Cores other processes keep busy right now, sampled over ``interval_s``.

    A sample, not the load average: the 1-minute load average still counts work that just
    ended (a recipe's previous stage), which made a training started right after it
    take one thread on an idle machine. Falls back to the load average off Linux.
    """
    try:
        busy0, total0 = _cpu_times()
        time.sleep(interval_s)
        busy1, total1 = _cpu_times()
    except (OSError, ValueError, IndexError):
        try:
            return os.getloadavg()[0]
        except OSError:
            return 0.0
    cpus = os.cpu_count() or 1
    return cpus * (busy1 - busy0) / max(1, total1 - total0)


def free_cores() -> int:
    """Cores not busy with other work right now, at least 1.

    Oversubscribing is the costly mistake on a shared machine: two torch threads on a
    machine where another process holds a core ran slower than one thread.
    """
    cores = available_cores()
    return max(1, min(cores, int(cores - busy_cores() + 0.5)))


def setup_threads(threads: int = 0) -> int:
    """Set torch's intra-op threads: ``threads`` if > 0, else :func:`free_cores`."""
    import torch

    n = threads if threads > 0 else free_cores()
    torch.set_num_threads(n)
    return n


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` → CUDA when available, else CPU; an explicit ``cuda`` without a GPU is an error."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device={name!r} asked for, but no CUDA GPU is available (use device=cpu or auto)")
    return dev


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def peak_rss_mb(children: bool = False) -> float:
    """Peak resident memory of this process (or of its finished children), in MB, from ``getrusage``."""
    import resource
    import sys

    usage = resource.getrusage(resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF)
    return usage.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)  # bytes on macOS, KiB on Linux


def memory_mb() -> dict:
    """This process's resident memory now and at its peak, in MB (``/proc/self/status``; peak only elsewhere)."""
    try:
        fields = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
        return {"rss_mb": int(fields["VmRSS"].split()[0]) / 1024, "peak_rss_mb": int(fields["VmHWM"].split()[0]) / 1024}
    except (OSError, KeyError, ValueError):
        return {"rss_mb": None, "peak_rss_mb": peak_rss_mb()}
