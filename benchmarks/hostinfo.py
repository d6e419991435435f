"""What a benchmark's figures depend on, recorded beside them: the CPU's vector flags, cores and load, commit, date."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_int8")


def cpu_flags() -> list[str]:
    """The host's AVX2 / AVX-512 / VNNI / AMX flags, which absolute speeds depend on ([] off Linux)."""
    try:
        words = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return []
    return sorted(words & set(FLAGS))


def host() -> dict:
    """Cores this process may use, the load average, the CPU flags, the commit of the asr timed, the date."""
    import asr  # the package the child processes import too (same interpreter and PYTHONPATH)

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(asr.__file__).resolve().parents[1],
                            capture_output=True, text=True)
    return {"cores_available": len(os.sched_getaffinity(0)), "cpus": os.cpu_count(),
            "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()], "cpu_flags": cpu_flags(),
            "commit": commit.stdout.strip() or None, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
