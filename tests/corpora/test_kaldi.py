"""Kaldi data directories to manifests: fixtures built in tmp_path, plus the real speechocean762 copy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.corpora.kaldi import KaldiError, kaldi_records, prepare_kaldi
from asr.data.manifest import read_manifest

SR = 16000
SPEECHOCEAN = Path(__file__).resolve().parents[3] / "shared" / "data" / "speechocean762"


def _wav(path: Path, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.1 * np.sin(np.arange(int(seconds * SR)) / 7)).astype(np.float32), SR, subtype="PCM_16")


def _kaldi_dir(root: Path, wav_scp: str, extra: dict[str, str] | None = None) -> Path:
    d = root / "data" / "train"
    d.mkdir(parents=True)
    files = {"text": "u1 HELLO WORLD\nu2 ZERO THREE\n", "utt2spk": "u1 spkA\nu2 spkB\n", "wav.scp": wav_scp,
             "spk2gender": "spkA f\nspkB m\n", **(extra or {})}
    for name, content in files.items():
        (d / name).write_text(content)
    return d


def test_paths_resolve_against_the_named_root_and_records_carry_speaker_and_gender(tmp_path):
    _wav(tmp_path / "audio" / "a.wav", 1.0)
    _wav(tmp_path / "audio" / "b.wav", 0.5)
    d = _kaldi_dir(tmp_path, "u1 audio/a.wav\nu2 audio/b.wav\n")
    records, skipped = kaldi_records(d, root=tmp_path)
    assert skipped == []
    assert [(r["id"], r["text"], r["speaker"], r["gender"], r["duration"]) for r in records] == [
        ("u1", "hello world", "spkA", "f", 1.0), ("u2", "zero three", "spkB", "m", 0.5)]
    assert records[0]["audio_filepath"] == str((tmp_path / "audio" / "a.wav").resolve())
    with pytest.raises(KaldiError, match="cannot read"):  # default root is the data dir, where audio/ is not
        kaldi_records(d)


def test_segments_give_offsets_and_durations_clipped_to_the_recording(tmp_path):
    _wav(tmp_path / "long.wav", 3.0)
    d = _kaldi_dir(tmp_path, f"rec1 {tmp_path / 'long.wav'}\n",
                   {"segments": "u1 rec1 0.5 1.25\nu2 rec1 2.0 -1\n"})
    records, _ = kaldi_records(d)
    assert [(r["offset"], r["duration"]) for r in records] == [(0.5, 0.75), (2.0, 1.0)]
    out = tmp_path / "m.jsonl"
    prepare_kaldi(d, out)
    utts = read_manifest(out)
    assert [(u.utt_id, u.offset_s, u.duration_s) for u in utts] == [("u1", 0.5, 0.75), ("u2", 2.0, 1.0)]


def test_a_pipe_entry_is_refused_naming_its_line_unless_allowed(tmp_path):
    _wav(tmp_path / "a.wav", 1.0)
    _wav(tmp_path / "src.wav", 0.75)
    marker = tmp_path / "ran"
    d = _kaldi_dir(tmp_path, f"u1 {tmp_path / 'a.wav'}\nu2 touch {marker}; cat {tmp_path / 'src.wav'} |\n")
    with pytest.raises(KaldiError, match=r"wav\.scp:2: recording u2 is a shell command"):
        kaldi_records(d)
    assert not marker.exists()  # refused before anything ran
    records, _ = kaldi_records(d, allow_pipes=True, audio_dir=tmp_path / "piped")
    assert marker.exists() and records[1]["audio_filepath"] == str(tmp_path / "piped" / "u2.flac")
    assert records[1]["duration"] == 0.75
    assert sf.info(records[1]["audio_filepath"]).format == "FLAC"


def test_a_failing_pipe_and_bad_tables_are_errors_naming_file_and_line(tmp_path):
    d = _kaldi_dir(tmp_path, "u1 false |\nu2 false |\n")
    with pytest.raises(KaldiError, match=r"wav\.scp:1: the command for u1 failed"):
        kaldi_records(d, allow_pipes=True)
    (d / "wav.scp").write_text("u1 a.wav\nu1 b.wav\n")
    with pytest.raises(KaldiError, match=r"wav\.scp:2: key 'u1' repeats .*wav\.scp:1"):
        kaldi_records(d)
    _wav(tmp_path / "a.wav", 1.0)
    (d / "wav.scp").write_text("u1 a.wav\n")
    with pytest.raises(KaldiError, match=r"text:2: recording u2 of utterance u2 is not in"):
        kaldi_records(d, root=tmp_path)
    (d / "utt2spk").unlink()
    with pytest.raises(KaldiError, match="utt2spk: missing"):
        kaldi_records(d)


def test_utterances_without_text_are_left_out_and_reported(tmp_path):
    _wav(tmp_path / "a.wav", 1.0)
    d = _kaldi_dir(tmp_path, f"u1 {tmp_path / 'a.wav'}\nu2 {tmp_path / 'a.wav'}\n", {"text": "u1 HI\nu2 !!\n"})
    report = prepare_kaldi(d, tmp_path / "m.jsonl")
    assert report["utterances"] == 1 and len(report["skipped"]) == 1 and "u2 has no text" in report["skipped"][0]


@pytest.mark.skipif(not (SPEECHOCEAN / "train" / "wav.scp").is_file(), reason="needs ../shared/data/speechocean762")
def test_speechocean762_imports_whole(tmp_path):
    report = prepare_kaldi(SPEECHOCEAN / "train", tmp_path / "train.jsonl", root=SPEECHOCEAN)
    assert (report["utterances"], report["speakers"], report["skipped"]) == (2500, 125, [])
    assert 2.8 < report["hours"] < 3.0
    first = json.loads((tmp_path / "train.jsonl").read_text().splitlines()[0])
    assert first["text"] == "we call it bear" and first["speaker"] == "0001" and first["gender"] == "m"


def test_copying_a_data_dir_elsewhere_only_needs_the_root(tmp_path):
    _wav(tmp_path / "corpus" / "audio" / "a.wav", 1.0)
    _wav(tmp_path / "corpus" / "audio" / "b.wav", 1.0)
    d = _kaldi_dir(tmp_path / "corpus", "u1 audio/a.wav\nu2 audio/b.wav\n")
    moved = tmp_path / "elsewhere"
    shutil.copytree(d, moved)
    records, _ = kaldi_records(moved, root=tmp_path / "corpus")
    assert len(records) == 2


def test_import_kaldi_and_split_speakers_commands(tmp_path):
    import subprocess
    import sys

    _wav(tmp_path / "audio" / "a.wav", 1.0)
    _wav(tmp_path / "audio" / "b.wav", 1.0)
    d = _kaldi_dir(tmp_path, "u1 audio/a.wav\nu2 sox audio/b.wav -t wav - |\n")
    asr = [sys.executable, "-m", "asr"]
    r = subprocess.run([*asr, "import-kaldi", f"data_dir={d}", f"out={tmp_path / 'all.jsonl'}", f"root={tmp_path}"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "wav.scp:2: recording u2 is a shell command" in r.stderr and not (tmp_path / "all.jsonl").exists()
    (d / "wav.scp").write_text("u1 audio/a.wav\nu2 audio/b.wav\n")
    r = subprocess.run([*asr, "import-kaldi", f"data_dir={d}", f"out={tmp_path / 'all.jsonl'}", f"root={tmp_path}"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "2 utterances, 2 speakers" in r.stdout
    r = subprocess.run([*asr, "split-speakers", f"manifest={tmp_path / 'all.jsonl'}",
                        f"train_out={tmp_path / 'train.jsonl'}", f"dev_out={tmp_path / 'dev.jsonl'}",
                        "dev_fraction=0.5"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    kept = {json.loads(x)["speaker"] for x in (tmp_path / "train.jsonl").read_text().splitlines()}
    held = {json.loads(x)["speaker"] for x in (tmp_path / "dev.jsonl").read_text().splitlines()}
    assert len(kept) == len(held) == 1 and kept != held
