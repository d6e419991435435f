"""One command style: ``asr <command> key=value ...`` reaches every command; older flag forms still work."""

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from asr.__main__ import COMMANDS, overview
from asr.cli.analysis import TABLE_FLAGS, sweep_table_main
from asr.cli.common import Flags
from asr.cli.corpora import SYNTHESIZE_FLAGS
from asr.config.commands import COMMAND_CONFIGS, TOOL_CONFIGS
from asr.config.schema import ConfigError

BIN = Path(sys.executable).parent
ALL = {"train", "evaluate", "stats", "transcribe", "validate", "inspect", "plot", "sweep-table", "eval-table",
       "average", "export", "build-lm", "download-an4", "prepare-an4", "synthesize", "import-kaldi", "split-speakers",
       "download-librispeech", "prepare-librispeech", "prepare-commonvoice", "prepare-speechocean762", "serve",
       "stream", "shard"}


def asr(*args: str, cwd: Path, exe: str = "asr") -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / exe), *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HYDRA_FULL_ERROR": "0"})


def test_every_command_is_listed_once_and_resolves_to_a_function():
    assert set(COMMANDS) == ALL
    assert set(COMMANDS) == {"train"} | set(COMMAND_CONFIGS) | set(TOOL_CONFIGS)  # each has its schema
    for module, entry, _ in COMMANDS.values():
        assert callable(getattr(importlib.import_module(f"asr.cli.{module}"), entry))
    lines = overview().splitlines()
    assert len(lines) <= 30 and max(map(len, lines)) <= 100  # one screen
    assert [line.split()[0] for line in lines if line.startswith("  ")] == list(COMMANDS)


def test_help_and_bare_asr_show_the_overview(tmp_path):
    r = asr("--help", cwd=tmp_path)
    assert r.returncode == 0 and "build-lm" in r.stdout and "prepare-an4" in r.stdout
    r = asr(cwd=tmp_path)
    assert r.returncode == 2 and "usage: asr <command>" in r.stderr
    r = asr("trian", cwd=tmp_path)
    assert r.returncode == 2 and "unknown command 'trian'" in r.stderr


def test_python_m_asr_and_the_asr_script_reach_hydra_and_tool_commands(tmp_path):
    r = subprocess.run([sys.executable, "-m", "asr", "evaluate", "data.manifest=x.jsonl"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "missing required setting(s): model=..." in r.stderr
    r = asr("average", "run=r", "lastt=2", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.strip() == "error: unknown key(s) lastt; allowed: run, last, output"
    r = asr("train", "data.test_manifest=t.jsonl", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("error: data.test_manifest is retired")
    r = asr("synthesize", "--help", cwd=tmp_path)
    assert r.returncode == 0 and "num_train: 3000" in r.stdout


def test_sweep_table_reads_the_same_with_overrides_and_with_its_older_flags(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    for job, (hidden, wer) in {"0": (16, 0.5), "1": (24, 0.25)}.items():
        (sweep / job).mkdir(parents=True)
        model = {"rnn_type": "lstm", "bidirectional": True, "num_layers": 1, "hidden_size": hidden}
        (sweep / job / "config.resolved.yaml").write_text(json.dumps({"model": model, "trainer": {"max_epochs": 1}}))
        (sweep / job / "train_summary.json").write_text(json.dumps(
            {"best_dev_wer": wer, "epochs": 1, "parameters": 1000 * hidden, "best_epoch": 1, "train_minutes": 0.1}))
    assert sweep_table_main([f"dir={sweep}", f"output={tmp_path / 'a'}"]) == 0
    assert sweep_table_main([str(sweep), "--output", str(tmp_path / "b")]) == 0
    a, b = ((tmp_path / d / "sweep_table.md").read_text() for d in "ab")
    assert a == b and "| 1 | BLSTM | 1 | 24 | 0.02 M | 0.1 | 1 (1) | **25.00 %** |" in a
    assert sweep_table_main([str(sweep), "--colour"]) == 2
    assert "error: unknown option --colour" in capsys.readouterr().err


@pytest.mark.parametrize("flags,argv,overrides", [
    (TABLE_FLAGS, ["exp/size", "--output", "t"], ["dir=exp/size", "output=t"]),
    (TABLE_FLAGS, ["exp/size", "--output=t"], ["dir=exp/size", "output=t"]),
    (TABLE_FLAGS, ["dir=exp/size"], ["dir=exp/size"]),
    (TABLE_FLAGS, ["my dir,2"], ["dir='my dir,2'"]),  # quoted: Hydra would read a comma as a sweep
    (SYNTHESIZE_FLAGS, ["--out", "d", "--num-train", "7", "--overwrite"], ["out=d", "num_train=7", "overwrite=true"]),
])
def test_older_flags_become_overrides(flags, argv, overrides):
    assert flags.overrides(argv) == overrides


def test_flag_errors_name_the_flag():
    with pytest.raises(ConfigError, match="--output needs a value"):
        TABLE_FLAGS.overrides(["d", "--output"])
    with pytest.raises(ConfigError, match="'extra' is not a key=value setting"):
        Flags().overrides(["extra"])


def test_older_module_forms_still_run(tmp_path):
    r = subprocess.run([sys.executable, "-m", "asr.decoding.lm", "build", "--train", str(tmp_path / "none.jsonl"),
                        "--vocab", "v.json", "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "none.jsonl" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "asr.corpora.an4", "prepare", "--src", str(tmp_path / "missing"),
                        "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr
