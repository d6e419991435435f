"""AN4 download and preparation against a tiny fake ``an4/`` tree built in tmp_path (offline)."""

from __future__ import annotations

import functools
import http.server
import io
import json
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.corpora import an4, download
from asr.corpora.an4 import DEV_SPEAKERS, An4Error, download_an4, parse_transcription_line, prepare_an4
from asr.data.audio import audio_info
from asr.data.manifest import ManifestError, read_manifest

SR = 16000
SHARED_AN4 = Path("/work/shared/data/an4")

# (official subset, speaker, utterance id, Sphinx transcript words). "mblb" is a dev speaker.
FAKE_UTTS = [
    ("train", "fash", "an251-fash-b", "YES"),
    ("train", "fash", "cen1-fash-b", "H I N I C H"),
    ("train", "mcen", "an1-mcen-b", "TWENTY FOUR"),
    ("train", "mcen", "cen2-mcen-b", "O'CLOCK  ERASE"),
    ("train", "mblb", "an36-mblb-b", "RUBOUT C Y"),
    ("train", "mblb", "an37-mblb-b", "NO"),
    ("test", "fcaw", "an406-fcaw-b", "RUBOUT G M E F THREE NINE"),
    ("test", "fcaw", "an407-fcaw-b", "ERASE C Q Q F SEVEN"),
    ("test", "mmxg", "cen7-mmxg-b", "FOUR ONE TWO"),
]


def _write_fake_an4(parent: Path) -> dict[str, np.ndarray]:
    """Write ``parent/an4`` in the CMU archive layout; return the int16 samples per utterance id."""
    rng = np.random.default_rng(0)
    root = parent / "an4"
    (root / "etc").mkdir(parents=True)
    samples = {}
    lines = {"train": ([], []), "test": ([], [])}  # (transcription lines, fileids)
    for i, (subset, speaker, utt, words) in enumerate(FAKE_UTTS):
        audio_dir = "an4_clstk" if subset == "train" else "an4test_clstk"
        n = 3200 + 517 * i  # distinct, non-round lengths so durations are checked exactly
        t = np.arange(n) / SR
        x = 0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t) + 0.05 * rng.standard_normal(n)
        samples[utt] = np.round(x * 32767).astype(np.int16)
        wav = root / "wav" / audio_dir / speaker / f"{utt}.sph"
        wav.parent.mkdir(parents=True, exist_ok=True)
        # alternate byte orders: CMU's files are big endian, libsndfile writes little by default
        sf.write(wav, samples[utt], SR, format="NIST", subtype="PCM_16", endian="BIG" if i % 2 else "LITTLE")
        # real format: train lines wrapped in <s> </s>, test lines bare
        lines[subset][0].append(f"<s> {words} </s> ({utt})" if subset == "train" else f"{words} ({utt})")
        lines[subset][1].append(f"{audio_dir}/{speaker}/{utt}")
    for subset, (trans, fileids) in lines.items():
        (root / "etc" / f"an4_{subset}.transcription").write_text("\n".join(trans) + "\n")
        (root / "etc" / f"an4_{subset}.fileids").write_text("\n".join(fileids) + "\n")
    return samples


def _targz(src_root: Path, archive: Path) -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src_root, arcname="an4")
    return archive


@pytest.fixture
def fake_an4(tmp_path):
    """(folder holding an4/, samples by utterance id)."""
    src = tmp_path / "src"
    return src, _write_fake_an4(src)


@pytest.fixture
def loopback_server(tmp_path):
    """Serve ``tmp_path/www`` on 127.0.0.1; yields the base URL and stops with the test."""
    www = tmp_path / "www"
    www.mkdir()

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(www)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield www, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# -------------------------------------------------------------------------------------------- download


def test_download_over_http_then_rerun_is_noop(fake_an4, loopback_server, tmp_path, capsys):
    src, _ = fake_an4
    www, base_url = loopback_server
    _targz(src / "an4", www / "an4_sphere.tar.gz")
    target = tmp_path / "downloads"

    root = download_an4(target, url=f"{base_url}/an4_sphere.tar.gz", retries=1, timeout_s=10)

    assert root == target / "an4"
    transcription = "etc/an4_train.transcription"
    assert (root / transcription).read_text() == (src / "an4" / transcription).read_text()
    assert len(list((root / "wav").rglob("*.sph"))) == len(FAKE_UTTS)
    assert sorted(p.name for p in target.iterdir()) == ["an4"]  # no temp archive or staging folder left
    assert "100%" in capsys.readouterr().out  # progress lines

    (www / "an4_sphere.tar.gz").unlink()  # a rerun must not touch the network
    assert download_an4(target, url=f"{base_url}/an4_sphere.tar.gz", retries=1) == root
    assert "already downloaded" in capsys.readouterr().out


def test_download_error_names_url_and_existing_copy_route(tmp_path):
    url = (tmp_path / "nowhere" / "an4_sphere.tar.gz").as_uri()
    with pytest.raises(An4Error) as err:
        download_an4(tmp_path / "dl", url=url, retries=1)
    assert url in str(err.value) and "asr prepare-an4 src=" in str(err.value)
    assert list((tmp_path / "dl").iterdir()) == []


def test_download_404_is_not_retried(loopback_server, tmp_path, monkeypatch):
    _, base_url = loopback_server
    monkeypatch.setattr(download, "_RETRY_WAIT_S", 60.0)  # a retry would make this test hang for a minute
    with pytest.raises(An4Error, match="HTTP 404"):
        download_an4(tmp_path / "dl", url=f"{base_url}/missing.tar.gz", retries=3, timeout_s=10)


@pytest.mark.parametrize("member", ["../evil", "/tmp/evil_abs", "an4/link->../../evil", "an4/hard=>../evil"])
def test_download_refuses_unsafe_archive_members(tmp_path, member):
    archive = tmp_path / "bad.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("an4/etc")
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
        if "->" in member or "=>" in member:
            name, link = member.split("->" if "->" in member else "=>")
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE if "->" in member else tarfile.LNKTYPE
            info.linkname = link
            tar.addfile(info)
        else:
            payload = b"pwned\n"
            info = tarfile.TarInfo(member)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    target = tmp_path / "dl" / "inner"

    with pytest.raises(An4Error, match="refusing to extract") as err:
        download_an4(target, url=archive.as_uri(), retries=1)

    assert member.split("->")[0].split("=>")[0] in str(err.value)
    assert not (tmp_path / "dl" / "evil").exists() and not (tmp_path / "evil").exists()
    assert list(target.iterdir()) == []  # nothing extracted, temp files cleaned up


# -------------------------------------------------------------------------------------------- prepare: sphere


def test_parse_transcription_line_both_formats():
    assert parse_transcription_line("<s> H I N I C H </s> (cen1-fash-b)") == ("cen1-fash-b", "h i n i c h")
    assert parse_transcription_line("RUBOUT G M E F THREE NINE (an406-fcaw-b)") == (
        "an406-fcaw-b", "rubout g m e f three nine")
    assert parse_transcription_line("  <s>  O'CLOCK,  TWENTY-FOUR </s>  (x-y-z) ") == ("x-y-z", "o'clock twenty four")
    with pytest.raises(ValueError):
        parse_transcription_line("<s> YES </s>")


def test_prepare_from_downloaded_archive(fake_an4, tmp_path, capsys):
    src, samples = fake_an4
    root = download_an4(tmp_path / "dl", url=_targz(src / "an4", tmp_path / "a.tar.gz").as_uri(), retries=1)
    out = tmp_path / "prepared"

    paths = prepare_an4(tmp_path / "dl", out, dev_speakers=DEV_SPEAKERS)  # the parent of an4/ works too

    assert paths == {s: out / f"{s}.jsonl" for s in ("train", "dev", "test", "train_full")}
    recs = {split: _read_jsonl(p) for split, p in paths.items()}
    assert {s: len(r) for s, r in recs.items()} == {"train": 4, "dev": 2, "test": 3, "train_full": 6}
    assert {r["speaker"] for r in recs["dev"]} == {"mblb"}
    assert {r["speaker"] for r in recs["train"]} == {"fash", "mcen"}
    assert {r["speaker"] for r in recs["test"]} == {"fcaw", "mmxg"}
    assert recs["train_full"] == [r for r in recs["train_full"] if r in recs["train"] or r in recs["dev"]]
    texts = {Path(r["audio_filepath"]).stem: r["text"] for r in recs["train_full"] + recs["test"]}
    assert texts["cen1-fash-b"] == "h i n i c h"
    assert texts["cen2-mcen-b"] == "o'clock erase"
    assert texts["an406-fcaw-b"] == "rubout g m e f three nine"  # test lines have no <s> markers
    for rec in recs["train_full"] + recs["test"]:
        utt = Path(rec["audio_filepath"]).stem
        flac = out / rec["audio_filepath"]
        assert rec["audio_filepath"].startswith("audio/an4") and flac.suffix == ".flac"
        assert rec["duration"] == len(samples[utt]) / SR
        decoded, rate = sf.read(flac, dtype="int16")
        assert rate == SR and sf.info(flac).subtype == "PCM_16"
        np.testing.assert_array_equal(decoded, samples[utt])  # lossless, both byte orders
    assert len(read_manifest(paths["train_full"])) == 6  # what the toolkit reads back
    assert "train" in capsys.readouterr().out
    assert (root / "wav").is_dir()  # the source is left in place


def test_prepare_skips_bad_audio_and_empty_transcripts(fake_an4, tmp_path, capsys):
    src, samples = fake_an4
    wav = src / "an4" / "wav"
    corrupt = wav / "an4_clstk/fash/an251-fash-b.sph"
    corrupt.write_bytes(b"this is not audio at all" * 50)
    missing = wav / "an4test_clstk/fcaw/an407-fcaw-b.sph"
    missing.unlink()
    trans = src / "an4/etc/an4_train.transcription"
    trans.write_text(trans.read_text().replace("<s> NO </s> (an37-mblb-b)", "<s> </s> (an37-mblb-b)"))
    out = tmp_path / "prepared"

    paths = prepare_an4(src / "an4", out)

    report = capsys.readouterr().out
    marker = json.loads((out / ".an4_prepared.json").read_text())
    skipped = {Path(s["path"]).name: s["reason"] for s in marker["skipped"]}
    assert set(skipped) == {"an251-fash-b.sph", "an407-fcaw-b.sph", "an37-mblb-b.sph"}
    assert "NIST" in skipped["an251-fash-b.sph"] and "not found" in skipped["an407-fcaw-b.sph"]
    assert skipped["an37-mblb-b.sph"] == "empty transcript"
    assert str(corrupt) in report and str(missing) in report
    counts = {split: len(_read_jsonl(p)) for split, p in paths.items()}
    assert counts == {"train": 3, "dev": 1, "test": 2, "train_full": 4}
    assert {s: marker["splits"][s]["skipped"] for s in paths} == {"train": 1, "dev": 1, "test": 1, "train_full": 2}


def test_prepare_rerun_is_noop(fake_an4, tmp_path, capsys):
    src, _ = fake_an4
    out = tmp_path / "prepared"
    paths = prepare_an4(src, out)
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()

    assert prepare_an4(src, out) == paths
    assert "already prepared" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == stamps


def test_prepare_resumes_with_finished_flacs(fake_an4, tmp_path):
    """Without the done-marker a rerun redoes the manifests but keeps FLACs an interrupted run finished."""
    src, _ = fake_an4
    out = tmp_path / "prepared"
    prepare_an4(src, out)
    (out / ".an4_prepared.json").unlink()
    (out / "train.jsonl").unlink()
    flac = out / "audio/an4_clstk/fash/cen1-fash-b.flac"
    stamp = flac.stat().st_mtime_ns

    prepare_an4(src, out)

    assert len(_read_jsonl(out / "train.jsonl")) == 4 and flac.stat().st_mtime_ns == stamp


def test_sphere_fallback_reader_when_libsndfile_refuses(fake_an4, tmp_path, monkeypatch):
    src, samples = fake_an4
    real_read = sf.read

    def refuse_sphere(path, *args, **kwargs):
        if str(path).endswith(".sph"):
            raise RuntimeError("pretend libsndfile cannot open this header")
        return real_read(path, *args, **kwargs)

    monkeypatch.setattr(an4.sf, "read", refuse_sphere)
    out = tmp_path / "prepared"
    recs = _read_jsonl(prepare_an4(src, out)["train_full"])
    monkeypatch.undo()

    assert len(recs) == 6
    for rec in recs:
        np.testing.assert_array_equal(sf.read(out / rec["audio_filepath"], dtype="int16")[0],
                                      samples[Path(rec["audio_filepath"]).stem])


# -------------------------------------------------------------------------------------------- prepare: manifests


def _write_manifest_corpus(root: Path, splits: dict[str, list[str]]) -> None:
    """A ready-manifest corpus: FLACs under root/audio and manifests with relative paths."""
    for split, utts in splits.items():
        lines = []
        for i, utt in enumerate(utts):
            flac = root / "audio" / utt.split("-")[1] / f"{utt}.flac"
            flac.parent.mkdir(parents=True, exist_ok=True)
            if not flac.exists():
                sf.write(flac, np.zeros(1600 + 160 * i, dtype=np.int16), SR, subtype="PCM_16")
            rel = flac.relative_to(root).as_posix()
            lines.append(json.dumps({"audio_filepath": rel, "duration": (1600 + 160 * i) / SR, "text": "yes",
                                     "extra": i}))
        (root / f"{split}.jsonl").write_text("\n".join(lines) + "\n")


def test_prepare_manifest_layout_splits_by_dev_speakers(tmp_path):
    src = tmp_path / "ready"
    train_full = ["an1-fash-b", "an2-fash-b", "an3-mblb-b", "an4-mtxj-b", "an5-mcen-b"]
    _write_manifest_corpus(src, {"train_full": train_full, "test": ["an6-fcaw-b"]})
    out = tmp_path / "prepared"

    paths = prepare_an4(src, out)

    recs = {split: _read_jsonl(p) for split, p in paths.items()}
    assert {s: len(r) for s, r in recs.items()} == {"train": 3, "dev": 2, "test": 1, "train_full": 5}
    assert {r["speaker"] for r in recs["dev"]} == {"mblb", "mtxj"}
    for rec in recs["train_full"] + recs["test"]:
        assert Path(rec["audio_filepath"]).is_absolute() and Path(rec["audio_filepath"]).is_file()
        assert Path(rec["audio_filepath"]).is_relative_to(src.resolve())
        assert "extra" in rec  # other fields pass through
    assert not (out / "audio").exists()  # audio is referenced, never copied
    assert [u.audio_path for u in read_manifest(paths["test"])] == [str((src / "audio/fcaw/an6-fcaw-b.flac").resolve())]


def test_prepare_manifest_layout_reports_bad_line_and_missing_audio(tmp_path, capsys):
    src = tmp_path / "ready"
    _write_manifest_corpus(src, {"train_full": ["an1-fash-b", "an3-mblb-b", "an5-mcen-b"], "test": ["an6-fcaw-b"]})
    missing = src / "audio/mcen/an5-mcen-b.flac"
    missing.unlink()
    paths = prepare_an4(src, tmp_path / "out")
    assert len(_read_jsonl(paths["train_full"])) == 2 and str(missing.resolve()) in capsys.readouterr().out

    with open(src / "test.jsonl", "a") as f:
        f.write('{"audio_filepath": "audio/x.flac", "duration": -1, "text": "no"}\n')
    with pytest.raises(ManifestError, match=r"test\.jsonl:2"):
        prepare_an4(src, tmp_path / "out2")


def test_prepare_rejects_unknown_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(An4Error, match="etc/an4_train.transcription"):
        prepare_an4(tmp_path / "empty", tmp_path / "out")


def test_cli_errors_are_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "asr.corpora.an4", "prepare", "--src", str(tmp_path / "none"),
                             "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2  # the exit status of every command's user errors
    assert result.stderr.strip().splitlines() == [f"error: {tmp_path / 'none'}: source folder not found"]


def test_cli_download_and_prepare(fake_an4, tmp_path):
    src, _ = fake_an4
    url = _targz(src / "an4", tmp_path / "a.tar.gz").as_uri()
    from asr.cli.corpora import an4_module_main

    assert an4_module_main(["download", "--dir", str(tmp_path / "dl"), "--url", url]) == 0
    assert an4_module_main(["prepare", "--src", str(tmp_path / "dl" / "an4"), "--out", str(tmp_path / "out")]) == 0
    assert len(_read_jsonl(tmp_path / "out" / "test.jsonl")) == 3


# -------------------------------------------------------------------------------------------- the real corpus


def test_prepare_shared_an4_copy(tmp_path):
    if not (SHARED_AN4 / "train_full.jsonl").is_file():
        pytest.skip(f"no staged AN4 copy at {SHARED_AN4}")
    paths = prepare_an4(SHARED_AN4, tmp_path / "an4")

    recs = {split: _read_jsonl(p) for split, p in paths.items()}
    assert {s: len(r) for s, r in recs.items()} == {"train": 870, "dev": 78, "test": 130, "train_full": 948}
    assert {r["speaker"] for r in recs["dev"]} == set(DEV_SPEAKERS)
    assert not {r["speaker"] for r in recs["train"]} & set(DEV_SPEAKERS)
    assert len({r["speaker"] for r in recs["test"]}) == 10
    for rec in recs["train_full"] + recs["test"]:
        assert Path(rec["audio_filepath"]).is_absolute()
        info = audio_info(rec["audio_filepath"])  # header only; raises if the file is missing
        assert rec["duration"] == info.num_frames / info.sample_rate_hz
    assert not (tmp_path / "an4" / "audio").exists()
