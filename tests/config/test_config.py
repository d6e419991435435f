"""Every config option composes, validates and builds; bad keys and values are named."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from asr.config.schema import ConfigError, Settings
from asr.models.acoustic import build_recognizer

CONF = Path(__file__).resolve().parents[2] / "conf"
GROUP_OPTIONS = {g.name: sorted(p.stem for p in g.glob("*.yaml")) for g in CONF.iterdir() if g.is_dir()}


def _settings(overrides):
    with initialize_config_module(config_module="asr.conf", version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    return Settings.from_dict(OmegaConf.to_container(cfg, resolve=True))


def test_groups_are_the_documented_ones():
    assert {"data", "features", "model", "optim", "augment", "trainer", "decoder"} <= set(GROUP_OPTIONS)


@pytest.mark.parametrize("group,option", [(g, o) for g, opts in GROUP_OPTIONS.items() for o in opts])
def test_every_option_composes_validates_and_builds(group, option):
    files = ["decoder.lexicon=lang/lexicon.txt", "decoder.lm=lang/lm_3gram.bin"] if option == "beam_lm" else []
    s = _settings([f"{group}={option}", *files])
    model = build_recognizer(s.features, 29, **vars(s.model))
    assert model.acoustic.output.out_features == 29
    assert model.features.config == s.features


def test_command_line_overrides_reach_the_model():
    s = _settings(["model.num_layers=5", "model.hidden_size=64", "model.rnn_type=gru", "features.deltas=1"])
    model = build_recognizer(s.features, 29, **vars(s.model))
    assert len(model.acoustic.layers) == 5
    assert model.acoustic.layers[0].forward_rnn.hidden_size == 64
    assert model.acoustic.layers[0].forward_rnn.input_size == 40 * 2 * 3


def test_unknown_key_fails_naming_it():
    with pytest.raises(Exception, match="hiden_size"):
        _settings(["model.hiden_size=64"])


@pytest.mark.parametrize("override,key", [
    ("model.hidden_size=-4", "model.hidden_size"),
    ("model.hidden_size=abc", "model.hidden_size"),
    ("features.hop_length_ms=40", "features.hop_length_ms"),
    ("model.rnn_type=tcn", "model.rnn_type"),
    ("features.cmn=speaker", "features.cmn"),
    ("optim.lr=0", "optim.lr"),
    ("model.dropout=1.5", "model.dropout"),
    ("data.max_duration_s=500", "data.max_duration_s"),
])
def test_impossible_values_fail_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        _settings([override])


def test_augment_and_decoder_groups_set_what_they_say():
    full = _settings(["augment=full"]).augment
    assert (full.spec_augment, full.speed_perturb, full.noise, full.volume) == (True, True, True, True)
    assert full.wave_augment().speeds == (0.9, 1.0, 1.1)
    none = _settings(["augment=none"]).augment
    assert not none.spec_augment and not none.wave_augment().active
    beam = _settings(["decoder=beam", "decoder.beam_size=8"]).decoder
    assert beam.options()["beam_size"] == 8 and beam.options()["lm"] is None
    assert _settings(["model=blstmp"]).model.proj_size == 160


@pytest.mark.parametrize("overrides,key", [
    (["decoder=beam_lm"], "decoder.lexicon"),
    (["decoder=beam", "decoder.lm=x.bin"], "decoder.lm"),
    (["decoder=beam", "decoder.beam_size=0"], "decoder.beam_size"),
    (["model=bgru", "model.proj_size=64"], "model.proj_size"),
    (["model=bgru", "model.forget_bias=1"], "model.forget_bias"),
    (["model.forget_bias=20"], "model.forget_bias"),
    (["trainer.average_last=5", "trainer.keep_checkpoints=3"], "trainer.average_last"),
    (["trainer.average_last=5", "trainer.keep_checkpoints=5", "trainer.max_epochs=2"], "trainer.average_last"),
    (["augment.volume_gain_db=[6,-6]"], "volume_gain_db"),
])
def test_impossible_combinations_fail_naming_the_key(overrides, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        _settings(overrides)
