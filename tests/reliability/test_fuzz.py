"""Property tests (hypothesis): manifest parsing, text normalisation, greedy decoding, audio loading.

Whatever the input, each function returns a valid result or raises our own error type;
nothing else escapes, and the process never dies.
"""

import json
import math
import string
from pathlib import Path

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asr.data.audio import AudioError, audio_info, load_audio
from asr.data.manifest import ManifestError, Utterance, parse_line
from asr.data.text import normalize_text
from asr.decoding.ctc import greedy_decode

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8)
path_parts = st.sampled_from(["a.flac", "..", ".", "sub", "/", "", "~", "x/../..", "\x00", "é", " "])
manifest_records = st.fixed_dictionaries(
    {}, optional={"audio_filepath": st.lists(path_parts, max_size=5).map("/".join) | json_values,
                  "duration": st.floats(allow_nan=True, allow_infinity=True) | json_values,
                  "text": st.text(max_size=30) | json_values, "offset": st.floats() | json_values,
                  "id": st.text(max_size=10) | json_values})


@FUZZ
@given(line=st.text(max_size=200))
def test_any_text_line_parses_or_raises_manifest_error(tmp_path, line):
    try:
        utt = parse_line(line, tmp_path, "m.jsonl:1")
    except ManifestError as err:
        assert str(err).startswith("m.jsonl:1: ")
    else:
        assert isinstance(utt, Utterance)


@FUZZ
@given(rec=manifest_records)
def test_any_json_record_parses_to_a_valid_utterance_or_raises_manifest_error(tmp_path, rec):
    base = tmp_path.resolve()
    try:
        utt = parse_line(json.dumps(rec), base, "m.jsonl:7")
    except ManifestError as err:
        assert str(err).startswith("m.jsonl:7: ")
        return
    assert math.isfinite(utt.duration_s) and utt.duration_s > 0 and utt.offset_s >= 0 and utt.text.strip()
    assert isinstance(utt.utt_id, str) and utt.utt_id
    if not Path(rec["audio_filepath"]).is_absolute():  # the path rule: relative paths stay inside
        assert Path(utt.audio_path).is_relative_to(base)


@FUZZ
@given(text=st.text(max_size=100))
def test_normalize_text_is_idempotent_and_keeps_only_the_alphabet(text):
    norm = normalize_text(text)
    assert normalize_text(norm) == norm
    assert set(norm) <= set(string.ascii_lowercase + "' ")
    assert norm == norm.strip() and "  " not in norm


@FUZZ
@given(text=st.text(alphabet=string.ascii_lowercase + "'", min_size=1, max_size=10).flatmap(
    lambda w: st.lists(st.just(w), min_size=1, max_size=4)))
def test_normalize_text_keeps_normalised_words(text):
    joined = " ".join(text)
    assert normalize_text(joined) == joined


def _reference_greedy(frames: list[int], blank: int) -> list[int]:
    out, prev = [], None
    for f in frames:
        if f != prev and f != blank:
            out.append(f)
        prev = f
    return out


@FUZZ
@given(data=st.data(), batch=st.integers(1, 4), frames=st.integers(0, 12), vocab=st.integers(1, 6))
def test_greedy_decode_matches_the_definition_per_item_and_ignores_padding(data, batch, frames, vocab):
    scores = torch.tensor(data.draw(st.lists(st.floats(-5, 5), min_size=batch * frames * vocab,
                                             max_size=batch * frames * vocab)), dtype=torch.float32)
    log_probs = scores.reshape(batch, frames, vocab)
    lengths = torch.tensor(data.draw(st.lists(st.integers(0, frames), min_size=batch, max_size=batch)))
    blank = data.draw(st.integers(0, vocab - 1))
    out = greedy_decode(log_probs, lengths, blank=blank)
    assert len(out) == batch
    for b in range(batch):
        n = int(lengths[b])
        best = log_probs[b, :n].argmax(-1).tolist()
        assert out[b] == _reference_greedy(best, blank)
        assert len(out[b]) <= n and blank not in out[b]
        assert greedy_decode(log_probs[b:b + 1, :n], lengths[b:b + 1], blank=blank) == [out[b]]  # alone, unpadded
    padded = log_probs.clone()
    for b in range(batch):
        padded[b, int(lengths[b]):] = torch.randn_like(padded[b, int(lengths[b]):])
    assert greedy_decode(padded, lengths, blank=blank) == out


HEADERS = [b"", b"RIFF\x24\x08\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x80\x3e\x00\x00", b"fLaC",
           b"fLaC\x00\x00\x00\x22", b"OggS\x00\x02", b"ID3\x04\x00", b"NIST_1A\n   1024\n", b"FORM\x00\x00\x00\x20AIFF",
           b"\xff\xfb\x90\x00", b".snd\x00\x00\x00\x18"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.sampled_from(HEADERS), body=st.binary(min_size=0, max_size=2048),
       suffix=st.sampled_from([".wav", ".flac", ".ogg", ".mp3", ".sph", ".bin"]))
def test_random_bytes_into_audio_loading_raise_only_audio_error(tmp_path, header, body, suffix, record_property):
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(header + body)
    record_property("fuzz_audio_files", 1)  # summed over the examples by benchmarks/reliability.py
    for call in (lambda: audio_info(path), lambda: load_audio(path, 16000)):
        try:
            result = call()
        except AudioError as err:
            assert str(path) in str(err)
            continue
        if hasattr(result, "sample_rate_hz"):
            assert result.sample_rate_hz > 0 and result.num_frames >= 0
        else:
            assert result.size > 0 and result.dtype.name == "float32" and torch.isfinite(torch.from_numpy(result)).all()
