"""asr-inspect and asr-plot: what the figures show is checked as numbers, and the PNGs are real images."""

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import SR, TONE_TEXTS, tone_audio, train_tone_model

from asr.analysis.gates import layer_input
from asr.analysis.inspection import figure_names, inspect_utterance, write_inspection
from asr.analysis.plots import training_figures
from asr.analysis.runs import read_train_log
from asr.config.schema import ConfigError, ModelConfig
from asr.data.audio import load_audio
from asr.frontend.features import FeatureConfig
from asr.models.acoustic import build_recognizer
from asr.models.checkpoint import load_model, model_bundle, save_model


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG header (and a check that it is one)."""
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def run_cli(entry: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    code = f"import sys; from asr.cli.apps import {entry}; sys.argv[0] = 'asr'; {entry}()"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def tone_model(tmp_path_factory):
    """A 2 x 48 BiLSTM overfit on the 8 tone utterances (dev WER 0)."""
    model_file, manifest = train_tone_model(tmp_path_factory.mktemp("tone"))
    torch.set_num_threads(1)
    model, tokenizer, _ = load_model(model_file)
    return model, tokenizer, manifest.parent / "audio" / f"train_{TONE_TEXTS.index('ab ba'):03d}.flac"


def test_inspection_of_a_trained_model_holds_its_transcript_words_and_gates(tone_model):
    model, tokenizer, audio = tone_model
    wave = torch.from_numpy(load_audio(audio, SR))
    insp = inspect_utterance(model, tokenizer, wave, layer=-1, direction="backward")
    duration = len(wave) / SR
    assert insp.text == "ab ba"
    assert [w.text for w in insp.words] == ["ab", "ba"]
    assert 0 <= insp.words[0].start_s < insp.words[0].end_s <= insp.words[1].start_s < insp.words[1].end_s
    assert insp.words[1].end_s <= duration + insp.frame_shift_s
    assert (insp.layer, insp.num_layers, insp.rnn_type, insp.frame_shift_s) == (1, 2, "lstm", 0.03)
    # 10 ms MFCC frames: 1 + (S - 400) // 160, normalised with the model's own statistics
    assert insp.mfcc.shape == (1 + (len(wave) - 400) // 160, 40)
    raw, _ = model.features.mfcc(wave[None], torch.tensor([len(wave)]))
    np.testing.assert_allclose(insp.mfcc, ((raw[0] - model.features.mean) / model.features.std).numpy(), atol=1e-5)
    T = len(insp.path)
    assert T == -(-insp.mfcc.shape[0] // 3) and insp.posteriors.shape == (T, len(tokenizer))
    np.testing.assert_allclose(insp.posteriors.sum(1), 1.0, atol=1e-5)
    assert (insp.path == insp.posteriors.argmax(1)).all()
    for key in ("input_gate", "forget_gate", "output_gate"):
        assert insp.trace[key].shape == (T, 48) and 0 <= insp.trace[key].min() and insp.trace[key].max() <= 1
    assert insp.recompute_error < 1e-5


def test_written_figures_are_images_and_the_summary_names_the_most_varying_units(tone_model, tmp_path):
    model, tokenizer, audio = tone_model
    wave = torch.from_numpy(load_audio(audio, SR))
    insp = inspect_utterance(model, tokenizer, wave, layer=0, direction="forward")
    summary = write_inspection(insp, tmp_path / "figs", top_k=5, name=audio.name)
    names = figure_names(0, "forward")
    assert names["gates"] == "gates_layer0_forward.png"
    for name in names.values():
        path = tmp_path / "figs" / name
        assert path.stat().st_size > 10_000, name  # a drawn figure, not an empty canvas
        width, height = png_size(path)
        assert width == 1100 and height >= 300, (name, width, height)  # 11 inches at 100 dpi
    assert json.loads((tmp_path / "figs" / "inspect.json").read_text()) == summary
    # the units shown are the 5 whose hidden output (as nn.LSTM computes it) varies most over time
    feats, lens = model.features(wave[None], torch.tensor([len(wave)]))
    with torch.no_grad():
        h = model.acoustic.layers[0](layer_input(model.acoustic, feats, lens, 0), lens)[0, :, :48]
    spread = h.std(dim=0, unbiased=False)
    assert [u["unit"] for u in summary["units"]] == spread.argsort(descending=True)[:5].tolist()
    assert [u["hidden_std"] for u in summary["units"]] == pytest.approx(spread.sort(descending=True)[0][:5].tolist(),
                                                                         abs=1e-5)
    assert all(0 <= u["mean"][k] <= 1 for u in summary["units"] for k in ("input_gate", "forget_gate", "output_gate"))
    assert summary["text"] == "ab ba" and [w["word"] for w in summary["words"]] == ["ab", "ba"]
    with pytest.raises(ConfigError, match="top_k"):
        write_inspection(insp, tmp_path / "none", top_k=0)


def test_bad_layer_and_direction_name_the_setting(tone_model):
    model, tokenizer, audio = tone_model
    wave = torch.zeros(8000)
    with pytest.raises(ConfigError, match=r"layer=2: the model has 2 recurrent layers"):
        inspect_utterance(model, tokenizer, wave, layer=2)
    with pytest.raises(ConfigError, match="direction='up'"):
        inspect_utterance(model, tokenizer, wave, direction="up")


def test_asr_inspect_command_on_a_gru_model_file(tmp_path):
    torch.manual_seed(0)
    vocab = ["<blank>", " ", "a", "b", "c"]
    cfg = ModelConfig(rnn_type="gru", hidden_size=16, num_layers=2, dropout=0.0)
    model = build_recognizer(FeatureConfig(), len(vocab), **vars(cfg))
    save_model(tmp_path / "gru.pt", model_bundle(model, vocab, cfg))
    sf.write(tmp_path / "utt.wav", tone_audio("ab c", np.random.default_rng(0)), SR)
    r = run_cli("inspect_main", f"model={tmp_path / 'gru.pt'}", f"audio={tmp_path / 'utt.wav'}", "output=out",
                "layer=0", "direction=backward", "top_k=4", "threads=1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == sorted([*figure_names(0, "backward").values(), "inspect.json"])
    summary = json.loads((out / "inspect.json").read_text())
    assert summary["rnn_type"] == "gru" and len(summary["units"]) == 4
    assert set(summary["units"][0]["mean"]) == {"reset_gate", "update_gate", "candidate", "hidden"}
    assert summary["recompute_max_abs_error"] < 1e-5
    assert "gates_layer0_backward.png" in r.stdout
    assert list(tmp_path.glob("*.log")) == [] and not (tmp_path / ".hydra").exists()  # nothing beside output=

    r = run_cli("inspect_main", f"model={tmp_path / 'gru.pt'}", f"audio={tmp_path / 'utt.wav'}", "output=o2",
                "layer=-3", cwd=tmp_path)
    assert r.returncode == 2 and "layer=-3" in r.stderr and "Traceback" not in r.stderr


# ---- training curves ---------------------------------------------------------------------------

def write_log(path: Path, rows: list[dict]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


LOG = [{"epoch": e, "step": 10 * e, "lr": 1e-3 * e / 5, "train_loss": 4.0 / e, "dev_wer": w, "dev_cer": w / 2,
        "train_audio_s_per_s": 30.0, "epoch_seconds": 60.0} for e, w in zip(range(1, 6), [1.0, 0.6, 0.3, 0.35, 0.32])]


def test_training_figures_plot_the_logged_numbers():
    figs = training_figures(LOG)
    assert set(figs) == {"train_loss", "dev_wer", "learning_rate"}
    loss = figs["train_loss"].axes[0].lines[0]
    assert list(loss.get_xdata()) == [1, 2, 3, 4, 5] and list(loss.get_ydata()) == [4.0, 2.0, 4 / 3, 1.0, 0.8]
    wer_ax = figs["dev_wer"].axes[0]
    assert list(wer_ax.lines[0].get_ydata()) == pytest.approx([100, 60, 30, 35, 32])
    best = wer_ax.collections[0].get_offsets()[0]  # the best epoch is circled
    assert tuple(best) == pytest.approx((3, 30))
    assert "best WER 30.00 % (epoch 3)" in [t.get_text() for t in wer_ax.get_legend().get_texts()]
    assert list(figs["learning_rate"].axes[0].lines[0].get_ydata()) == pytest.approx([2e-4, 4e-4, 6e-4, 8e-4, 1e-3])
    no_dev = training_figures([{k: v for k, v in r.items() if not k.startswith("dev")} for r in LOG])
    assert set(no_dev) == {"train_loss", "learning_rate"}


def test_read_train_log_names_a_bad_line(tmp_path):
    run = write_log(tmp_path / "run", LOG[:2])
    with open(run / "train_log.jsonl", "a") as f:
        f.write('{"epoch": 3, "lr": 0.1\n')
    with pytest.raises(ValueError, match=r"train_log.jsonl:3: not valid JSON"):
        read_train_log(run / "train_log.jsonl")
    with pytest.raises(FileNotFoundError, match="no training log"):
        read_train_log(tmp_path / "nothing" / "train_log.jsonl")


def test_asr_plot_command_writes_the_curves(tmp_path):
    run = write_log(tmp_path / "run", LOG)
    r = run_cli("plot_main", f"run={run}", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    written = sorted(p.name for p in (run / "plots").iterdir())
    assert written == ["dev_wer.png", "learning_rate.png", "train_loss.png"]
    assert all(png_size(run / "plots" / n)[0] == 700 for n in written)  # 7 inches at 100 dpi
    (run / "train_log.jsonl").write_text("not json\n")
    r = run_cli("plot_main", f"run={run}", "output=elsewhere", cwd=tmp_path)
    assert r.returncode == 2 and "train_log.jsonl:1" in r.stderr and "Traceback" not in r.stderr


def test_a_latency_controlled_model_is_refused_with_the_reason():
    model = build_recognizer(FeatureConfig(), 5, hidden_size=8, num_layers=1, chunk_s=0.3).eval()
    with pytest.raises(RuntimeError, match="latency-controlled model"):
        inspect_utterance(model, None, torch.zeros(16000))
