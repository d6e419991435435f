"""Every command meets bad input with one line naming what is wrong, and a failing exit status: no traceback.

Each case runs the command as a user runs it (``asr <command> key=value``) in a folder of bad inputs: a
Kaldi directory whose wav.scp is a shell pipe, manifests that are not JSON, a "model" that is text, folders
that do not exist. The watcher in ``tests/conftest.py`` counts any traceback for the reliability table.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ASR = str(Path(sys.executable).parent / "asr")
CASES = [  # (arguments, what the message must say, exit status)
    ("import-kaldi data_dir=kd out=o.jsonl", "kd/wav.scp:1: recording u1 is a shell command", 2),
    ("import-kaldi data_dir=nope out=o.jsonl", "nope/text: missing", 2),
    ("split-speakers manifest=bad.jsonl train_out=t.jsonl dev_out=d.jsonl", "bad.jsonl:1: not a JSON", 2),
    ("split-speakers manifest=m.jsonl train=t.jsonl", "unknown key(s) train", 2),
    ("build-lm train=bad.jsonl vocab=nope.json out=lm", "bad.jsonl:1: not valid JSON", 2),
    ("average run=run1 last=3", "run1/checkpoints: 0 epoch checkpoint(s), 3 needed", 2),
    ("evaluate model=fake.pt data.manifest=m.jsonl", "fake.pt: not a loadable model file", 2),
    ("transcribe model=fake.pt input=m.jsonl output=o.jsonl", "fake.pt: not a loadable model file", 2),
    ("stats data.train_manifest=bad.jsonl output_dir=st", "bad.jsonl:1: not valid JSON", 2),
    ("inspect model=fake.pt audio=x.wav", "missing required setting(s): output", 2),
    ("prepare-librispeech src=nope out=ls", "nope: no LibriSpeech subsets found", 2),
    ("prepare-commonvoice src=nope out=cv", "nope/train.tsv: not found", 2),
    ("prepare-an4 src=nope out=an4", "nope: source folder not found", 2),
    ("eval-table dir=nope", "nope: not a folder", 2),
    ("sweep-table dir=nope", "nope: not a folder", 2),
    ("plot run=nope", "nope/train_log.jsonl: no training log here", 2),
    ("synthesize out=syn num_train=-3", "num_train must be a positive integer, got -3", 2),
    ("validate data.manifest=bad.jsonl", "bad.jsonl:1", 1),
    ("train data.train_manifest=bad.jsonl hydra.run.dir=r2", "bad.jsonl:1: not valid JSON", 2),
    ("download-librispeech subsets=[train-clean-7] dir=dl", "train-clean-7", 2),
]


@pytest.fixture
def bad_inputs(tmp_path) -> Path:
    (tmp_path / "kd").mkdir()
    (tmp_path / "kd" / "text").write_text("u1 hello\n")
    (tmp_path / "kd" / "wav.scp").write_text("u1 sox a.wav -t wav - |\n")
    (tmp_path / "kd" / "utt2spk").write_text("u1 s1\n")
    (tmp_path / "m.jsonl").write_text('{"audio_filepath": "x.wav", "duration": 1, "text": "a"}\n')
    (tmp_path / "bad.jsonl").write_text("not json\n")
    (tmp_path / "fake.pt").write_text("garbage\n")
    (tmp_path / "run1").mkdir()
    return tmp_path


@pytest.mark.slow
@pytest.mark.parametrize("args,message,status", CASES, ids=[c[0].split()[0] + ":" + c[1][:24] for c in CASES])
def test_a_bad_input_gets_one_message_that_names_it(bad_inputs, args, message, status):
    done = subprocess.run([ASR, *args.split()], cwd=bad_inputs, capture_output=True, text=True, timeout=120)
    out = done.stdout + done.stderr
    assert done.returncode == status, out[-2000:]
    assert message in out and "Traceback" not in out, out[-2000:]
