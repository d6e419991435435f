"""OS-level failures and odd inputs end in one ``error:`` line naming the path, never a traceback."""

import errno
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import tiny_settings, write_tone_corpus
from test_bounded_inputs import LoudIsA, _tone_file

from asr.data.manifest import ManifestError, read_manifest
from asr.data.tokenizer import CharTokenizer
from asr.data.validate import validate_manifest
from asr.inference.transcribe import transcribe
from asr.training.train import train

# Runs `asr <command> ...` with every write under PREFIX failing with errno CODE: at open (EROFS, EACCES, as a
# read-only folder does, even for root) or at write (ENOSPC, as a full disk does).
FAULTY = """
import errno, os, sys
code, prefix, at = int(sys.argv.pop(1)), sys.argv.pop(1), sys.argv.pop(1)
real_open, ours = os.open, set()
def fake_open(path, flags, *args, **kwargs):
    writes = flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
    if writes and str(path).startswith(prefix) and at == "open":
        raise OSError(code, os.strerror(code), str(path))
    fd = real_open(path, flags, *args, **kwargs)
    if writes and str(path).startswith(prefix):
        ours.add(fd)
    return fd
def failing(real):
    def call(fd, *args):
        if fd in ours:
            raise OSError(code, os.strerror(code))
        return real(fd, *args)
    return call
os.open, os.write, os.fsync = fake_open, failing(os.write), failing(os.fsync)
from asr.__main__ import main
sys.argv[0] = "asr"
main()
"""


@pytest.fixture(scope="module")
def model_and_manifest(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("model")
    manifest = write_tone_corpus(root / "corpus", ["ab", "ba"])
    train(tiny_settings(manifest, max_epochs=1), root / "run")
    return root / "run" / "model.pt", manifest


def _faulty(code: int, prefix: Path, at: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", FAULTY, str(code), str(prefix), at, *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def _one_error_line(r: subprocess.CompletedProcess, *needles: str) -> str:
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-3000:]
    (line,) = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    for needle in needles:
        assert needle in line, line
    return line


@pytest.mark.parametrize("code,at,needle", [(errno.EROFS, "open", "read-only"), (errno.EACCES, "open", "permission"),
                                            (errno.ENOSPC, "write", "space")])
def test_transcribe_into_a_folder_it_cannot_write_says_so_in_one_line(model_and_manifest, tmp_path, code, at, needle):
    model, manifest = model_and_manifest
    out = tmp_path / "out"
    r = _faulty(code, out, at, "transcribe", f"model={model}", f"input={manifest}", f"output={out}/t.jsonl",
                "hydra.run.dir=h", "progress=false", "threads=1", cwd=tmp_path)
    line = _one_error_line(r, str(out / "t.jsonl"))
    assert needle in line.lower()


@pytest.mark.parametrize("code,at,needle", [(errno.EROFS, "open", "read-only"), (errno.ENOSPC, "write", "space")])
def test_validate_report_that_cannot_be_written_says_so_in_one_line(model_and_manifest, tmp_path, code, at, needle):
    _, manifest = model_and_manifest
    out = tmp_path / "out"
    r = _faulty(code, out, at, "validate", f"data.manifest={manifest}", f"report={out}/r.json", "hydra.run.dir=h",
                cwd=tmp_path)
    assert needle in _one_error_line(r, str(out)).lower()


def test_a_251_character_file_name_gets_its_subtitles(tmp_path):
    name = "a" * 246 + ".flac"
    _tone_file(tmp_path / "in" / name, 2.0)
    transcribe(LoudIsA(), CharTokenizer(LoudIsA.vocab), tmp_path / "in", tmp_path / "out.jsonl", formats=["srt"],
               num_workers=0)
    assert (tmp_path / "out_srt" / ("a" * 246 + ".srt")).read_text().startswith("1\n")


def test_a_nul_in_a_manifest_id_is_a_bad_line(tmp_path):
    audio = _tone_file(tmp_path / "a.wav", 1.0)
    m = tmp_path / "m.jsonl"
    m.write_text(json.dumps({"audio_filepath": str(audio), "duration": 1.0, "id": "x\x00y"}) + "\n")
    with pytest.raises(ManifestError, match=f"{m}:1.*NUL"):
        read_manifest(m, require_text=False)
    assert validate_manifest(m, require_text=False)["kinds"] == {"bad_line": 1}


def test_a_deeply_nested_json_line_is_reported_with_file_and_line(tmp_path):
    audio = _tone_file(tmp_path / "a.wav", 1.0)
    m = tmp_path / "m.jsonl"
    m.write_text(json.dumps({"audio_filepath": str(audio), "duration": 1.0, "text": "a"}) + "\n"
                 + "[" * 200_000 + "]" * 200_000 + "\n")
    report = validate_manifest(m, audio="header")
    (problem,) = report["problems"]
    assert problem["line"] == 2 and problem["kind"] == "bad_line" and f"{m}:2" in problem["message"]


def test_negative_decoding_workers_are_a_config_error(tmp_path):
    r = subprocess.run([sys.executable, "-m", "asr", "transcribe", "model=m.pt", "input=in", "output=o.jsonl",
                        "batch.num_workers=-3", "hydra.run.dir=h"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=300)
    _one_error_line(r, "batch.num_workers")
