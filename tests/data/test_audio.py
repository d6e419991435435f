"""asr.data.audio.resample: soxr called directly gives librosa's samples, without importing librosa."""

import subprocess
import sys

import numpy as np
import pytest

from asr.data.audio import resample


@pytest.mark.parametrize("orig_hz, target_hz, n", [(8000, 16000, 8001), (44100, 16000, 88207), (48000, 16000, 48000),
                                                   (22050, 16000, 12345), (16000, 8000, 999)])
def test_resample_equals_librosa_soxr_hq_sample_for_sample(orig_hz, target_hz, n):
    librosa = pytest.importorskip("librosa")
    x = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    got = resample(x, orig_hz, target_hz)
    assert got.shape == (int(np.ceil(n * target_hz / orig_hz)),) and got.dtype == np.float32
    np.testing.assert_array_equal(got, librosa.resample(x, orig_sr=orig_hz, target_sr=target_hz, res_type="soxr_hq"))
    assert resample(x, orig_hz, orig_hz) is x


def test_resampling_imports_neither_librosa_nor_torch():
    code = ("import sys, numpy as np\nfrom asr.data.audio import resample\nresample(np.zeros(800, np.float32), 8000, "
            "16000)\nprint(sorted(m for m in ('librosa', 'scipy.signal', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"
