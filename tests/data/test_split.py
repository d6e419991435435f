"""Speaker-disjoint splits: no speaker on both sides, seeded, about the asked share held out."""

from __future__ import annotations

import json

import pytest

from asr.data.split import SplitError, choose_speakers, split_by_speaker


def _manifest(path, speakers: dict[str, int]):
    lines = [json.dumps({"audio_filepath": f"{s}_{i}.flac", "duration": 1.0, "text": "a", "speaker": s})
             for s, n in speakers.items() for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_split_holds_out_whole_speakers_near_the_fraction_and_is_seeded(tmp_path):
    counts = {f"s{i:02d}": 10 + i for i in range(20)}  # 390 utterances
    src = _manifest(tmp_path / "all.jsonl", counts)
    r1 = split_by_speaker(src, tmp_path / "train.jsonl", tmp_path / "dev.jsonl", dev_fraction=0.1, seed=3)
    train = [json.loads(x)["speaker"] for x in (tmp_path / "train.jsonl").read_text().splitlines()]
    dev = [json.loads(x)["speaker"] for x in (tmp_path / "dev.jsonl").read_text().splitlines()]
    assert not set(train) & set(dev)
    assert len(train) + len(dev) == 390 and r1["dev_utterances"] == len(dev)
    assert abs(len(dev) - 39) <= 15  # within one speaker's count of the target
    assert sorted(set(dev)) == r1["dev_speakers"]
    r2 = split_by_speaker(src, tmp_path / "t2.jsonl", tmp_path / "d2.jsonl", dev_fraction=0.1, seed=3)
    assert r2["dev_speakers"] == r1["dev_speakers"]
    assert (tmp_path / "d2.jsonl").read_bytes() == (tmp_path / "dev.jsonl").read_bytes()
    assert choose_speakers(counts, 0.1, seed=4) != r1["dev_speakers"]


def test_split_keeps_lines_unchanged_and_in_order(tmp_path):
    src = _manifest(tmp_path / "all.jsonl", {"a": 3, "b": 3, "c": 3})
    split_by_speaker(src, tmp_path / "train.jsonl", tmp_path / "dev.jsonl", dev_fraction=0.3, seed=0)
    lines = src.read_text().splitlines()
    train = (tmp_path / "train.jsonl").read_text().splitlines()
    dev = (tmp_path / "dev.jsonl").read_text().splitlines()
    assert sorted(train + dev) == sorted(lines)
    assert train == [x for x in lines if x in train]


def test_named_speakers_can_be_held_out(tmp_path):
    src = _manifest(tmp_path / "all.jsonl", {"a": 2, "b": 3, "c": 4})
    r = split_by_speaker(src, tmp_path / "train.jsonl", tmp_path / "dev.jsonl", hold_out=["c", "a"])
    assert r["dev_speakers"] == ["a", "c"] and r["dev_utterances"] == 6 and r["train_utterances"] == 3
    with pytest.raises(SplitError, match="no utterances of speaker"):
        split_by_speaker(src, tmp_path / "train.jsonl", tmp_path / "dev.jsonl", hold_out=["zz"])


def test_split_errors_name_the_problem(tmp_path):
    src = tmp_path / "all.jsonl"
    src.write_text('{"audio_filepath": "a.flac", "duration": 1, "text": "a", "speaker": "x"}\n'
                   '{"audio_filepath": "b.flac", "duration": 1, "text": "a"}\n')
    with pytest.raises(SplitError, match=r"all\.jsonl:2: no 'speaker' field"):
        split_by_speaker(src, tmp_path / "t.jsonl", tmp_path / "d.jsonl")
    one = _manifest(tmp_path / "one.jsonl", {"a": 4})
    with pytest.raises(SplitError, match="at least 2 speakers"):
        split_by_speaker(one, tmp_path / "t.jsonl", tmp_path / "d.jsonl")
    with pytest.raises(SplitError, match="is the input manifest"):
        split_by_speaker(one, one, tmp_path / "d.jsonl")
    with pytest.raises(SplitError, match=r"dev_fraction must be in \(0, 1\)"):
        choose_speakers({"a": 1, "b": 1}, 1.5, 0)
