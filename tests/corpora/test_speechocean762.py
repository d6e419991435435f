"""speechocean762's digit readers held out: a fixture built in tmp_path, plus the real copy in ../shared."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.corpora.kaldi import KaldiError
from asr.corpora.speechocean762 import prepare_speechocean762

SPEECHOCEAN = Path(__file__).resolve().parents[3] / "shared" / "data" / "speechocean762"


def _corpus(root: Path, texts: dict[str, tuple[str, str]]) -> Path:
    """A speechocean762-shaped directory: ``train/`` with ``wav.scp`` paths relative to ``root``."""
    (root / "train").mkdir(parents=True)
    for utt in texts:
        (root / "audio").mkdir(exist_ok=True)
        sf.write(root / "audio" / f"{utt}.wav", np.zeros(8000, np.float32), 16000, subtype="PCM_16")
    for name, line in (("text", lambda u, s, t: f"{u} {t}"), ("wav.scp", lambda u, s, t: f"{u} audio/{u}.wav"),
                       ("utt2spk", lambda u, s, t: f"{u} {s}")):
        (root / "train" / name).write_text("".join(line(u, s, t) + "\n" for u, (s, t) in texts.items()))
    return root


def _rows(path: str) -> list[dict]:
    return [json.loads(x) for x in Path(path).read_text().splitlines()]


def test_every_speaker_who_reads_a_digit_string_is_held_out_with_all_their_utterances(tmp_path):
    src = _corpus(tmp_path / "so", {"u1": ("s1", "ZERO THREE"), "u2": ("s1", "IT'S A DOG"),
                                    "u3": ("s2", "WE CALL IT BEAR"), "u4": ("s3", "OH ONE NINE"),
                                    "u5": ("s2", "ONE BIG CAT")})
    r = prepare_speechocean762(src, tmp_path / "out", apostrophes=False)
    assert [(k, v["utterances"], v["speakers"]) for k, v in r.items()] == [
        ("all", 5, 3), ("train", 2, 1), ("held_out", 3, 2), ("digits", 2, 2)]
    assert [x["text"] for x in _rows(r["train"]["manifest"])] == ["we call it bear", "one big cat"]
    assert [x["text"] for x in _rows(r["held_out"]["manifest"])] == ["zero three", "its a dog", "oh one nine"]
    kept = prepare_speechocean762(src, tmp_path / "keep")
    assert _rows(kept["held_out"]["manifest"])[1]["text"] == "it's a dog"


def test_a_corpus_without_digit_readers_is_refused_by_name(tmp_path):
    src = _corpus(tmp_path / "so", {"u1": ("s1", "HELLO THERE"), "u2": ("s2", "ONE BIG CAT")})
    with pytest.raises(KaldiError, match=rf"{src}: no speaker reads a digit string"):
        prepare_speechocean762(src, tmp_path / "out")
    r = subprocess.run([sys.executable, "-m", "asr", "prepare-speechocean762", f"src={src}", f"out={tmp_path / 'o'}"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "no speaker reads a digit string" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.skipif(not SPEECHOCEAN.is_dir(), reason=f"speechocean762 not found at {SPEECHOCEAN}")
def test_the_real_copy_gives_99_training_speakers_and_77_held_out_digit_strings(tmp_path):
    r = prepare_speechocean762(SPEECHOCEAN, tmp_path / "so", apostrophes=False)
    assert (r["all"]["utterances"], r["all"]["speakers"]) == (2500, 125)
    assert (r["train"]["utterances"], r["train"]["speakers"]) == (1980, 99)
    assert (r["digits"]["utterances"], r["digits"]["speakers"]) == (77, 26)
    assert not any("'" in x["text"] for x in _rows(r["train"]["manifest"]))
    assert not {x["speaker"] for x in _rows(r["train"]["manifest"])} & {
        x["speaker"] for x in _rows(r["digits"]["manifest"])}
