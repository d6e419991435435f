"""Property test: no manifest field and no audio header makes a command run long or allocate without bound.

Hypothesis writes a manifest line (duration, offset, id, text drawn from extreme and malformed values)
pointing at a WAV file whose header fields (channels, sample rate, bits per sample, block alignment,
chunk sizes) it also draws, sometimes truncated. Each example goes through what ``asr validate`` and
``asr transcribe`` do with it: validation at every audio level, the manifest reader, and a whole
transcription (duration probing, window planning, decoding, writing) with a stand-in model. Every
example must finish within 10 s (hypothesis' deadline), stay under 2 GB of new address space (the soft
``RLIMIT_AS`` is lowered for the test: an allocation past it raises ``MemoryError``) and end in a result
or one of the toolkit's own errors.
"""

import json
import resource
import struct
import time
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_bounded_inputs import LoudIsA

from asr.config.schema import ConfigError
from asr.data.audio import AudioError
from asr.data.manifest import ManifestError
from asr.data.tokenizer import CharTokenizer
from asr.data.validate import validate_manifest
from asr.inference.outputs import OutputError
from asr.inference.transcribe import transcribe

OURS = (ManifestError, AudioError, OutputError, ConfigError)
LIMIT_BYTES = 2 * 1024 ** 3
SLOWEST: list[float] = []

numbers = (st.floats(allow_nan=True, allow_infinity=True) | st.integers(-2 ** 70, 2 ** 70)
           | st.sampled_from([1e308, 1e7, 86400.0, -1.0, 0.0, 1e-9, "3", None, [], {}]))
VALID = {"channels": 1, "rate": 16000, "bits": 16, "align": 2, "data_size": 32000, "riff_size": 32036, "keep": 32000}
WILD = {
    "channels": st.integers(0, 2 ** 16 - 1), "rate": st.integers(0, 2 ** 32 - 1),
    "bits": st.sampled_from([0, 1, 8, 24, 32, 64, 65535]), "align": st.integers(0, 2 ** 16 - 1),
    "data_size": st.integers(0, 2 ** 32 - 1) | st.just(0xFFFFFFFF), "riff_size": st.integers(0, 2 ** 32 - 1),
    "keep": st.integers(0, 31999),  # bytes of samples kept: a truncated download
}


@st.composite
def header(draw) -> dict:
    """A real header with up to three fields replaced by drawn values (none: the file is sound)."""
    wild = draw(st.sets(st.sampled_from(sorted(WILD)), max_size=3))
    return {k: draw(WILD[k]) if k in wild else v for k, v in VALID.items()}


@st.composite
def line(draw) -> dict:
    """A manifest line's fields: each a sound value or a drawn one, some left out."""
    sound = {"duration": 1.0, "offset": 0.0, "id": "u1", "text": "a"}
    wild = {"duration": numbers, "offset": numbers, "id": st.text(max_size=12) | numbers,
            "text": st.text(max_size=30) | numbers}
    out = {}
    for key in sound:
        how = draw(st.sampled_from(["sound", "sound", "wild", "absent"]) if key != "duration"
                   else st.sampled_from(["sound", "wild", "wild"]))
        if how != "absent":
            out[key] = draw(wild[key]) if how == "wild" else sound[key]
    return out


def wav_bytes(h: dict) -> bytes:
    """A 1 s, 16 kHz, 16-bit mono WAV of noise with the drawn header fields written over the real ones."""
    pcm = (np.random.default_rng(0).standard_normal(16000) * 3000).astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, h["channels"], h["rate"], (h["rate"] * h["align"]) % 2 ** 32, h["align"],
                      h["bits"])
    data = b"RIFF" + struct.pack("<I", h["riff_size"]) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt \
        + b"data" + struct.pack("<I", h["data_size"]) + pcm
    return data[:44 + h["keep"]]


def run_one(root: Path, h: dict, fields: dict) -> None:
    audio = root / "a.wav"
    audio.write_bytes(wav_bytes(h))
    manifest = root / "in.jsonl"
    manifest.write_text(json.dumps({"audio_filepath": str(audio), **fields}) + "\n")
    t0 = time.perf_counter()
    for level in ("exists", "header", "decode"):
        report = validate_manifest(manifest, audio=level, require_text=False)
        assert report["lines"] == 1
    out = root / "out.jsonl"
    try:
        transcribe(LoudIsA(), CharTokenizer(LoudIsA.vocab), manifest, out, overwrite=True, num_workers=0,
                   progress=False)
    except OURS:
        pass
    SLOWEST.append(time.perf_counter() - t0)


def _vm_bytes() -> int:
    for row in Path("/proc/self/status").read_text().splitlines():
        if row.startswith("VmSize:"):
            return int(row.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def test_no_manifest_field_or_audio_header_runs_long_or_allocates_without_bound(tmp_path, record_property):
    # the general decoder's first use imports librosa and audioread (seconds on a busy machine): a one-time
    # cost, not work an input drives, so it is paid before the clock starts
    run_one(tmp_path, {**VALID, "bits": 0}, {"duration": 1.0})
    SLOWEST.clear()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = _vm_bytes() + LIMIT_BYTES
    resource.setrlimit(resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))

    @settings(max_examples=60, deadline=10_000, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(header(), line())
    def explore(h, fields):
        run_one(tmp_path, h, fields)

    try:
        explore()
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    assert len(SLOWEST) >= 60 and max(SLOWEST) < 10.0
    record_property("property_examples", len(SLOWEST))
    record_property("property_slowest_ms", int(1000 * max(SLOWEST)))
