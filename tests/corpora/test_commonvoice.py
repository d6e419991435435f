"""Common Voice: a release folder built here (MP3 clips written with soundfile, tsv files with the real header)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.corpora.commonvoice import CommonVoiceError, prepare_commonvoice
from asr.data.audio import load_audio
from asr.data.manifest import read_manifest

BIN = Path(sys.executable).parent
# the header of Common Voice 17.0's train/dev/test.tsv
HEADER = ["client_id", "path", "sentence_id", "sentence", "sentence_domain", "up_votes", "down_votes", "age",
          "gender", "accents", "variant", "locale", "segment"]
SPK_A, SPK_B = "a" * 128, "b" * 128  # client ids are 128 hex digits


def _mp3(path: Path, seconds: float, rate_hz: int = 48000) -> None:
    t = np.arange(int(rate_hz * seconds)) / rate_hz
    sf.write(str(path), (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate_hz, format="MP3")


def _tsv(path: Path, rows: list[tuple[str, str, str]]) -> None:
    lines = ["\t".join(HEADER)]
    for client, clip, sentence in rows:
        lines.append("\t".join([client, clip, "s" + clip[:6], sentence, "", "2", "0", "twenties", "", "", "", "en",
                                ""]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def release(tmp_path) -> Path:
    """Three splits; train has a missing clip and an empty sentence, dev an unreadable clip."""
    src = tmp_path / "cv-corpus-17.0" / "en"
    (src / "clips").mkdir(parents=True)
    for name, seconds in (("c1", 1.0), ("c2", 1.5), ("c3", 2.0), ("c4", 0.5), ("c5", 1.0)):
        _mp3(src / "clips" / f"common_voice_en_{name}.mp3", seconds)
    (src / "clips" / "common_voice_en_bad.mp3").write_bytes(b"\x00" * 700)
    _tsv(src / "train.tsv", [(SPK_A, "common_voice_en_c1.mp3", 'He said "Hello, world!"'),
                             (SPK_A, "common_voice_en_gone.mp3", "This clip was never downloaded."),
                             (SPK_B, "common_voice_en_c2.mp3", "   "),
                             (SPK_B, "common_voice_en_c3.mp3", "Café au lait, twenty-four."),
                             (SPK_B, "../../outside.mp3", "Leaves the clips folder.")])
    _tsv(src / "dev.tsv", [(SPK_A, "common_voice_en_c4.mp3", "It's fine."),
                           (SPK_B, "common_voice_en_bad.mp3", "Unreadable clip.")])
    _tsv(src / "test.tsv", [(SPK_B, "common_voice_en_c5.mp3", "Test sentence.")])
    return src


def test_prepare_writes_each_split_and_names_every_row_left_out(release, tmp_path):
    report = prepare_commonvoice(release, tmp_path / "out")
    assert list(report) == ["train", "dev", "test"]
    train = [json.loads(line) for line in (tmp_path / "out" / "train.jsonl").open()]
    assert [r["text"] for r in train] == ["he said hello world", "cafe au lait twenty four"]
    assert [r["speaker"] for r in train] == [SPK_A, SPK_B] and report["train"]["speakers"] == 2
    assert [r["id"] for r in train] == ["common_voice_en_c1", "common_voice_en_c3"]
    assert [r["duration"] for r in train] == pytest.approx([1.0, 2.0], abs=0.06)  # MP3 frames, not a guess
    assert train[0]["audio_filepath"] == str(release / "clips" / "common_voice_en_c1.mp3")

    tsv = release / "train.tsv"
    assert report["train"]["skipped"] == [
        f"{tsv}:3: clip {release / 'clips' / 'common_voice_en_gone.mp3'} not found",
        f"{tsv}:4: clip common_voice_en_c2.mp3 has an empty sentence",
        f"{tsv}:6: clip path '../../outside.mp3' leaves {release / 'clips'}"]
    (dev_skip,) = report["dev"]["skipped"]
    assert dev_skip.startswith(f"{release / 'dev.tsv'}:3: cannot read clip ") and "common_voice_en_bad" in dev_skip
    assert (report["dev"]["utterances"], report["test"]["utterances"]) == (1, 1)

    utts = read_manifest(tmp_path / "out" / "train.jsonl")  # the loader takes the manifest as written
    audio = load_audio(utts[1].audio_path, 16000)  # 48 kHz MP3, decoded and resampled on load
    assert audio.shape[0] == pytest.approx(32000, abs=1200)


def test_normalize_false_keeps_the_sentence_and_a_bad_header_names_the_file(release, tmp_path):
    report = prepare_commonvoice(release, tmp_path / "out", splits="test", normalize=False)
    assert list(report) == ["test"] and read_manifest(tmp_path / "out" / "test.jsonl")[0].text == "Test sentence."

    (release / "other.tsv").write_text("client_id\tfile\tsentence\n", encoding="utf-8")
    with pytest.raises(CommonVoiceError, match=r"other\.tsv:1: no column\(s\) path in the header"):
        prepare_commonvoice(release, tmp_path / "out", splits=["other"])
    with pytest.raises(CommonVoiceError, match=r"validated\.tsv: not found"):
        prepare_commonvoice(release, tmp_path / "out", splits=["validated"])
    _tsv(release / "invalidated.tsv", [(SPK_A, "common_voice_en_gone.mp3", "Missing.")])
    with pytest.raises(CommonVoiceError, match=r"invalidated\.tsv: no usable rows \(1 left out\)"):
        prepare_commonvoice(release, tmp_path / "out", splits=["invalidated"])


def test_the_command_reports_the_rows_left_out_and_succeeds(release, tmp_path):
    r = subprocess.run([str(BIN / "asr"), "prepare-commonvoice", f"src={release}", f"out={tmp_path / 'm'}"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == (f"train: 2 utterances, 2 speakers, 0.00 h -> {tmp_path / 'm' / 'train.jsonl'}"
                                        " (3 left out)")
    assert r.stderr.count("left out: ") == 4 and "common_voice_en_gone.mp3 not found" in r.stderr
