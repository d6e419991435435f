"""The Python API (asr.api): its docs page runs as a doctest, and its results carry what they promise."""

from __future__ import annotations

import doctest
import shutil
from pathlib import Path

import numpy as np
import pytest

import asr
from asr.inference.export import export_onnx
from tests.conftest import train_tone_model

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tone_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    model_file, _ = train_tone_model(root)
    return root, model_file


def test_api_page_example_runs_as_a_doctest(tone_model, monkeypatch):
    root, model_file = tone_model
    work = root / "doc"
    work.mkdir(exist_ok=True)
    shutil.copy(model_file, work / "model.pt")
    export_onnx(work / "model.pt", work / "model.onnx", overwrite=True)
    shutil.copy(root / "corpus" / "audio" / "train_000.flac", work / "abc.flac")  # TONE_TEXTS[0] == "abc"
    shutil.copy(root / "corpus" / "audio" / "train_001.flac", work / "cab.flac")  # TONE_TEXTS[1] == "cab"
    monkeypatch.chdir(work)
    result = doctest.testfile(str(ROOT / "docs" / "api.md"), module_relative=False, verbose=False,
                              optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 8 and result.failed == 0


def test_public_names_and_lazy_import():
    assert set(asr.__all__) == {"Recognizer", "Transcript", "Word", "__version__"}
    assert asr.Recognizer.__module__ == "asr.api" and asr.Word.__name__ == "Word"
    with pytest.raises(AttributeError):
        asr.NoSuchThing  # noqa: B018


def test_words_cover_the_transcript_in_order_for_every_decoder(tone_model):
    root, model_file = tone_model
    r = asr.Recognizer.load(model_file)
    audio = sorted((root / "corpus" / "audio").glob("*.flac"))
    for decoder in ("greedy", "beam"):
        for t in r.transcribe(audio, decoder=decoder, beam_size=8):
            assert " ".join(w.text for w in t.words) == t.text
            starts = [w.start_s for w in t.words]
            assert starts == sorted(starts) and all(w.end_s <= t.duration_s + 1e-9 for w in t.words)
    with pytest.raises(ValueError, match="1-D"):
        r.transcribe(np.zeros((2, 2), dtype=np.float32))  # a 2-D array is not one input
