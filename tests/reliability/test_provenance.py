"""A transcription record knows its inputs and model: a resumed run refuses a record that is not its own."""

import json

import pytest
import torch
from test_bounded_inputs import LoudIsA, _tone_file

from asr.data.tokenizer import CharTokenizer
from asr.inference.outputs import OutputError
from asr.inference.transcribe import job_path, transcribe

TOK = CharTokenizer(LoudIsA.vocab)


def _folder(root, names):
    for name in names:
        _tone_file(root / name, 1.5)
    return root


def _ids(path):
    return [json.loads(x)["id"] for x in path.read_text().splitlines()]


def test_a_record_from_other_inputs_is_not_extended(tmp_path):
    out = tmp_path / "out.jsonl"
    transcribe(LoudIsA(), TOK, _folder(tmp_path / "a", ["x.wav", "y.wav", "z.wav"]), out, num_workers=0)
    before = out.read_bytes()
    with pytest.raises(OutputError, match="not inputs of this run") as err:
        transcribe(LoudIsA(), TOK, _folder(tmp_path / "b", ["p.wav"]), out, num_workers=0)
    assert "x.wav" in str(err.value) and "overwrite=true" in str(err.value)
    assert out.read_bytes() == before


def test_a_record_from_another_model_is_not_extended(tmp_path):
    out = tmp_path / "out.jsonl"
    folder = _folder(tmp_path / "a", ["x.wav", "y.wav"])
    transcribe(LoudIsA(), TOK, folder, out, num_workers=0)
    _folder(folder, ["w.wav"])  # work for the rerun to do
    before = out.read_bytes()
    other = LoudIsA()
    other.features.set_stats(torch.full_like(other.features.mean, 0.5), other.features.std)
    with pytest.raises(OutputError, match="another model"):
        transcribe(other, TOK, folder, out, num_workers=0)
    assert out.read_bytes() == before


def test_the_same_job_resumes_and_new_files_join_it(tmp_path):
    out = tmp_path / "out.jsonl"
    folder = _folder(tmp_path / "a", ["x.wav", "y.wav"])
    first = transcribe(LoudIsA(), TOK, folder, out, num_workers=0)
    job = json.loads(job_path(out).read_text())
    assert job["model"]["fingerprint"] == first["provenance"]["model"]["fingerprint"]
    assert job["inputs"]["files"] == 2 and len(job["inputs"]["fingerprint"]) == 64
    _folder(folder, ["z.wav"])
    summary = transcribe(LoudIsA(), TOK, folder, out, num_workers=0)
    assert _ids(out) == ["x.wav", "y.wav", "z.wav"] and summary["this_run"]["files"] == 1
    assert summary["provenance"]["inputs"]["files"] == 3
