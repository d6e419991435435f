"""The evaluation-multirun table: a fake lm_weight × word_score grid in, exact rows and the best job out."""

import csv
import io
import json
from pathlib import Path

import pytest

from asr.analysis.eval_table import collect_evals, csv_table, markdown_table, varying_keys, write_tables
from asr.cli.analysis import eval_table_main as main


def fake_eval(root: Path, job: str, lm_weight: float, word_score: float, wer: float, cer: float) -> None:
    d = root / job
    (d / ".hydra").mkdir(parents=True)
    settings = {"name": "beam_lm", "beam_size": 50, "lm_weight": lm_weight, "word_score": word_score,
                "lexicon": "lang/lexicon.txt", "lm": "lang/lm_3gram.bin"}
    (d / "summary.json").write_text(json.dumps({
        "wer": wer, "cer": cer, "utterances": 130, "real_time_factor": 0.02, "search_real_time_factor": 0.005,
        "decoder": "beam_lm", "decoder_settings": settings, "model": "/x/model.pt", "manifest": "/d/dev.jsonl"}))


@pytest.fixture
def grid(tmp_path: Path) -> Path:
    root = tmp_path / "tune"
    wers = {(0.5, -1): 0.20, (0.5, 1): 0.19, (1, -1): 0.15, (1, 1): 0.15, (2, -1): 0.17, (2, 1): 0.16}
    cers = {(1, -1): 0.080, (1, 1): 0.070}
    for i, ((w, s), wer) in enumerate(wers.items()):
        fake_eval(root, str(i), w, s, wer, cers.get((w, s), 0.09))
    (root / "multirun.yaml").write_text("hydra: {}\n")
    return root


def test_rows_columns_and_best(grid):
    jobs = collect_evals(grid)
    assert [j.job for j in jobs] == ["0", "1", "2", "3", "4", "5"]
    assert varying_keys(jobs) == ["decoder.lm_weight", "decoder.word_score"]  # constant settings are left out
    md = markdown_table(jobs).splitlines()
    assert md[0] == "| job | decoder.lm_weight | decoder.word_score | WER | CER | RTF | search RTF |"
    assert md[5] == "| 3 | 1 | 1 | **15.00 %** | 7.00 % | 0.0200 | 0.0050 |"  # tie on WER, lower CER wins
    rows = list(csv.DictReader(io.StringIO(csv_table(jobs))))
    assert (rows[2]["decoder.lm_weight"], rows[2]["decoder.word_score"], float(rows[2]["wer"])) == ("1", "-1", 0.15)


def test_files_and_cli(grid, tmp_path, capsys):
    written = write_tables(collect_evals(grid), tmp_path / "out")
    best = json.loads(written["best"].read_text())
    assert best["job"] == "3" and best["overrides"] == ["decoder.lm_weight=1", "decoder.word_score=1"]
    assert main([str(grid)]) == 0
    out = capsys.readouterr().out
    assert "best: job 3  WER 15.00 %  CER 7.00 %  decoder.lm_weight=1 decoder.word_score=1" in out
    assert (grid / "eval_table.csv").is_file() and (grid / "eval_table.md").is_file()


def test_errors_name_the_file(tmp_path, capsys):
    assert main([str(tmp_path / "nowhere")]) == 2
    (tmp_path / "bad" / "0").mkdir(parents=True)
    (tmp_path / "bad" / "0" / "summary.json").write_text(json.dumps({"wer": 0.1}))
    assert main([str(tmp_path / "bad")]) == 2
    assert "bad/0/summary.json" in capsys.readouterr().err
