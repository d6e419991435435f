"""NIST SPHERE decoding (asr.data.sphere) on headers written in tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from asr.corpora.an4 import read_sphere as an4_read_sphere
from asr.data.audio import AudioError
from asr.data.sphere import read_sphere, read_sphere_header


def test_read_sphere_header_variants(tmp_path):
    x = (np.arange(1000) * 37 % 20000 - 10000).astype(np.int16)

    def sphere(fields: list[str], data: bytes) -> Path:
        head = ("NIST_1A\n   1024\n" + "".join(f + "\n" for f in fields) + "end_head\n").encode()
        path = tmp_path / f"f{len(list(tmp_path.iterdir()))}.sph"
        path.write_bytes(head.ljust(1024, b" ") + data)
        return path

    # a real-valued sample_rate: libsndfile refuses this header, the fallback reads it
    big = sphere(["sample_count -i 1000", "sample_n_bytes -i 2", "sample_byte_format -s2 10",
                  "sample_rate -r 16000.0", "channel_count -i 1", "sample_coding -s3 pcm"], x.astype(">i2").tobytes())
    assert read_sphere(big)[1] == 16000
    np.testing.assert_array_equal(read_sphere(big)[0], x)
    little = sphere(["sample_count -i 500", "sample_n_bytes -i 2", "sample_byte_format -s2 01",
                     "sample_rate -i 8000", "channel_count -i 2"], x.astype("<i2").tobytes())
    np.testing.assert_array_equal(read_sphere(little)[0], x.reshape(500, 2))
    shorten = sphere(["sample_count -i 1000", "sample_rate -i 16000", "sample_coding -s26 pcm,embedded-shorten-v2.00"],
                     b"\0" * 100)
    with pytest.raises(AudioError, match="sph2pipe"):
        read_sphere(shorten)
    truncated = sphere(["sample_count -i 1000", "sample_rate -i 16000", "sample_byte_format -s2 01"], b"\0" * 100)
    with pytest.raises(AudioError, match="truncated"):
        read_sphere(truncated)


def test_read_sphere_header_fields_and_larger_header(tmp_path):
    head = b"NIST_1A\n   2048\nsample_rate -i 16000\nsample_rate_r -r 8000.5\ndatabase_id -s3 an4\nend_head\n"
    path = tmp_path / "big_header.sph"
    path.write_bytes(head.ljust(2048, b" ") + np.arange(4, dtype="<i2").tobytes())
    fields, data = read_sphere_header(path)
    assert fields == {"sample_rate": 16000, "sample_rate_r": 8000.5, "database_id": "an4"}
    assert data == np.arange(4, dtype="<i2").tobytes()  # the header's own size, not 1024, is skipped
    np.testing.assert_array_equal(read_sphere(path)[0], np.arange(4))
    (tmp_path / "riff.sph").write_bytes(b"RIFF" + b"\0" * 100)
    with pytest.raises(AudioError, match="NIST_1A"):
        read_sphere_header(tmp_path / "riff.sph")


def test_an4_keeps_the_name_read_sphere():
    assert an4_read_sphere is read_sphere
