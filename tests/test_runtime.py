import subprocess
import sys

import pytest

from asr import runtime


def test_busy_cores_sees_a_spinning_process():
    spinner = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 5: pass"])
    try:
        import time

        time.sleep(0.5)  # let it start
        assert runtime.busy_cores(0.5) >= 0.6
    finally:
        spinner.kill()
        spinner.wait()


@pytest.mark.parametrize(("busy", "cores", "expected"),
                         [(0.0, 2, 2), (0.3, 2, 2), (0.8, 2, 1), (1.9, 2, 1), (5.0, 8, 3)])
def test_free_cores_rounds_and_keeps_one(monkeypatch, busy, cores, expected):
    monkeypatch.setattr(runtime, "busy_cores", lambda interval_s=0.25: busy)
    monkeypatch.setattr(runtime, "available_cores", lambda: cores)
    assert runtime.free_cores() == expected
