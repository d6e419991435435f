"""Latency-controlled bidirectional layers: exact under padding, bounded look-ahead, and equal to streaming blocks."""

from unittest import mock

import pytest
import torch

from asr.config.schema import ConfigError, Settings
from asr.frontend.features import FeatureConfig
from asr.models import chunked
from asr.models.acoustic import AcousticModel, build_recognizer
from asr.models.chunked import look_ahead_inputs


def _model(rnn_type="lstm", chunk=4, right=2, **kw) -> AcousticModel:
    torch.manual_seed(0)
    return AcousticModel(6, 5, hidden_size=8, num_layers=3, rnn_type=rnn_type, dropout=0.0, chunk_frames=chunk,
                         right_context_frames=right, **kw).eval()


def test_look_ahead_inputs_are_the_frames_after_each_chunk_and_zeros_past_the_end():
    x = torch.arange(1, 8, dtype=torch.float)[None, :, None]  # (1, 7, 1): frames 1..7
    rc = look_ahead_inputs(x, chunk=3, right=2)  # chunks [1 2 3] [4 5 6] [7]
    assert rc[0, :, :, 0].tolist() == [[4, 5], [7, 0], [0, 0]]


@pytest.mark.parametrize("rnn_type,right", [("lstm", 2), ("gru", 3), ("lstm", 0)])
def test_batched_output_equals_each_utterance_alone(rnn_type, right):
    m = _model(rnn_type, right=right)
    x, lengths = torch.randn(3, 23, 6), torch.tensor([23, 17, 5])
    with torch.no_grad():
        batched = m(x, lengths)
        for b in range(3):
            alone = m(x[b:b + 1, :lengths[b]], lengths[b:b + 1])
            torch.testing.assert_close(batched[b, :lengths[b]], alone[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("right", [3, 0])
def test_a_grus_one_pass_forward_equals_carrying_its_state_chunk_by_chunk(right):
    m = _model("gru", chunk=4, right=right).train()  # gradients too: training takes this path
    x, lengths = torch.randn(3, 23, 6, requires_grad=True), torch.tensor([23, 17, 5])
    one_pass = m(x, lengths)
    (g_one,) = torch.autograd.grad(one_pass.exp().sum(), x)
    with mock.patch.object(chunked, "state_is_output", lambda rnn: False):
        looped = m(x, lengths)
        (g_loop,) = torch.autograd.grad(looped.exp().sum(), x)
    torch.testing.assert_close(one_pass, looped, atol=1e-6, rtol=0)
    torch.testing.assert_close(g_one, g_loop, atol=1e-5, rtol=0)


def test_a_chunk_sees_only_its_look_ahead_of_the_future():
    m = _model(chunk=4, right=2)
    x = torch.randn(1, 20, 6)
    later = x.clone()
    later[:, 10:] += 5.0  # change every frame from 10 on
    with torch.no_grad():
        a, b = m(x, torch.tensor([20])), m(later, torch.tensor([20]))
    # chunk 1 (frames 4-7) reads up to frame 9: unchanged; chunk 2 (8-11) reads frames 10-13: changed
    assert torch.equal(a[:, :8], b[:, :8])
    assert (a[:, 8:12] - b[:, 8:12]).abs().max() > 1e-3


def test_one_chunk_longer_than_the_utterance_is_the_full_bidirectional_model():
    lc, full = _model(chunk=50, right=0), _model(chunk=0, right=0)
    full.load_state_dict(lc.state_dict())  # the same weights: chunking changes the computation, not the layout
    x, lengths = torch.randn(2, 30, 6), torch.tensor([30, 21])
    with torch.no_grad():
        torch.testing.assert_close(lc(x, lengths), full(x, lengths), atol=1e-5, rtol=0)


@pytest.mark.parametrize("rnn_type,proj", [("lstm", 0), ("gru", 0), ("lstm", 5)])
def test_streaming_blocks_give_the_offline_log_posteriors(rnn_type, proj):
    m = _model(rnn_type, chunk=4, right=3, proj_size=proj)
    x = torch.randn(1, 26, 6)
    with torch.no_grad():
        offline = m(x, torch.tensor([26]))
        states, outs = [None] * 3, []
        for start in range(0, 26, 4):
            block = x[:, start:start + 7]
            out, states = m.step(block, torch.tensor([block.shape[1]]), states)
            outs.append(out)
    torch.testing.assert_close(torch.cat(outs, dim=1), offline, atol=1e-5, rtol=0)


def test_a_unidirectional_model_steps_with_any_block_size_and_a_full_bidirectional_one_refuses():
    uni = AcousticModel(6, 5, hidden_size=8, num_layers=2, bidirectional=False, dropout=0.0).eval()
    x = torch.randn(1, 11, 6)
    with torch.no_grad():
        offline = uni(x, torch.tensor([11]))
        states, outs = [None, None], []
        for a, b in [(0, 1), (1, 5), (5, 11)]:
            out, states = uni.step(x[:, a:b], torch.tensor([b - a]), states)
            outs.append(out)
        torch.testing.assert_close(torch.cat(outs, dim=1), offline, atol=1e-5, rtol=0)
        with pytest.raises(ValueError, match="cannot stream"):
            _model(chunk=0, right=0).step(x, torch.tensor([11]), [None] * 3)


def test_seconds_become_frames_and_the_settings_are_checked():
    m = build_recognizer(FeatureConfig(), 5, hidden_size=8, num_layers=1, chunk_s=0.4, right_context_s=0.2)
    assert (m.acoustic.chunk_frames, m.acoustic.right_context_frames) == (13, 7)  # 30 ms frames
    for bad, needle in [({"bidirectional": False, "chunk_s": 0.4}, "needs model.bidirectional=true"),
                        ({"right_context_s": 0.2}, "needs model.chunk_s > 0"),
                        ({"chunk_s": 0.01}, "at least one model frame"),
                        ({"chunk_s": -1.0}, "model.chunk_s must be in")]:
        with pytest.raises(ConfigError, match=needle):
            Settings.from_dict({"model": bad}, groups=("model", "features"))


def test_model_files_keep_the_chunking_and_refuse_impossible_values(tmp_path):
    from asr.config.schema import ModelConfig
    from asr.models.checkpoint import ModelFileError, load_model, model_bundle, safe_load, save_model

    cfg = ModelConfig(hidden_size=8, num_layers=2, dropout=0.0, chunk_s=0.3, right_context_s=0.09)
    model = build_recognizer(FeatureConfig(), 5, **vars(cfg)).eval()
    bundle = model_bundle(model, ["<blank>", " ", "a", "b", "c"], cfg)
    save_model(tmp_path / "lc.pt", bundle)
    loaded, _, _ = load_model(tmp_path / "lc.pt")  # torch.load(weights_only=True) inside
    assert (loaded.acoustic.chunk_frames, loaded.acoustic.right_context_frames) == (10, 3)
    assert safe_load(tmp_path / "lc.pt")["model"]["chunk_s"] == 0.3
    for bad in ({"chunk_s": -0.5}, {"bidirectional": False}):
        save_model(tmp_path / "bad.pt", {**bundle, "model": {**bundle["model"], **bad}})
        with pytest.raises(ModelFileError, match="invalid settings inside the model file.*model.chunk_s"):
            load_model(tmp_path / "bad.pt")
