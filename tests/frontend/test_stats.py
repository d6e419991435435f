import dataclasses

import pytest
import torch

from asr.config.schema import ConfigError
from asr.data.manifest import read_manifest
from asr.frontend.features import FeatureConfig
from asr.frontend.stats import build_vocab, compute_stats, load_stats, load_vocab, save_stats, save_vocab


def test_vocab_and_stats_round_trip_and_feature_mismatch_is_named(tone_corpus, tmp_path):
    utts = read_manifest(tone_corpus)
    tok = build_vocab(utts)
    save_vocab(tmp_path / "vocab.json", tok)
    assert load_vocab(tmp_path / "vocab.json").vocab == ["<blank>", " ", "a", "b", "c"]
    stats = compute_stats(utts, FeatureConfig())
    save_stats(tmp_path / "stats.pt", stats)
    back = load_stats(tmp_path / "stats.pt", FeatureConfig(stack=4))  # stacking does not change the statistics
    assert torch.equal(back["mean"], stats["mean"]) and back["frames"] == stats["frames"] > 0
    with pytest.raises(ConfigError, match=r"features\.n_mfcc: 40 there, 13 here"):
        load_stats(tmp_path / "stats.pt", FeatureConfig(n_mfcc=13))


def test_missing_or_broken_vocab_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_vocab(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text('["a", "b"]')
    with pytest.raises(ConfigError, match="must start with"):
        load_vocab(tmp_path / "bad.json")


def test_stats_skip_an_unreadable_file_and_count_only_real_frames(tone_corpus, tmp_path, caplog):
    utts = read_manifest(tone_corpus)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really audio")
    bad = dataclasses.replace(utts[0], utt_id="broken", audio_path=str(broken))
    # batches of 16 hold all of these, so the padding of the longest one never counts
    alone = [compute_stats([u], FeatureConfig()) for u in utts]
    together = compute_stats([*utts[:3], bad, *utts[3:]], FeatureConfig())
    assert together["frames"] == sum(s["frames"] for s in alone)
    assert "stats: skipping broken" in caplog.text and str(broken) in caplog.text
    mean = sum(s["mean"].double() * s["frames"] for s in alone) / together["frames"]
    torch.testing.assert_close(together["mean"].double(), mean, rtol=0, atol=1e-4)
