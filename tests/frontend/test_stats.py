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


def test_asr_stats_trains_a_bpe_tokenizer_next_to_vocab_json(tone_corpus, tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    from asr.data.tokenizer import PieceTokenizer

    asr = Path(sys.executable).parent / "asr"
    r = subprocess.run([str(asr), "stats", f"data.train_manifest={tone_corpus}", "data.tokenizer=bpe",
                        "data.vocab_size=8", f"output_dir={tmp_path / 'lang'}", f"hydra.run.dir={tmp_path / 'h'}"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "vocabulary: 9 bpe symbols" in r.stdout
    entry = json.loads((tmp_path / "lang" / "vocab.json").read_text())
    assert entry["tokenizer"] == "bpe" and entry["model"] == "tokenizer.model" and len(entry["vocab"]) == 9
    tok = load_vocab(tmp_path / "lang" / "vocab.json")
    assert isinstance(tok, PieceTokenizer) and tok.vocab == entry["vocab"]
    assert tok.model_proto == (tmp_path / "lang" / "tokenizer.model").read_bytes()
    assert all(tok.decode(tok.encode(u.text)) == u.text for u in read_manifest(tone_corpus))


def test_a_piece_vocab_whose_model_was_changed_or_lost_is_refused(tone_corpus, tmp_path):
    from asr.frontend.stats import check_tokenizer

    tok = build_vocab(read_manifest(tone_corpus), "unigram", vocab_size=7)
    save_vocab(tmp_path / "vocab.json", tok)
    assert load_vocab(tmp_path / "vocab.json").vocab == tok.vocab
    check_tokenizer(tok, "unigram", 7)
    with pytest.raises(ConfigError, match=r"holds a unigram vocabulary but data.tokenizer=bpe"):
        check_tokenizer(tok, "bpe", 7)
    with pytest.raises(ConfigError, match=r"holds 7 pieces but data.vocab_size=256"):
        check_tokenizer(tok, "unigram", 256)
    with pytest.raises(ConfigError, match=r"holds a char vocabulary but data.tokenizer=unigram"):
        check_tokenizer(build_vocab(read_manifest(tone_corpus)), "unigram", 7)
    other = build_vocab(read_manifest(tone_corpus), "unigram", vocab_size=6)
    (tmp_path / "tokenizer.model").write_bytes(other.model_proto)
    with pytest.raises(ConfigError, match=r"data.vocab: .*vocab.json is not a valid vocabulary file: .*sha256 differs"):
        load_vocab(tmp_path / "vocab.json")
    (tmp_path / "tokenizer.model").unlink()
    with pytest.raises(ConfigError, match=r"data.vocab: .*tokenizer.model does not exist"):
        load_vocab(tmp_path / "vocab.json")
    with pytest.raises(ConfigError, match=r"data.vocab_size=100: sentencepiece cannot train"):
        build_vocab(read_manifest(tone_corpus), "bpe", vocab_size=100)
