"""Config errors stop before any work, with a message naming the key and what it allows."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import TONE_TEXTS, tiny_settings, write_tone_corpus
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from asr.config.schema import ConfigError, Settings
from asr.frontend.stats import compute_stats, load_stats, save_stats

# (override, key the message must name, what it must say is allowed)
CASES = [
    ("+model.hiden_size=64", "model.hiden_size", "allowed: rnn_type, hidden_size, num_layers"),
    ("+trainer.epochs=3", "trainer.epochs", "allowed: max_epochs"),
    ("model.hidden_size=abc", "model.hidden_size", "expected int"),
    ("model.bidirectional=maybe", "model.bidirectional", "expected bool"),
    ("optim.betas=[0.9]", "optim.betas", "expected a list of 2 values"),
    ("data.train_manifest=[a,3]", "data.train_manifest", "expected str or list or null"),
    ("model.hidden_size=-4", "model.hidden_size", "must be > 0"),
    ("model.num_layers=0", "model.num_layers", "must be > 0"),
    ("features.hop_length_ms=40", "features.hop_length_ms", "hop <= window"),
    ("features.n_mfcc=80", "features.n_mfcc", "0 < n_mfcc <= n_mels"),
    ("features.f_max_hz=9000", "features.f_max_hz", "f_max <= sample_rate/2"),
    ("features.subsample=4", "features.subsample", "1 <= subsample <= stack"),
    ("features.deltas=3", "features.deltas", "deltas in 0..2"),
    ("model.rnn_type=tcn", "model.rnn_type", "is not one of lstm, gru"),
    ("optim.name=lbfgs", "optim.name", "is not one of adamw, adam, sgd"),
    ("optim.schedule=step", "optim.schedule", "is not one of cosine, exponential, constant"),
    ("optim.lr=0", "optim.lr", "must be > 0"),
    ("optim.warmup_steps=-1", "optim.warmup_steps", "must be >= 0"),
    ("optim.final_lr_ratio=0", "optim.final_lr_ratio", "must be in (0, 1]"),
    ("optim.betas=[0.9,1.5]", "optim.betas[1]", "must be in [0, 1)"),
    ("model.dropout=1.5", "model.dropout", "must be in [0, 1)"),
    ("data.max_duration_s=500", "data.max_duration_s", "data.max_batch_duration_s (160.0)"),
    ("data.min_duration_s=40", "data.min_duration_s", "must be below data.max_duration_s"),
    ("data.num_workers=-1", "data.num_workers", "must be >= 0"),
    ("data.sort_jitter=2", "data.sort_jitter", "must be in [0, 1)"),
    ("augment.time_width=-5", "augment.time_width", "must be >= 0"),
    ("augment.max_time_ratio=3", "augment.max_time_ratio", "must be in [0, 1]"),
    ("trainer.max_epochs=0", "trainer.max_epochs", "must be > 0"),
    ("trainer.checkpoint_every_steps=-1", "trainer.checkpoint_every_steps", "must be >= 0"),
    ("trainer.max_nonfinite_steps=-1", "trainer.max_nonfinite_steps", "must be >= 0"),
    ("data.train_weights=[1,2]", "data.train_weights", "2 weight(s) for 1 data.train_manifest"),
    ("data.train_weights=[0]", "data.train_weights", "in (0, 100]"),
    ("+optim._target_=os.system", "optim._target_", "a _target_ must name asr.*"),
]


def _settings(overrides):
    with initialize_config_module(config_module="asr.conf", version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    return Settings.from_dict(OmegaConf.to_container(cfg, resolve=True))


@pytest.mark.parametrize("override,key,allowed", CASES, ids=[c[0] for c in CASES])
def test_config_error_names_the_key_and_the_allowed_values(override, key, allowed, record_property):
    with pytest.raises(ConfigError) as err:
        _settings([override])
    assert key in str(err.value) and allowed in str(err.value), str(err.value)
    record_property("config_errors_named", 1)


def test_sample_rate_mismatch_between_statistics_and_features_names_both(tone_corpus, tmp_path, record_property):
    from asr.data.manifest import read_manifest
    from asr.frontend.features import FeatureConfig

    save_stats(tmp_path / "stats.pt", compute_stats(read_manifest(tone_corpus)[:2], FeatureConfig()))
    with pytest.raises(ConfigError, match=r"data\.stats: .*features\.sample_rate_hz: 16000 there, 8000 here"):
        load_stats(tmp_path / "stats.pt", FeatureConfig(sample_rate_hz=8000))
    torch.save({"mean": torch.zeros(3), "std": torch.ones(3), "features": {"sample_rate_hz": "16k"}},
               tmp_path / "odd.pt")
    with pytest.raises(ConfigError, match=r"stats\.features\.sample_rate_hz: expected int"):
        load_stats(tmp_path / "odd.pt", FeatureConfig())
    record_property("config_errors_named", 2)


def test_the_cli_stops_before_any_work_and_names_the_key(tmp_path, record_property):
    manifest = write_tone_corpus(tmp_path / "corpus", TONE_TEXTS)
    settings = tiny_settings(manifest)
    assert settings.data.train_manifest  # a valid corpus, so only the bad key can stop the run
    cases = [("features.hop_length_ms=30", "features.hop_length_ms"),
             ("trainer.max_nonfinite_steps=-3", "trainer.max_nonfinite_steps"),
             ("trainer.resume=true", "trainer.resume=true but there is no checkpoint")]
    for override, needle in cases:
        run = tmp_path / f"run_{override.split('=')[0]}"
        r = subprocess.run([str(Path(sys.executable).parent / "asr-train"), f"data.train_manifest={manifest}",
                            "data.dev_manifest=null", override, f"hydra.run.dir={run}", "trainer.threads=1"],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]
        assert not (run / "checkpoints").exists() and not (run / "model.pt").exists()
    record_property("config_errors_named", len(cases))
