"""The sweep collector: a fake multirun folder in, exact numbers out (markdown, CSV, figure)."""

import csv
import io
import json
from pathlib import Path

import pytest
import yaml

from asr.analysis.sweep import collect_sweep, csv_table, markdown_table, write_sweep
from asr.cli.analysis import sweep_table_main as main
from asr.config.schema import DataConfig, ModelConfig, Settings, TrainerConfig
from asr.models.acoustic import build_recognizer, num_parameters
from asr.training.train import train


def fake_job(root: Path, name: str, *, layers: int, hidden: int, rnn: str = "lstm", summary: dict | None = None,
             evals: dict[str, dict] | None = None) -> Path:
    """A job folder as ``asr-train -m`` leaves it (config.resolved.yaml, train_summary.json, evaluations)."""
    job = root / name
    (job / ".hydra").mkdir(parents=True)
    config = {"data": {"name": "an4"}, "model": {"rnn_type": rnn, "hidden_size": hidden, "num_layers": layers,
                                                 "bidirectional": True, "dropout": 0.2}}
    (job / "config.resolved.yaml").write_text(yaml.safe_dump(config))
    if summary is not None:
        (job / "train_summary.json").write_text(json.dumps(summary))
    for sub, ev in (evals or {}).items():
        (job / sub).mkdir(parents=True, exist_ok=True)
        (job / sub / "summary.json").write_text(json.dumps(ev))
    return job


def summary(params: int, wer: float, minutes: float = 10.0) -> dict:
    return {"best_dev_wer": wer, "best_epoch": 30, "epochs": 35, "model": "x/model.pt", "parameters": params,
            "train_audio_s_per_s": 30.0, "train_minutes": minutes, "skipped_batches": 0}


@pytest.fixture
def sweep_dir(tmp_path: Path) -> Path:
    root = tmp_path / "multirun"
    fake_job(root, "0", layers=2, hidden=128, summary=summary(1_200_000, 0.30, 12.5))
    fake_job(root, "1", layers=2, hidden=256, summary=summary(4_100_000, 0.22, 20.25),
             evals={"eval_dev": {"wer": 0.21, "manifest": "/data/dev.jsonl"},
                    "eval_test": {"wer": 0.245, "manifest": "/data/test.jsonl"}})
    fake_job(root, "2", layers=3, hidden=128, summary=summary(2_000_000, 0.25, 16.0),
             evals={".": {"wer": 0.27, "manifest": "/data/an4_test.jsonl"}})
    fake_job(root, "10", layers=3, hidden=256, summary=summary(6_500_000, float("inf"), 30.0))  # no dev set
    fake_job(root, "3", layers=4, hidden=256)  # still training: no train_summary.json yet
    (root / "multirun.yaml").write_text("hydra: {}\n")
    return root


def test_jobs_are_collected_with_their_numbers(sweep_dir):
    jobs = collect_sweep(sweep_dir)
    assert [j.job for j in jobs] == ["0", "2", "1", "10", "3"]  # by parameters, unfinished last
    by = {j.job: j for j in jobs}
    assert (by["1"].parameters, by["1"].train_minutes, by["1"].dev_wer) == (4_100_000, 20.25, 0.22)
    assert by["1"].test_wer == 0.245  # the test evaluation wins over the dev one
    assert by["2"].test_wer == 0.27  # a summary.json in the job folder itself
    assert by["0"].test_wer is None
    assert by["10"].dev_wer is None  # best_dev_wer = inf: no dev set, not a number to compare
    assert (by["3"].finished, by["3"].num_layers, by["3"].hidden_size) == (False, 4, 256)


def test_csv_holds_raw_values(sweep_dir):
    rows = list(csv.DictReader(io.StringIO(csv_table(collect_sweep(sweep_dir)))))
    assert [r["job"] for r in rows] == ["0", "2", "1", "10", "3"]
    row = rows[2]
    assert [row[k] for k in ("rnn_type", "num_layers", "hidden_size", "bidirectional")] == ["lstm", "2", "256", "True"]
    assert (int(row["parameters"]), float(row["train_minutes"]), float(row["dev_wer"]), float(row["test_wer"])) == \
        (4_100_000, 20.25, 0.22, 0.245)
    assert rows[3]["dev_wer"] == "" and rows[4]["parameters"] == "" and rows[0]["test_wer"] == ""


def test_markdown_shows_percent_millions_and_bolds_the_best(sweep_dir):
    lines = markdown_table(collect_sweep(sweep_dir)).splitlines()
    assert lines[0] == ("| job | rnn | layers | hidden | parameters | train min | epochs (best) | dev WER | test WER |")
    assert lines[2] == "| 0 | BLSTM | 2 | 128 | 1.20 M | 12.5 | 35 (30) | 30.00 % | – |"
    assert lines[4] == "| 1 | BLSTM | 2 | 256 | 4.10 M | 20.2 | 35 (30) | **22.00 %** | 24.50 % |"
    assert lines[5] == "| 10 | BLSTM | 3 | 256 | 6.50 M | 30.0 | 35 (30) | – | – |"
    assert lines[6] == "| 3 | BLSTM | 4 | 256 | – | – | not finished | – | – |"
    # without any evaluation there is no test column
    no_test = [j for j in collect_sweep(sweep_dir) if j.test_wer is None]
    assert "test WER" not in markdown_table(no_test)


def test_write_sweep_and_command(sweep_dir, tmp_path, capsys):
    written = write_sweep(collect_sweep(sweep_dir), tmp_path / "out")
    assert sorted(p.name for p in written.values()) == ["sweep_table.csv", "sweep_table.md", "wer_vs_params.png"]
    assert written["figure"].read_bytes()[:4] == b"\x89PNG" and written["figure"].stat().st_size > 10_000
    assert main([str(sweep_dir)]) == 0
    out, err = capsys.readouterr()
    assert "| 1 | BLSTM | 2 | 256 | 4.10 M |" in out and "not finished (no train_summary.json): 3" in err
    assert (sweep_dir / "sweep_table.md").read_text() == (tmp_path / "out" / "sweep_table.md").read_text()


def test_errors_name_the_folder_or_file(tmp_path, capsys):
    assert main([str(tmp_path / "missing")]) == 2
    assert "missing: not a folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty")]) == 2
    assert "no training jobs found" in capsys.readouterr().err
    bad = tmp_path / "bad"
    fake_job(bad, "0", layers=2, hidden=64, summary=summary(10, 0.5))
    (bad / "0" / "config.resolved.yaml").write_text("model: {hidden_size: 64}\n")
    assert main([str(bad)]) == 2
    assert "0/config.resolved.yaml: not a resolved training config" in capsys.readouterr().err


def test_a_real_training_run_is_read(tone_corpus, tmp_path):
    """The files asr-train writes (train_summary.json; config.resolved.yaml as the CLI dumps it) are understood."""
    s = Settings(data=DataConfig(train_manifest=str(tone_corpus), dev_manifest=str(tone_corpus),
                                 max_batch_duration_s=2.5, max_duration_s=2.5),
                 model=ModelConfig(hidden_size=8, num_layers=1, rnn_type="gru"),
                 trainer=TrainerConfig(max_epochs=1, threads=1, progress=False, tensorboard=False, device="cpu"))
    job = tmp_path / "sweep" / "0"
    result = train(s, job)
    (job / "config.resolved.yaml").write_text(yaml.safe_dump(s.to_dict()))
    [row] = collect_sweep(tmp_path / "sweep")
    expected = num_parameters(build_recognizer(s.features, 5, **vars(s.model)))  # blank, space, a, b, c
    assert (row.rnn_type, row.num_layers, row.hidden_size, row.parameters) == ("gru", 1, 8, expected)
    assert row.dev_wer == result["best_dev_wer"] and row.train_minutes == pytest.approx(result["train_minutes"])


def test_a_stopped_job_shows_how_far_it_got_and_is_never_ranked(tmp_path):
    root = tmp_path / "multirun"
    fake_job(root, "0", layers=2, hidden=128, summary=summary(1_200_000, 0.30))
    stopped = fake_job(root, "1", layers=5, hidden=256, evals={"eval_test": {"wer": 0.08, "manifest": "test.jsonl"}})
    cfg = yaml.safe_load((stopped / "config.resolved.yaml").read_text())
    (stopped / "config.resolved.yaml").write_text(yaml.safe_dump({**cfg, "trainer": {"max_epochs": 70}}))
    log = [{"epoch": 1, "dev_wer": 1.0}, {"epoch": 2, "dev_wer": 0.12}, {"epoch": 3, "dev_wer": 0.2},
           {"epoch": 4}]  # the last epoch was not scored (trainer.eval_every_epochs)
    log = [{**e, "train_loss": 1.0, "lr": 1e-3} for e in log]  # what asr-train writes in every entry
    (stopped / "train_log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in log))
    jobs = collect_sweep(root)
    j = jobs[1]
    assert (j.finished, j.epochs, j.planned_epochs, j.best_epoch, j.dev_wer, j.test_wer) == \
        (False, 4, 70, 2, 0.12, 0.08)
    lines = markdown_table(jobs).splitlines()
    # 12 % beats the finished job's 30 %, but a stopped job is not bolded as the best
    assert lines[2] == "| 0 | BLSTM | 2 | 128 | 1.20 M | 10.0 | 35 (30) | **30.00 %** | – |"
    assert lines[3] == "| 1 | BLSTM | 5 | 256 | – | – | stopped at 4 of 70 (2) | 12.00 % | 8.00 % |"
    (stopped / "train_log.jsonl").write_text("{not json\n")
    with pytest.raises(ValueError, match="1/train_log.jsonl:1: not valid JSON"):
        collect_sweep(root)
