"""asr export and runtime=onnx: the exported graph reproduces the torch recognizer, padding included."""

from __future__ import annotations

import json

import onnx
import pytest
import torch

from asr.cli.export import export_main
from asr.config.schema import ModelConfig
from asr.data.manifest import read_manifest
from asr.fileio import WouldReplace
from asr.frontend.features import FeatureConfig
from asr.inference.backends import load_recognizer, model_fingerprint
from asr.inference.evaluate import recognize, score
from asr.inference.export import ExportError, card_path, export_onnx
from asr.inference.onnx_runtime import OnnxRecognizer
from asr.models.acoustic import build_recognizer
from asr.models.checkpoint import ModelFileError, model_bundle, save_model
from tests.conftest import train_tone_model

VOCAB = ["<blank>", " ", "a", "b", "c"]


def random_model_file(path, rnn_type="lstm", features=FeatureConfig(), seed=0, edge_pad_s=0.0, **model):
    """An untrained 2 x 24 recognizer with non-trivial normalisation statistics, saved as a model file."""
    torch.manual_seed(seed)
    cfg = ModelConfig(rnn_type=rnn_type, hidden_size=24, num_layers=2, dropout=0.0, edge_pad_s=edge_pad_s, **model)
    model = build_recognizer(features, len(VOCAB), **vars(cfg))
    model.features.set_stats(torch.randn(features.frame_dim) * 5, torch.rand(features.frame_dim) * 10 + 1)
    save_model(path, model_bundle(model.eval(), VOCAB, cfg))
    return model.eval()


def padded_batch(lengths, seed=1):
    gen = torch.Generator().manual_seed(seed)
    wave = torch.zeros(len(lengths), max(lengths))
    for i, n in enumerate(lengths):
        wave[i, :n] = 0.2 * torch.randn(n, generator=gen)
    return wave, torch.tensor(lengths)


@pytest.mark.parametrize("rnn_type, features, edge_pad_s, layers", [
    ("lstm", FeatureConfig(), 0.0, {}),
    ("gru", FeatureConfig(deltas=1, cmn="utterance", stack=4, subsample=2), 0.0, {}),
    ("gru", FeatureConfig(), 0.3, {}),  # quiet ends added inside the graph too
    ("gru", FeatureConfig(), 0.3, {"chunk_s": 0.15, "right_context_s": 0.09}),  # latency-controlled: chunk count
    ("gru", FeatureConfig(), 0.0, {"chunk_s": 0.3, "right_context_s": 0.0}),  # follows the length; no look-ahead
    ("lstm", FeatureConfig(), 0.0, {"bidirectional": False}),
])
def test_onnx_log_probs_match_torch_and_batched_equals_per_item(tmp_path, rnn_type, features, edge_pad_s, layers):
    model = random_model_file(tmp_path / "m.pt", rnn_type, features, edge_pad_s=edge_pad_s, **layers)
    export_onnx(tmp_path / "m.pt", tmp_path / "m.onnx")
    onnx_model = OnnxRecognizer(tmp_path / "m.onnx", threads=1)
    lengths = [23_456, 16_000, 4_321, 1_203]  # lengths the export was not traced with, and a batch of 4
    wave, lens = padded_batch(lengths)
    with torch.inference_mode():
        want, want_lens = model(wave, lens)
    got, got_lens = onnx_model(wave, lens)
    assert got.shape == want.shape and got_lens.tolist() == want_lens.tolist()
    for i, n in enumerate(want_lens.tolist()):
        assert (got[i, :n] - want[i, :n]).abs().max() < 1e-4  # torch vs onnxruntime
        alone, alone_lens = onnx_model(wave[i:i + 1, :lengths[i]], lens[i:i + 1])
        assert alone_lens.tolist() == [n]
        torch.testing.assert_close(alone[0], got[i, :n], rtol=0, atol=1e-5)  # batched = per-item


def test_shorter_than_one_frame_is_padded_like_torch(tmp_path):
    model = random_model_file(tmp_path / "m.pt")
    export_onnx(tmp_path / "m.pt", tmp_path / "m.onnx")
    wave, lens = padded_batch([250])  # under the 400-sample frame: torch pads it to one frame
    with torch.inference_mode():
        want, _ = model(wave, lens)
    got, got_lens = OnnxRecognizer(tmp_path / "m.onnx", threads=1)(wave, lens)
    assert got_lens.tolist() == [1] and (got - want).abs().max() < 1e-4


def test_metadata_describes_the_model_and_is_validated_when_read(tmp_path):
    random_model_file(tmp_path / "m.pt")
    export_onnx(tmp_path / "m.pt", tmp_path / "m.onnx")
    proto = onnx.load(str(tmp_path / "m.onnx"))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["vocab"]) == VOCAB and meta["min_samples"] == "400" and meta["sample_rate_hz"] == "16000"
    assert json.loads(meta["features"]) == FeatureConfig().to_dict()
    model, tokenizer = load_recognizer(tmp_path / "m.onnx", runtime="onnx", threads=1)
    assert tokenizer.vocab == VOCAB and model.features.config == FeatureConfig()

    for key, value, message in [("features", '{"n_mfcc": -3}', "features.n_mfcc"),
                                ("vocab", "[not json", "metadata vocab is not valid JSON"),
                                ("asr_format", "other", "is not supported")]:
        bad = onnx.load(str(tmp_path / "m.onnx"))
        next(p for p in bad.metadata_props if p.key == key).value = value
        onnx.save(bad, str(tmp_path / "bad.onnx"))
        with pytest.raises(ModelFileError, match=message) as err:
            OnnxRecognizer(tmp_path / "bad.onnx")
        assert "bad.onnx" in str(err.value)


def test_trained_model_onnx_and_int8_transcripts_equal_torch(tmp_path):
    model_file, manifest = train_tone_model(tmp_path)
    utts = read_manifest(manifest)
    torch_model, tokenizer = load_recognizer(model_file)
    want = [h.text for h in recognize(torch_model, tokenizer, utts)]
    for name, int8 in [("m.onnx", False), ("m.int8.onnx", True)]:
        r = export_onnx(model_file, tmp_path / name, int8=int8, test_manifest=manifest)
        assert r["test"]["wer"] == 0.0 and "WER 0.00 %" in card_path(tmp_path / name).read_text()
        onnx_model, _ = load_recognizer(tmp_path / name, runtime="onnx", threads=1)
        hyps = recognize(onnx_model, tokenizer, utts)
        assert [h.text for h in hyps] == want, name
        assert score(utts, hyps)[0]["wer"] == 0.0
    int8_model, _ = load_recognizer(model_file, runtime="torch-int8")
    assert [h.text for h in recognize(int8_model, tokenizer, utts)] == want
    # provenance tells the int8 model from the float one, and knows it again when reloaded
    assert model_fingerprint(int8_model) != model_fingerprint(torch_model)
    assert model_fingerprint(int8_model) == model_fingerprint(load_recognizer(model_file, runtime="torch-int8")[0])
    ops = {n.op_type for n in onnx.load(str(tmp_path / "m.int8.onnx")).graph.node}
    assert "DynamicQuantizeLSTM" in ops and "LSTM" not in ops  # the LSTM layers run in int8
    rnn_weights = sum(t.numel() for k, t in torch_model.state_dict().items() if "_rnn.weight" in k)
    saved = (tmp_path / "m.onnx").stat().st_size - (tmp_path / "m.int8.onnx").stat().st_size
    assert saved > 2.5 * rnn_weights  # 4 bytes -> 1 byte per recurrent weight, less scales and zero points
    assert r["int8"] and "int8" in card_path(tmp_path / "m.int8.onnx").read_text()


def test_export_refuses_to_replace_and_names_what_it_needs(tmp_path, capsys):
    random_model_file(tmp_path / "m.pt")
    assert export_main([f"model={tmp_path / 'm.pt'}", f"out={tmp_path / 'm.onnx'}"]) == 0
    card = card_path(tmp_path / "m.onnx").read_text()
    assert "2 x 24 bidirectional LSTM" in card and "offline" in card
    with pytest.raises(WouldReplace, match="m.onnx"):
        export_onnx(tmp_path / "m.pt", tmp_path / "m.onnx")
    assert export_main([str(tmp_path / "m.pt"), "--out", str(tmp_path / "m.onnx"), "--overwrite"]) == 0
    assert export_main([f"model={tmp_path / 'm.pt'}", f"out={tmp_path / 'x.bin'}"]) == 2
    assert "must end in .onnx" in capsys.readouterr().err
    with pytest.raises(ModelFileError, match="runtime=onnx runs an export"):
        load_recognizer(tmp_path / "m.pt", runtime="onnx")
    with pytest.raises(ModelFileError, match="run it with runtime=onnx"):
        load_recognizer(tmp_path / "m.onnx", runtime="torch")


def test_lstm_with_projections_is_refused_by_name(tmp_path):
    cfg = ModelConfig(rnn_type="lstm", hidden_size=24, num_layers=1, dropout=0.0, proj_size=8)
    model = build_recognizer(FeatureConfig(), len(VOCAB), hidden_size=24, num_layers=1, proj_size=8, dropout=0.0)
    save_model(tmp_path / "p.pt", model_bundle(model.eval(), VOCAB, cfg))
    with pytest.raises(ExportError, match="model.proj_size"):
        export_onnx(tmp_path / "p.pt", tmp_path / "p.onnx")
    assert not (tmp_path / "p.onnx").exists()


def test_latency_controlled_lstms_are_refused_by_name(tmp_path):
    cfg = ModelConfig(rnn_type="lstm", hidden_size=24, num_layers=1, dropout=0.0, chunk_s=0.3, right_context_s=0.09)
    model = build_recognizer(FeatureConfig(), len(VOCAB), **vars(cfg))
    save_model(tmp_path / "lc.pt", model_bundle(model.eval(), VOCAB, cfg))
    with pytest.raises(ExportError, match="latency-controlled LSTMs.*model.chunk_s.*torch runtime"):
        export_onnx(tmp_path / "lc.pt", tmp_path / "lc.onnx")
    assert not (tmp_path / "lc.onnx").exists()


@pytest.mark.parametrize("layers, latency", [
    ({"chunk_s": 0.15, "right_context_s": 0.09}, "latency-controlled: chunks of 0.15 s with 0.09 s of look-ahead, "
                                                 "algorithmic latency 225 ms"),
    ({"bidirectional": False}, "unidirectional: the past only, algorithmic latency 75 ms"),
    ({}, "offline: every output frame depends on the whole utterance"),
])
def test_the_model_card_states_the_latency_class(tmp_path, layers, latency):
    random_model_file(tmp_path / "m.pt", "gru", **layers)
    card = export_onnx(tmp_path / "m.pt", tmp_path / "m.onnx")["card"]
    line = next(line for line in open(card) if line.startswith("- **Latency class**"))
    assert latency in line, line
