"""format_pct: the one way a rate is printed as a percentage (training logs, sweep tables)."""

import math

import numpy as np

from asr.inference.metrics import format_pct


def test_format_pct_gives_two_decimals_and_a_dash_for_a_missing_rate():
    assert [format_pct(x) for x in (0.0757, 0, 1, 0.123456, 2.5)] == ["7.57 %", "0.00 %", "100.00 %", "12.35 %",
                                                                      "250.00 %"]
    assert [format_pct(x) for x in (None, math.nan, math.inf, -math.inf)] == ["-"] * 4
    assert format_pct(np.float32(0.5)) == "50.00 %" and format_pct(np.float64("nan")) == "-"


def test_format_pct_takes_the_missing_mark_of_the_table():
    assert format_pct(None, "–") == "–" and format_pct(math.inf, missing="n/a") == "n/a"
    assert format_pct(0.22, "–") == "22.00 %"
