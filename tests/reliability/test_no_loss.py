"""Nothing a user had is replaced without being asked: finished runs, locked run directories, inputs, reports."""

import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import tiny_settings, write_tone_corpus

from asr.config.schema import ConfigError
from asr.fileio import DirectoryInUse
from asr.training.train import train

BIN = Path(sys.executable).parent
HOLD_LOCK = ("import sys, time; from asr.fileio import hold_lock; hold_lock(sys.argv[1]); print('held', flush=True); "
             "time.sleep(120)")


def _finished_run(run: Path) -> dict[Path, bytes]:
    """What a finished run leaves (stand-ins: the check must refuse before reading any of it)."""
    files = {run / "model.pt": b"my best model", run / "train_log.jsonl": b'{"epoch": 1}\n',
             run / "checkpoints" / "last.pt": b"my checkpoint", run / "config.resolved.yaml": b"mine: 1\n"}
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def test_training_into_a_finished_run_is_refused_naming_what_it_found(tmp_path):
    manifest = write_tone_corpus(tmp_path / "corpus", ["ab", "ba"])
    files = _finished_run(tmp_path / "run")
    with pytest.raises(ConfigError) as err:
        train(tiny_settings(manifest, max_epochs=1), tmp_path / "run")
    for needle in ("model.pt", "train_log.jsonl", "checkpoints", "trainer.resume=true", "trainer.overwrite=true"):
        assert needle in str(err.value)
    assert {p: p.read_bytes() for p in files} == files
    train(tiny_settings(manifest, max_epochs=1, overwrite=True), tmp_path / "run")  # asked: replaced
    assert (tmp_path / "run" / "model.pt").read_bytes() != files[tmp_path / "run" / "model.pt"]


def test_asr_train_into_a_finished_run_stops_with_one_line_and_touches_nothing(tmp_path):
    manifest = write_tone_corpus(tmp_path / "corpus", ["ab", "ba"])
    files = _finished_run(tmp_path / "run")
    r = subprocess.run([str(BIN / "asr-train"), f"data.train_manifest={manifest}", f"data.dev_manifest={manifest}",
                        "hydra.run.dir=run"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "error:" in r.stderr and "model.pt" in r.stderr and "trainer.overwrite=true" in r.stderr
    assert {p: p.read_bytes() for p in files} == files  # config.resolved.yaml too


def test_a_second_training_in_a_run_directory_in_use_is_refused_at_once(tmp_path):
    manifest = write_tone_corpus(tmp_path / "corpus", ["ab", "ba"])
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        t0 = time.perf_counter()
        with pytest.raises(DirectoryInUse, match="in use"):
            train(tiny_settings(manifest, max_epochs=1), run)
        assert time.perf_counter() - t0 < 5
        assert not (run / "model.pt").exists()
    finally:
        holder.kill()  # like kill -9: the kernel releases the lock with the process
        holder.wait()
    train(tiny_settings(manifest, max_epochs=1), run)
    assert (run / "model.pt").is_file()


@pytest.mark.parametrize("target", ["audio", "manifest", "summary"])
def test_transcribe_never_writes_onto_one_of_its_inputs_even_with_overwrite(tmp_path, target):
    from test_bounded_inputs import LoudIsA, _manifest, _tone_file

    from asr.data.tokenizer import CharTokenizer
    from asr.inference.outputs import OutputError
    from asr.inference.transcribe import transcribe

    # "summary": the input is where <output>.summary.json would go
    audio = _tone_file(tmp_path / "in.flac", 2.0)
    if target == "summary":
        audio = audio.rename(tmp_path / "o.jsonl.summary.json")
    manifest = _manifest(tmp_path, audio, 2.0)
    source, output = {"audio": (audio, audio), "manifest": (manifest, manifest),
                      "summary": (manifest, tmp_path / "o.jsonl")}[target]
    before = {p: p.read_bytes() for p in (audio, manifest)}
    with pytest.raises(OutputError, match="input"):
        transcribe(LoudIsA(), CharTokenizer(LoudIsA.vocab), source, output, overwrite=True, num_workers=0,
                   formats=["jsonl", "txt"])
    assert {p: p.read_bytes() for p in before} == before


@pytest.fixture(scope="module")
def one_epoch_model(tmp_path_factory) -> tuple[Path, Path]:
    """``(model file, manifest)``: an untrained-enough model, enough for commands that only need to run."""
    root = tmp_path_factory.mktemp("model")
    manifest = write_tone_corpus(root / "corpus", ["ab", "ba"])
    train(tiny_settings(manifest, max_epochs=1), root / "run")
    return root / "run" / "model.pt", manifest


def _asr(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "asr"), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def _commands(model: Path, manifest: Path, audio: Path) -> dict[str, tuple[list[str], str]]:
    """``{command: (arguments, a file of the user's at the path it writes)}``."""
    return {
        "validate": ([f"data.manifest={manifest}", "report=mine/report.json", "hydra.run.dir=v"], "mine/report.json"),
        "stats": ([f"data.train_manifest={manifest}", "output_dir=mine", "hydra.run.dir=s"], "mine/vocab.json"),
        "evaluate": ([f"model={model}", f"data.manifest={manifest}", "hydra.run.dir=mine"], "mine/report.txt"),
        "inspect": ([f"model={model}", f"audio={audio}", "output=mine", "hydra.run.dir=i"], "mine/waveform.png"),
    }


@pytest.mark.parametrize("command", ["validate", "stats", "evaluate", "inspect"])
def test_commands_refuse_to_replace_a_users_file_unless_told(one_epoch_model, tmp_path, command):
    model, manifest = one_epoch_model
    audio = next((manifest.parent / "audio").iterdir())
    args, target = _commands(model, manifest, audio)[command]
    mine = tmp_path / target
    mine.parent.mkdir()
    mine.write_bytes(b"the user's own file")
    r = _asr(command, *args, cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "refusing to replace" in r.stderr and target in r.stderr and "overwrite=true" in r.stderr
    assert mine.read_bytes() == b"the user's own file"
    r = _asr(command, *args, "overwrite=true", cwd=tmp_path)
    assert r.returncode in (0, 1) and mine.read_bytes() != b"the user's own file", r.stderr[-2000:]
    if command in ("validate", "evaluate"):  # its own output of the same job: a rerun replaces it unasked
        r = _asr(command, *args, cwd=tmp_path)
        assert r.returncode in (0, 1), r.stderr[-2000:]
