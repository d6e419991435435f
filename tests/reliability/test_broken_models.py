"""A model file whose weights are not finite, or whose feature statistics are degenerate, is refused at load."""

from pathlib import Path

import pytest
import torch
from conftest import tiny_settings, write_tone_corpus

from asr.models.checkpoint import ModelFileError, load_model
from asr.training.train import train


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("model")
    manifest = write_tone_corpus(root / "corpus", ["ab", "ba"])
    train(tiny_settings(manifest, max_epochs=1), root / "run")
    return root / "run" / "model.pt"


def _weight_name(state: dict) -> str:
    return next(k for k, v in state.items() if v.is_floating_point() and v.dim() == 2)


@pytest.mark.parametrize("kind", ["nan_weight", "inf_weight", "zero_std", "negative_std", "nan_mean"])
def test_a_broken_model_file_is_refused_naming_the_tensor(model_file, tmp_path, kind):
    bundle = torch.load(model_file, weights_only=True)
    state = bundle["state_dict"]
    std_key = next(k for k in state if k.endswith("std"))
    name = {"nan_weight": _weight_name(state), "inf_weight": _weight_name(state), "zero_std": std_key,
            "negative_std": std_key, "nan_mean": std_key.replace("std", "mean")}[kind]
    t = state[name].clone()
    if kind == "zero_std":
        t.zero_()
    else:
        t.view(-1)[0] = {"nan_weight": float("nan"), "inf_weight": float("inf"), "negative_std": -1.0,
                         "nan_mean": float("nan")}[kind]
    state[name] = t
    bad = tmp_path / f"{kind}.pt"
    torch.save(bundle, bad)
    with pytest.raises(ModelFileError) as err:
        load_model(bad)
    assert str(bad) in str(err.value) and name in str(err.value)
    load_model(model_file)  # the file it came from loads
