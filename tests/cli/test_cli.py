"""The console scripts, run as a user runs them (subprocess, from another directory)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
TINY = ["model.hidden_size=32", "model.num_layers=1", "trainer.threads=1", "trainer.tensorboard=false",
        "augment=none", "optim.warmup_steps=5", "optim.lr=5e-3", "data.max_batch_duration_s=2.5",
        "data.max_duration_s=2.5"]


def run(cmd: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    exe = shutil.which(cmd, path=str(BIN)) or cmd
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=600, env=env)


def test_train_then_evaluate_reproduces_dev_wer_from_the_model_file(tone_corpus, tmp_path):
    data = [f"data.train_manifest={tone_corpus}", f"data.dev_manifest={tone_corpus}"]
    r = run("asr-train", *data, *TINY, "trainer.max_epochs=25", "hydra.run.dir=run", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    run_dir = tmp_path / "run"
    summary = json.loads((run_dir / "train_summary.json").read_text())
    assert (run_dir / "config.resolved.yaml").is_file() and (run_dir / ".hydra" / "overrides.yaml").is_file()
    r = run("asr-evaluate", f"model={run_dir / 'model.pt'}", f"data.manifest={tone_corpus}", "hydra.run.dir=eval",
            cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    ev = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert abs(ev["wer"] - summary["best_dev_wer"]) < 1e-12
    assert f"WER {100 * ev['wer']:.2f} %" in r.stdout
    report = (tmp_path / "eval" / "report.txt").read_text()
    assert report.startswith("WER ") and "REF:" in report and "HYP:" in report


def test_multirun_sweep_writes_one_directory_per_job(tone_corpus, tmp_path):
    data = [f"data.train_manifest={tone_corpus}", f"data.dev_manifest={tone_corpus}"]
    r = run("asr-train", "-m", *data, *TINY, "trainer.max_epochs=1", "model.hidden_size=16,24",
            "hydra.sweep.dir=sweep", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    jobs = sorted(p for p in (tmp_path / "sweep").iterdir() if p.is_dir() and (p / "model.pt").exists())
    assert [p.name for p in jobs] == ["0", "1"]
    hidden = [int(next(line.split(":")[1] for line in (p / "config.resolved.yaml").read_text().splitlines()
                       if line.strip().startswith("hidden_size"))) for p in jobs]
    assert hidden == [16, 24]


@pytest.mark.parametrize("override,needle", [
    ("model.hiden_size=5", "hiden_size"),
    ("model.hidden_size=-5", "model.hidden_size"),
    ("features.hop_length_ms=50", "features.hop_length_ms"),
])
def test_config_errors_name_the_key_and_exit_nonzero(override, needle, tmp_path):
    r = run("asr-train", override, "hydra.run.dir=run", cwd=tmp_path)
    assert r.returncode != 0
    assert needle in r.stderr
    assert "Traceback" not in r.stderr


def test_evaluate_without_model_names_the_missing_setting(tmp_path):
    r = run("asr-evaluate", "data.manifest=x.jsonl", "hydra.run.dir=e", cwd=tmp_path)
    assert r.returncode == 2 and "model=..." in r.stderr


def test_evaluate_multirun_over_decoder_settings_and_table(tmp_path):
    from conftest import train_tone_model

    from asr.cli.analysis import eval_table_main as eval_table

    model, manifest = train_tone_model(tmp_path)
    r = run("asr-evaluate", "-m", f"model={model}", f"data.manifest={manifest}", "decoder=beam",
            "decoder.beam_size=1,8", "hydra.sweep.dir=tune", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    for job in ("0", "1"):
        s = json.loads((tmp_path / "tune" / job / "summary.json").read_text())
        assert s["decoder"] == "beam" and s["wer"] == 0.0 and s["search_real_time_factor"] > 0
    assert [json.loads((tmp_path / "tune" / j / "summary.json").read_text())["decoder_settings"]["beam_size"]
            for j in ("0", "1")] == [1, 8]
    assert eval_table([str(tmp_path / "tune")]) == 0
    assert (tmp_path / "tune" / "eval_table.md").read_text().splitlines()[0].startswith("| job | decoder.beam_size |")


@pytest.mark.parametrize("cmd,args,needle", [
    ("asr-evaluate", ["model=m.pt", "data.manifest=x.jsonl", "decoder=beam_lm"], "decoder.lexicon=<lexicon.txt>"),
    ("asr-evaluate", ["model=m.pt", "data.manifest=x.jsonl", "decoder=beam", "decoder.beam_size=0"],
     "decoder.beam_size must be > 0"),
    ("asr-transcribe", ["model=m.pt", "input=x", "output=o.jsonl", "decoder=beam"], "asr-transcribe decodes greedily"),
])
def test_decoder_setting_errors_name_the_key(cmd, args, needle, tmp_path):
    r = run(cmd, *args, "hydra.run.dir=e", cwd=tmp_path)
    assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr
