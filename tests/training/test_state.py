"""TrainState: a typed record that checkpoints store as a plain dict, read back from old checkpoints too."""

import math

import torch

from asr.training.state import TrainState

# the "state" dict of a checkpoint written before TrainState existed (the same keys, as plain values)
OLD_STATE = {"epoch": 3, "step": 10, "best_wer": 0.25, "best_epoch": 2, "batches_done": 1, "epoch_loss": 12.5,
             "epoch_tokens": 40, "epoch_audio_s": 3.5, "epoch_train_s": 0.75, "skipped_batches": 1,
             "nonfinite_run": 0, "oom_splits": 2, "settings": {"features": {"n_mfcc": 40}, "model": {"num_layers": 2}}}


def test_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    state = TrainState.from_dict(OLD_STATE)
    assert state.to_dict() == OLD_STATE
    torch.save({"state": state.to_dict()}, tmp_path / "last.pt")
    assert TrainState.from_dict(torch.load(tmp_path / "last.pt", weights_only=True)["state"]) == state


def test_missing_keys_keep_the_defaults_and_unknown_keys_are_ignored():
    fresh = TrainState(settings={"model": {"num_layers": 4}})
    old = {k: v for k, v in OLD_STATE.items() if k not in ("oom_splits", "settings")}
    state = TrainState.from_dict({**old, "some_future_key": 1}, fresh)
    assert state.oom_splits == 0 and state.settings == {"model": {"num_layers": 4}} and state.step == 10
    assert not hasattr(state, "some_future_key")
    assert TrainState().best_wer == math.inf and fresh.step == 0  # defaults untouched


def test_end_epoch_counts_it_and_zeroes_the_sums():
    state = TrainState.from_dict(OLD_STATE)
    assert state.epoch_mean_loss == 12.5 / 40 and state.audio_s_per_s == 3.5 / 0.75
    state.end_epoch()
    assert (state.epoch, state.batches_done, state.epoch_loss, state.epoch_tokens) == (4, 0, 0.0, 0)
    assert (state.epoch_audio_s, state.epoch_train_s, state.step, state.best_wer) == (0.0, 0.0, 10, 0.25)
    assert TrainState().epoch_mean_loss == 0.0 and TrainState().audio_s_per_s == 0.0
