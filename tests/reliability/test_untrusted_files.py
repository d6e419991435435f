"""Untrusted model files: loaded with weights_only=True, refused with a clear error, never executed."""

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import train_tone_model

from asr.config.schema import ConfigError, Settings, check_targets
from asr.models.checkpoint import ModelFileError, load_model, safe_load


class _RunsCode:
    """Unpickling this calls ``Path.touch(marker)``: proof that code from the file ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture(scope="module")
def good_model(tmp_path_factory) -> Path:
    return train_tone_model(tmp_path_factory.mktemp("tone"))[0]


def _bad_model_files(good: Path, root: Path) -> dict[str, tuple[Path, str]]:
    """``{kind: (file, text the error must contain)}``, each derived from a good model file."""
    root.mkdir(parents=True, exist_ok=True)
    bundle = torch.load(good, weights_only=True)
    marker = root / "code_ran"
    files: dict[str, tuple[Path, str]] = {}

    def save(kind: str, obj, needle: str, raw: bytes | None = None) -> None:
        path = root / f"{kind}.pt"
        if raw is not None:
            path.write_bytes(raw)
        else:
            torch.save(obj, path)
        files[kind] = (path, needle)

    def edited(**changes):
        b = copy.deepcopy(bundle)
        for dotted, value in changes.items():
            *parents, last = dotted.split("__")
            node = b
            for p in parents:
                node = node[p]
            node[last] = value
        return b

    save("pickled_payload_top", {**bundle, "payload": _RunsCode(marker)}, "refused")
    save("pickled_payload_in_config", edited(config__model=_RunsCode(marker)), "refused")
    save("pickled_payload_as_tensor_name", {**bundle, "state_dict": {**bundle["state_dict"], "x": _RunsCode(marker)}},
         "refused")
    data = good.read_bytes()
    save("truncated", None, "not a loadable model file", raw=data[: len(data) // 2])
    save("random_bytes", None, "not a loadable model file", raw=bytes(range(256)) * 64)
    save("empty", None, "not a loadable model file", raw=b"")
    save("not_a_dict", [1, 2, 3], "expected a dict")
    save("training_checkpoint", {"optimizer": {}, "model": bundle["state_dict"]}, "training checkpoint")
    save("future_format", edited(format_version=99), "format version 99")
    save("target_os_system", edited(config__model___target_="os.system"), "config.model._target_")
    save("target_builtins", edited(config__optim={"_target_": "builtins.eval", "name": "adamw"}),
         "config.optim._target_")
    save("unknown_config_group", edited(config__callbacks={"x": 1}), "unknown group(s) callbacks")
    save("wrong_type_in_config", edited(config__model__hidden_size="48; rm -rf /"), "model.hidden_size")
    save("hop_longer_than_window", edited(features__hop_length_ms=40.0), "features.hop_length_ms")
    save("negative_hidden_size", edited(model__hidden_size=-48), "model")
    save("unknown_model_key", edited(model__activation="relu"), "model.activation")
    save("vocab_without_blank", edited(vocab=["a", "b"]), "vocabulary must start with")
    save("non_tensor_weight", {**bundle, "state_dict": {**bundle["state_dict"], "acoustic.output.weight": [1.0]}},
         "must map names to tensors")
    save("mismatched_weights", {**bundle, "state_dict": {k: v[:1] if v.ndim else v
                                                         for k, v in bundle["state_dict"].items()}},
         "do not match")
    (root / "folder.pt").mkdir()
    files["folder_not_file"] = (root / "folder.pt", "not found")
    return files


def test_every_bad_model_file_is_refused_naming_the_file_and_runs_no_code(good_model, tmp_path, record_property):
    files = _bad_model_files(good_model, tmp_path / "bad")
    crashes, refused = [], 0
    for kind, (path, needle) in files.items():
        try:
            load_model(path)
        except ModelFileError as err:
            assert str(path) in str(err) and needle in str(err), (kind, str(err))
            refused += 1
        except Exception as err:  # noqa: BLE001 - anything else is a crash of ours
            crashes.append((kind, repr(err)))
        else:
            crashes.append((kind, "loaded"))
    assert crashes == [] and refused == len(files)
    assert not (tmp_path / "bad" / "code_ran").exists()  # no payload was ever unpickled
    load_model(good_model)  # the good file still loads
    record_property("bad_model_kinds", len(files))
    record_property("bad_models_refused", refused)
    record_property("code_executed", 0)
    record_property("crashes", len(crashes))


def test_cli_refuses_a_malicious_model_file_with_one_line(good_model, tmp_path):
    files = _bad_model_files(good_model, tmp_path / "bad")
    evil = files["pickled_payload_top"][0]
    cli = "import sys; from asr.cli.apps import transcribe_main; sys.argv[0] = 'asr-transcribe'; transcribe_main()"
    r = subprocess.run([sys.executable, "-c", cli, f"model={evil}", f"input={tmp_path}", "output=o.jsonl",
                        "hydra.run.dir=h", "threads=1"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"error: {evil}: refused: the file contains pickled Python objects" in r.stderr
    assert not (tmp_path / "bad" / "code_ran").exists() and not (tmp_path / "o.jsonl").exists()


def test_checkpoints_and_statistics_load_without_pickle_too(tmp_path):
    torch.save({"state": {"epoch": 1}, "evil": _RunsCode(tmp_path / "ran")}, tmp_path / "last.pt")
    with pytest.raises(ModelFileError, match="refused"):
        safe_load(tmp_path / "last.pt")
    from asr.frontend.features import FeatureConfig
    from asr.frontend.stats import load_stats

    torch.save({"mean": _RunsCode(tmp_path / "ran")}, tmp_path / "stats.pt")
    with pytest.raises(ConfigError, match=r"data\.stats: .*refused"):
        load_stats(tmp_path / "stats.pt", FeatureConfig())
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize("target,allowed", [
    ("asr.models.acoustic.AcousticModel", True), ("torch.optim.AdamW", True),
    ("torch.optim.lr_scheduler.LambdaLR", True),
    ("os.system", False), ("subprocess.Popen", False), ("builtins.exec", False), ("asr.__builtins__", False),
    ("asr._private", False), ("torch.load", False), ("asr", False), (["asr.models.acoustic"], False),
])
def test_target_allow_list(target, allowed):
    cfg = {"optim": {"sched": {"_target_": target}}}
    if allowed:
        check_targets(cfg)
    else:
        with pytest.raises(ConfigError, match=r"config\.optim\.sched\._target_: .* is not allowed; .*asr\.\*"):
            check_targets(cfg)


def test_a_config_group_with_an_allowed_target_validates_and_a_foreign_one_does_not():
    assert Settings.from_dict({"optim": {"_target_": "torch.optim.AdamW", "lr": 1e-3}}).optim.lr == 1e-3
    with pytest.raises(ConfigError, match=r"optim\._target_: 'os\.system' is not allowed"):
        Settings.from_dict({"optim": {"_target_": "os.system", "lr": 1e-3}})
