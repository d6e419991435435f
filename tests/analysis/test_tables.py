"""The shared table layout and run-record readers that the sweep and evaluation tables both use."""

import csv
import io
import json
import math

import pytest

from asr.analysis.runs import finite_or_none, natural_key, read_json_object
from asr.analysis.tables import csv_text, markdown_table


def test_markdown_table_aligns_names_left_and_numbers_right():
    text = markdown_table(["job", "rnn", "WER", "CER"], [["0", "LSTM", "7.57 %", "3.10 %"], ["10", "GRU", "–", "–"]],
                          left=2)
    assert text == ("| job | rnn | WER | CER |\n"
                    "|---|---|---:|---:|\n"
                    "| 0 | LSTM | 7.57 % | 3.10 % |\n"
                    "| 10 | GRU | – | – |\n")
    assert markdown_table(["a", "b"], []) == "| a | b |\n|---|---:|\n"  # default: only the first column left


def test_csv_text_writes_raw_values_and_quotes_what_needs_it():
    text = csv_text(["job", "wer", "note"], [["0", 0.0757, None], ["1", 1e-05, "a, b"]])
    assert text == 'job,wer,note\n0,0.0757,\n1,1e-05,"a, b"\n'
    assert list(csv.reader(io.StringIO(text)))[2] == ["1", "1e-05", "a, b"]


def test_natural_key_orders_job_folders_by_number():
    assert sorted(["10", "2", "1/eval", "0", "1"], key=natural_key) == ["0", "1", "1/eval", "2", "10"]
    assert sorted(["run10/x", "run9/x"], key=natural_key) == ["run9/x", "run10/x"]


def test_finite_or_none_keeps_only_finite_numbers():
    assert [finite_or_none(x) for x in (0.25, 3, math.inf, math.nan, None, "0.5")] == [0.25, 3.0, None, None, None,
                                                                                      None]


def test_read_json_object_names_the_file(tmp_path):
    good = tmp_path / "summary.json"
    good.write_text(json.dumps({"wer": 0.1}))
    assert read_json_object(good) == {"wer": 0.1}
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"list.json: expected a JSON object"):
        read_json_object(tmp_path / "list.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"bad.json: not readable JSON"):
        read_json_object(tmp_path / "bad.json")
    with pytest.raises(ValueError, match=r"missing.json: not readable JSON"):
        read_json_object(tmp_path / "missing.json")
