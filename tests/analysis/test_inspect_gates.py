"""Explicit LSTM/GRU cells reproduce torch's modules; gates behave as gates; top-k picks the right units."""

import pytest
import torch
from torch import nn

from asr.analysis.gates import GRU_KEYS, LSTM_KEYS, layer_input, rnn_trace, top_units, trace_layer
from asr.models.acoustic import AcousticModel, reverse_padded


@pytest.mark.parametrize("rnn_type", ["lstm", "gru"])
@pytest.mark.parametrize("seed,input_size,hidden_size", [(0, 7, 5), (1, 1, 1), (2, 30, 16)])
def test_explicit_cell_equals_torch_module_on_random_weights(rnn_type, seed, input_size, hidden_size):
    torch.manual_seed(seed)
    rnn = (nn.LSTM if rnn_type == "lstm" else nn.GRU)(input_size, hidden_size, batch_first=True)
    with torch.no_grad():  # larger than init weights, so gates reach saturation and the cell grows
        for p in rnn.parameters():
            p.mul_(3.0)
    x = 2 * torch.randn(3, 25, input_size)
    expected, _ = rnn(x)
    trace = rnn_trace(rnn, x)
    assert set(trace) == set(LSTM_KEYS if rnn_type == "lstm" else GRU_KEYS)
    assert all(v.shape == (3, 25, hidden_size) for v in trace.values())
    torch.testing.assert_close(trace["hidden"], expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("rnn_type,bidirectional", [("lstm", True), ("gru", True), ("lstm", False)])
def test_explicit_cells_reproduce_a_whole_layer_stack(rnn_type, bidirectional):
    """Layer by layer, on a padded batch, feeding the *recomputed* output upwards, up to the log-posteriors."""
    torch.manual_seed(3)
    model = AcousticModel(12, 6, hidden_size=10, num_layers=3, rnn_type=rnn_type, bidirectional=bidirectional,
                          dropout=0.3).eval()
    feats, lengths = torch.randn(3, 17, 12), torch.tensor([17, 9, 4])
    valid = (torch.arange(17)[None, :] < lengths[:, None])[..., None]  # (B, T, 1)
    x = feats
    for i, layer in enumerate(model.layers):
        with torch.no_grad():
            expected = layer(x, lengths)
        directions = ["forward", "backward"] if bidirectional else ["forward"]
        recomputed = torch.cat([trace_layer(layer, x, lengths, d)["hidden"] for d in directions], dim=-1)
        torch.testing.assert_close(recomputed * valid, expected * valid, atol=1e-5, rtol=0, msg=f"layer {i}")
        torch.testing.assert_close(layer_input(model, feats, lengths, i + 1) * valid, expected * valid,
                                   atol=1e-5, rtol=0)
        x = recomputed
    with torch.no_grad():
        torch.testing.assert_close(torch.log_softmax(model.output(x), -1) * valid, model(feats, lengths) * valid,
                                   atol=1e-5, rtol=0)


def test_lstm_gates_are_probabilities_and_the_cell_follows_its_equation():
    torch.manual_seed(4)
    rnn = nn.LSTM(6, 8, batch_first=True)
    t = rnn_trace(rnn, 3 * torch.randn(2, 30, 6))
    for key in ("input_gate", "forget_gate", "output_gate"):
        assert 0.0 <= t[key].min() and t[key].max() <= 1.0, key
    assert t["candidate"].abs().max() <= 1.0
    # c_t = f_t c_{t-1} + i_t g_t, h_t = o_t tanh(c_t), from zero state
    prev = torch.cat([torch.zeros(2, 1, 8), t["cell"][:, :-1]], dim=1)
    torch.testing.assert_close(t["cell"], t["forget_gate"] * prev + t["input_gate"] * t["candidate"])
    torch.testing.assert_close(t["hidden"], t["output_gate"] * torch.tanh(t["cell"]))


def test_gru_gates_are_probabilities_and_the_state_interpolates():
    torch.manual_seed(5)
    t = rnn_trace(nn.GRU(6, 8, batch_first=True), 3 * torch.randn(2, 30, 6))
    for key in ("reset_gate", "update_gate"):
        assert 0.0 <= t[key].min() and t[key].max() <= 1.0, key
    prev = torch.cat([torch.zeros(2, 1, 8), t["hidden"][:, :-1]], dim=1)
    z = t["update_gate"]
    torch.testing.assert_close(t["hidden"], (1 - z) * t["candidate"] + z * prev)


def test_backward_trace_is_in_utterance_time():
    """Backward frame t has read frames t..end: its last valid frame saw only that one frame."""
    torch.manual_seed(6)
    model = AcousticModel(4, 3, hidden_size=5, num_layers=1).eval()
    layer = model.layers[0]
    x, lengths = torch.randn(2, 8, 4), torch.tensor([8, 5])
    back = trace_layer(layer, x, lengths, "backward")["hidden"]
    for b, n in enumerate(lengths.tolist()):
        alone, _ = layer.backward_rnn(x[b:b + 1, n - 1:n])  # the last frame as a sequence of one
        torch.testing.assert_close(back[b, n - 1], alone[0, 0], atol=1e-6, rtol=0)
        full, _ = layer.backward_rnn(x[b:b + 1, :n].flip(1))
        torch.testing.assert_close(back[b, :n], full[0].flip(0), atol=1e-5, rtol=0)
    torch.testing.assert_close(reverse_padded(reverse_padded(back, lengths), lengths), back)


def test_unsupported_modules_and_directions_are_refused():
    with pytest.raises(ValueError, match="single-layer"):
        rnn_trace(nn.LSTM(3, 4, num_layers=2, batch_first=True), torch.zeros(1, 2, 3))
    unidirectional = AcousticModel(4, 3, hidden_size=5, num_layers=1, bidirectional=False).layers[0]
    with pytest.raises(ValueError, match="not bidirectional"):
        trace_layer(unidirectional, torch.zeros(1, 2, 4), torch.tensor([2]), "backward")
    with pytest.raises(ValueError, match="direction"):
        trace_layer(unidirectional, torch.zeros(1, 2, 4), torch.tensor([2]), "sideways")


def test_top_units_rank_by_variation_over_valid_frames():
    t = torch.arange(6.0)[:, None]  # (T=6, 1)
    values = torch.cat([torch.full((6, 1), 9.0),  # unit 0: large but constant
                        0.1 * t,  # unit 1: small ramp
                        torch.tensor([[1.], [-1.], [1.], [-1.], [50.], [50.]]),  # unit 2: swings, then padding
                        t], dim=1)  # unit 3: ramp
    assert top_units(values, 2).tolist() == [2, 3]
    assert top_units(values, 4, length=4).tolist() == [3, 2, 1, 0]  # without the padding, unit 2 swings by ±1
    assert top_units(values, 10).shape == (4,)
