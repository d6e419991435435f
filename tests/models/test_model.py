import pytest
import torch

from asr.frontend.features import FeatureConfig
from asr.models.acoustic import AcousticModel, build_recognizer, check_projection, num_parameters, reverse_padded


def test_reverse_padded_keeps_padding_in_place():
    x = torch.tensor([[1, 2, 3, 4], [5, 6, 0, 0]]).float()[..., None]
    out = reverse_padded(x, torch.tensor([4, 2]))[..., 0]
    assert out.tolist() == [[4, 3, 2, 1], [6, 5, 0, 0]]
    assert torch.equal(reverse_padded(reverse_padded(x, torch.tensor([4, 2])), torch.tensor([4, 2])), x)


@pytest.mark.parametrize("rnn_type,bidirectional", [("lstm", True), ("gru", True), ("lstm", False)])
def test_batched_output_equals_per_item_output(rnn_type, bidirectional):
    torch.manual_seed(0)
    model = build_recognizer(FeatureConfig(), 10, hidden_size=32, num_layers=3, rnn_type=rnn_type,
                             bidirectional=bidirectional).eval()
    lens = torch.tensor([16000, 9000, 4000, 12345])
    waves = torch.randn(4, 16000) * 0.1
    with torch.no_grad():
        log_probs, out_lens = model(waves, lens)
        for i in range(4):
            one, one_len = model(waves[i:i + 1, : lens[i]], lens[i:i + 1])
            assert one_len.item() == out_lens[i].item()
            torch.testing.assert_close(one[0], log_probs[i, : out_lens[i]], rtol=0, atol=1e-5)


def test_bidirectional_layer_matches_torch_packed_bilstm():
    """Our exact-padding layer computes what nn.LSTM(bidirectional) computes on packed input."""
    torch.manual_seed(0)
    am = AcousticModel(12, 5, hidden_size=16, num_layers=1, dropout=0.0)
    ref = torch.nn.LSTM(12, 16, batch_first=True, bidirectional=True)
    layer = am.layers[0]
    with torch.no_grad():
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(ref, name).copy_(getattr(layer.forward_rnn, name))
            getattr(ref, name + "_reverse").copy_(getattr(layer.backward_rnn, name))
    x = torch.randn(3, 9, 12)
    lens = torch.tensor([9, 5, 2])
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lens, batch_first=True, enforce_sorted=False)
    want, _ = torch.nn.utils.rnn.pad_packed_sequence(ref(packed)[0], batch_first=True)
    got = layer(x, lens)
    for i, n in enumerate(lens.tolist()):
        torch.testing.assert_close(got[i, :n], want[i, :n], rtol=0, atol=1e-6)


def test_output_is_log_softmax_over_vocab_and_parameter_count():
    am = AcousticModel(120, 29, hidden_size=320, num_layers=4)
    # the reference EESEN-sized model: about 8.5 M parameters
    assert 8.4e6 < num_parameters(am) < 8.6e6
    out = am.eval()(torch.randn(2, 7, 120), torch.tensor([7, 4]))
    assert out.shape == (2, 7, 29)
    torch.testing.assert_close(out.exp().sum(-1), torch.ones(2, 7))


def test_gru_is_smaller_than_lstm():
    lstm = num_parameters(AcousticModel(120, 29, rnn_type="lstm"))
    gru = num_parameters(AcousticModel(120, 29, rnn_type="gru"))
    assert 0.7 < gru / lstm < 0.8  # 3 gate blocks instead of 4


def test_invalid_model_settings_are_refused():
    with pytest.raises(ValueError, match="rnn_type"):
        AcousticModel(10, 5, rnn_type="transformer")
    with pytest.raises(ValueError, match="hidden_size=-1"):
        AcousticModel(10, 5, hidden_size=-1)


def test_projection_layer_sizes_exactness_and_parameter_count():
    torch.manual_seed(0)
    model = build_recognizer(FeatureConfig(), 10, hidden_size=32, num_layers=2, proj_size=12).eval()
    layer0, layer1 = model.acoustic.layers
    assert layer0.forward_rnn.proj_size == 12 and layer1.forward_rnn.input_size == 2 * 12
    assert model.acoustic.output.in_features == 2 * 12
    # LSTMP weights per direction: 4H(I + P) + 8H (biases) + P·H (projection)
    H, P, I0 = 32, 12, 120
    per_dir = lambda i: 4 * H * (i + P) + 8 * H + P * H  # noqa: E731
    assert num_parameters(model.acoustic) == 2 * (per_dir(I0) + per_dir(2 * P)) + (2 * P + 1) * 10
    lens = torch.tensor([16000, 7000])
    waves = torch.randn(2, 16000) * 0.1
    with torch.no_grad():
        log_probs, out_lens = model(waves, lens)
        one, _ = model(waves[1:, :7000], lens[1:])
    torch.testing.assert_close(one[0], log_probs[1, : out_lens[1]], rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="model.proj_size must be >= 0 and needs model.rnn_type=lstm, got 12 with gru"):
        AcousticModel(10, 5, hidden_size=32, rnn_type="gru", proj_size=12)
    with pytest.raises(ValueError, match=r"model.proj_size \(32\) must be smaller than model.hidden_size \(32\)"):
        AcousticModel(10, 5, hidden_size=32, proj_size=32)
    with pytest.raises(ValueError, match="must be >= 0"):
        check_projection("lstm", 32, -1)
    check_projection("gru", 32, 0)  # no projection: any cell
    check_projection("lstm", 32, 31)


def test_model_file_keeps_cmn_and_files_from_before_it_load_without_it(tmp_path):
    from asr.config.schema import ModelConfig
    from asr.models.checkpoint import load_model, model_bundle, save_model

    torch.manual_seed(0)
    vocab = ["<blank>", " ", "a", "b"]
    cfg = ModelConfig(hidden_size=8, num_layers=1, dropout=0.0)
    model = build_recognizer(FeatureConfig(cmn="utterance"), len(vocab), **vars(cfg))
    bundle = model_bundle(model, vocab, cfg)
    save_model(tmp_path / "cmn.pt", bundle)
    loaded, _, _ = load_model(tmp_path / "cmn.pt")
    assert loaded.features.config.cmn == "utterance"
    wave = torch.randn(1, 8000)
    quiet_out, _ = loaded(wave * 0.1, torch.tensor([8000]))
    loud_out, _ = loaded(wave, torch.tensor([8000]))
    torch.testing.assert_close(quiet_out, loud_out, rtol=0, atol=1e-3)  # the whole model ignores the gain

    del bundle["features"]["cmn"]  # as written before the option existed
    save_model(tmp_path / "old.pt", bundle)
    assert load_model(tmp_path / "old.pt")[0].features.config.cmn == "none"


def test_edge_pad_hears_quiet_ends_and_keeps_their_frames_with_the_time_offset():
    from asr.models.acoustic import add_edge_pad

    torch.manual_seed(0)
    padded = build_recognizer(FeatureConfig(), 6, hidden_size=16, num_layers=2, rnn_type="gru", edge_pad_s=0.3)
    plain = build_recognizer(FeatureConfig(), 6, hidden_size=16, num_layers=2, rnn_type="gru")
    plain.load_state_dict(padded.state_dict())
    padded.eval(), plain.eval()
    assert padded.edge_pad_frames == 10 and padded.time_offset_s == pytest.approx(-0.3)
    waves = [torch.randn(n) * 0.1 for n in (16000, 9001, 23999)]
    batch = torch.zeros(3, 25000)  # wider than the longest: batch padding must not end up inside an utterance
    for i, w in enumerate(waves):
        batch[i, :len(w)] = w
    lens = torch.tensor([len(w) for w in waves])
    with torch.no_grad():
        out, out_lens = padded(batch, lens)
        assert torch.equal(out_lens, plain.features.output_lengths(lens + 2 * 4800))  # 0.3 s more at each end
        for i, w in enumerate(waves):
            by_hand = torch.cat([padded.edge_noise, w, padded.edge_noise])[None]  # (1, S + 2P)
            ref, ref_lens = plain(by_hand, torch.tensor([by_hand.shape[1]]))
            n = int(out_lens[i])
            assert n == int(ref_lens[0]) and torch.allclose(out[i, :n], ref[0, :n], atol=1e-5)
        padded.train()  # training hears the data as it is
        torch.manual_seed(1)
        a, _ = padded(batch, lens)
        plain.train()
        torch.manual_seed(1)
        b, _ = plain(batch, lens)
        assert torch.equal(a, b)
    noise = padded.edge_noise
    assert 0.0009 < float(noise.std()) < 0.0011  # 60 dB below full scale
    one, _ = add_edge_pad(torch.ones(1, 3), torch.tensor([2]), torch.full((2,), 7.0))
    assert one.tolist() == [[7.0, 7.0, 1.0, 1.0, 7.0, 7.0, 0.0]]


def test_edge_pad_is_kept_in_the_model_file_and_old_files_load_without_it(tmp_path):
    from asr.config.schema import ConfigError, ModelConfig, Settings
    from asr.models.checkpoint import load_model, model_bundle, save_model

    cfg = ModelConfig(hidden_size=8, num_layers=1, edge_pad_s=0.2)
    model = build_recognizer(FeatureConfig(), 4, **vars(cfg))
    bundle = model_bundle(model, ["<blank>", "a", "b", " "], cfg)
    save_model(tmp_path / "m.pt", bundle)
    assert load_model(tmp_path / "m.pt")[0].edge_pad_frames == 7  # 0.2 s in 30 ms frames
    del bundle["model"]["edge_pad_s"]  # a model file written before the setting existed
    save_model(tmp_path / "old.pt", bundle)
    assert load_model(tmp_path / "old.pt")[0].edge_pad_frames == 0
    with pytest.raises(ConfigError, match="model.edge_pad_s"):
        Settings.from_dict({"model": {"edge_pad_s": 9}})


def test_forget_bias_sets_every_forget_gate_and_only_it(tmp_path):
    from asr.config.schema import ModelConfig
    from asr.models.checkpoint import load_model, model_bundle, save_model

    torch.manual_seed(0)
    default = AcousticModel(10, 5, hidden_size=6, num_layers=2, bidirectional=True)
    torch.manual_seed(0)
    model = AcousticModel(10, 5, hidden_size=6, num_layers=2, bidirectional=True, forget_bias=1.0)
    for layer, base in zip(model.layers, default.layers):
        for rnn, ref in ((layer.forward_rnn, base.forward_rnn), (layer.backward_rnn, base.backward_rnn)):
            assert rnn.bias_ih_l0[6:12].tolist() == [1.0] * 6 and rnn.bias_hh_l0[6:12].tolist() == [0.0] * 6
            for name in ("bias_ih_l0", "bias_hh_l0"):  # input, cell and output gates keep PyTorch's init
                keep = torch.cat([getattr(ref, name)[:6], getattr(ref, name)[12:]])
                assert torch.equal(torch.cat([getattr(rnn, name)[:6], getattr(rnn, name)[12:]]), keep)
            assert torch.equal(rnn.weight_ih_l0, ref.weight_ih_l0)
    with pytest.raises(ValueError, match="forget_bias"):
        AcousticModel(10, 5, hidden_size=6, rnn_type="gru", forget_bias=1.0)
    cfg = ModelConfig(hidden_size=8, num_layers=1, bidirectional=False, forget_bias=1.0)  # a model file keeps it
    save_model(tmp_path / "m.pt", model_bundle(build_recognizer(FeatureConfig(), 4, **vars(cfg)),
                                               ["<blank>", "a", "b", " "], cfg))
    assert load_model(tmp_path / "m.pt")[2]["model"]["forget_bias"] == 1.0
