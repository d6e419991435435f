"""One source of defaults: the dataclasses. The YAML in conf/ holds only what differs from them."""

import copy
import dataclasses
from pathlib import Path

import pytest
from hydra import compose, initialize, initialize_config_module
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from asr.cli.common import store_app
from asr.config.commands import COMMAND_CONFIGS, TOOL_CONFIGS, TranscribeConfig
from asr.config.schema import GROUPS, MISSING, ConfigError, Settings, defaults_dict, from_dict, without_retired
from asr.models.checkpoint import check_stored_config

CONF = Path(__file__).resolve().parents[2] / "conf"
OPTION_FILES = sorted(p for g in GROUPS for p in (CONF / g).glob("*.yaml"))
SCHEMA_REF = "/schema/{group}@_here_"


def _compose(config: str, overrides=()) -> dict:
    with initialize_config_module(config_module="asr.conf", version_base="1.3"):
        return OmegaConf.to_container(compose(config_name=config, overrides=list(overrides)), resolve=True)


def _parent(path: Path) -> dict:
    """What an option file extends: its group's schema defaults, or the composed option it names."""
    group = path.parent.name
    defaults = OmegaConf.load(path).get("defaults")
    assert defaults and defaults[-1] == "_self_", f"{path}: defaults must end with _self_"
    (parent,) = defaults[:-1]
    if parent == SCHEMA_REF.format(group=group):
        return defaults_dict(GROUPS[group])
    assert (path.parent / f"{parent}.yaml").is_file(), f"{path}: extends {parent!r}, neither schema nor an option"
    return _compose("train", [f"{group}={parent}", *_lm_files(parent)])[group]


def _lm_files(option: str) -> list[str]:
    return ["decoder.lexicon=l.txt", "decoder.lm=l.bin"] if option == "beam_lm" else []


@pytest.mark.parametrize("path", OPTION_FILES, ids=[f"{p.parent.name}/{p.stem}" for p in OPTION_FILES])
def test_option_files_hold_only_what_differs_from_what_they_extend(path):
    own = {k: v for k, v in OmegaConf.to_container(OmegaConf.load(path)).items() if k != "defaults"}
    parent = _parent(path)
    fields = {f.name for f in dataclasses.fields(GROUPS[path.parent.name])}
    unknown = sorted(set(own) - fields)
    assert not unknown, f"{path}: keys the schema lacks: {unknown}"
    restated = sorted(k for k, v in own.items() if parent[k] == v and type(parent[k]) is type(v))
    assert not restated, f"{path}: restates the default of what it extends: {restated}"


@pytest.mark.parametrize("name", sorted(COMMAND_CONFIGS) + ["train"])
def test_command_files_hold_only_the_hydra_block_and_defaults_list(name):
    keys = set(OmegaConf.load(CONF / f"{name}.yaml"))
    assert keys <= {"defaults", "hydra"}, f"conf/{name}.yaml sets {sorted(keys - {'defaults', 'hydra'})}"


def test_the_default_training_config_is_the_schema():
    s = Settings.from_dict(_compose("train"))
    for group in ("features", "model", "optim", "augment", "trainer", "decoder"):
        assert getattr(s, group) == GROUPS[group](), group
    # the data group names the corpus; every other data setting is the schema's
    assert dataclasses.replace(s.data, name="custom", train_manifest=None, dev_manifest=None,
                               sortagrad_epochs=0) == GROUPS["data"]()


def test_the_an4_data_option_points_where_the_recipe_writes():
    data = Settings.from_dict(_compose("train", ["data=an4"])).data
    assert (data.train_manifest, data.dev_manifest) == ("recipes/an4/exp/data/train.jsonl",
                                                        "recipes/an4/exp/data/dev.jsonl")
    run_sh = (CONF.parent / "recipes" / "an4" / "run.sh").read_text()
    assert 'exp="$here/exp"' in run_sh and 'data="$exp/data"' in run_sh
    syn = Settings.from_dict(_compose("train", ["data=synthetic"])).data
    assert syn.train_manifest == "recipes/synthetic/exp/data/train.jsonl"


def test_defaults_dict_marks_required_fields_and_keeps_nested_groups():
    d = defaults_dict(TranscribeConfig, exclude=tuple(GROUPS.values()))
    assert (d["model"], d["input"], d["output"]) == (MISSING, MISSING, MISSING)
    assert d["long_audio"] == {"window_s": 30.0, "overlap_s": 4.0} and "decoder" not in d
    assert defaults_dict(GROUPS["optim"])["betas"] == [0.9, 0.98]  # a list, as YAML and OmegaConf hold it


@pytest.mark.parametrize("name", sorted(COMMAND_CONFIGS))
def test_every_command_config_composes_to_its_schema_defaults(name):
    cls = COMMAND_CONFIGS[name]
    required = {"evaluate": ["model=m.pt", "data.manifest=d.jsonl"], "transcribe": ["model=m", "input=i", "output=o"],
                "validate": ["data.manifest=d.jsonl"], "stats": ["output_dir=o"], "plot": ["run=r"],
                "inspect": ["model=m", "audio=a", "output=o"]}[name]
    if name in ("evaluate", "transcribe", "inspect"):  # no config dir: model= is a file (store_app)
        store = ConfigStore.instance()
        saved = copy.deepcopy(store.repo)  # the command's YAML in ConfigStore would shadow conf/ for the next test
        try:
            store_app(name, groups=("decoder",))(lambda cfg: None).register()
            with initialize(version_base="1.3", config_path=None):
                d = OmegaConf.to_container(compose(config_name=name, overrides=required), resolve=True)
        finally:
            store.repo = saved
    else:
        d = _compose(name, required)
    c = from_dict(cls, d, "")
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            assert getattr(c, f.name) == f.default, f"{name}.{f.name}"


# a tool whose input is one of several settings says which to give instead of naming one required key
MISSING_INPUT = {"stream": r"give an audio file .* or --mic"}


@pytest.mark.parametrize("name", sorted(TOOL_CONFIGS))
def test_tool_configs_name_what_is_missing(name):
    from asr.cli.common import compose_tool, validated

    with pytest.raises(ConfigError, match=MISSING_INPUT.get(name, "missing required setting")):
        validated(compose_tool(name, []), TOOL_CONFIGS[name])


def test_retired_test_manifest_loads_from_stored_configs_but_not_from_the_command_line():
    stored = {**Settings().to_dict(), "data": {**Settings().to_dict()["data"], "test_manifest": "t.jsonl"}}
    check_stored_config(stored)  # a model file written before the key was retired
    assert "test_manifest" not in without_retired(stored)["data"]
    with pytest.raises(ConfigError, match=r"data\.test_manifest"):
        Settings.from_dict(_compose("train", ["+data.test_manifest=t.jsonl"]))
