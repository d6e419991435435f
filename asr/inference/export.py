"""Export a model file to ONNX: the whole recognizer, waveform in, CTC log-posteriors out.

The graph holds everything :class:`asr.models.acoustic.Recognizer` does: MFCC (framing and DFT
as one strided convolution, mel filterbank, log, DCT), cepstral mean and global normalisation,
frame stacking, every recurrent layer with its per-utterance reversal, the dense layer and the log-softmax. Batch
and length are dynamic, and padding never changes an utterance's output, as in torch.

The file is self-describing: ``metadata_props`` hold the vocabulary, the feature and model
settings and the input contract (:func:`export_metadata`), so an ONNX-only user needs
nothing else; :mod:`asr.inference.onnx_runtime` reads them back and validates them.

Inputs and outputs of the graph::

    wave       float32 (B, S)  mono samples at sample_rate_hz, zero-padded; S >= min_samples
    wave_lens  int64   (B,)    valid samples per row
    log_probs  float32 (B, T, V)  log-posteriors over the vocabulary (index 0: CTC blank)
    lengths    int64   (B,)    valid frames per row (frame_shift_s apart)

Example:
    >>> export_onnx("exp/an4/train/model.pt", "exp/an4/model.onnx", int8=True)  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from asr import __version__
from asr.fileio import atomic_write_text, file_sha256, refuse_to_replace
from asr.inference.onnx_runtime import ONNX_FORMAT, ONNX_FORMAT_VERSION, OnnxRecognizer
from asr.models.acoustic import Recognizer, num_parameters
from asr.models.checkpoint import load_model

OPSET = 17  # onnxruntime 1.31+ runs it; the LSTM/GRU exports need >= 14
INPUTS, OUTPUTS = ("wave", "wave_lens"), ("log_probs", "lengths")
# An export whose log-posteriors differ more than this from torch's on the check batch is refused.
CHECK_TOLERANCE = 1e-3


class ExportError(RuntimeError):
    """A model that cannot be exported, or an export that does not reproduce the model; names the file."""


class ConvMelSpectrogram(nn.Module):
    """torchaudio's ``MelSpectrogram`` (power 2, ``center=False``) as one strided convolution.

    Each output channel of the convolution is one windowed DFT basis vector (cosine, then
    sine, per frequency bin), so the convolution frames the waveform and takes its real DFT in
    one matrix product. ONNX's exporter cannot trace torch's complex STFT, and onnxruntime's
    ``STFT`` operator took 70 % of the whole recognizer's time (a direct DFT per frame, measured
    on the AN4 model), where this runs as one GEMM. ``forward(wave: (B, S))`` → ``(B, n_mels, T)``,
    equal to the torchaudio module's up to float32 rounding.
    """

    def __init__(self, melspec: nn.Module):
        super().__init__()
        spec = melspec.spectrogram
        if spec.center or spec.power != 2.0 or spec.normalized:
            raise ExportError("only power-2, uncentred, unnormalised spectrograms export (the asr front end's)")
        n_fft, self.hop_length = spec.n_fft, spec.hop_length
        left = (n_fft - spec.win_length) // 2  # torch.stft centres a shorter window inside n_fft
        window = torch.zeros(n_fft, dtype=torch.float64)
        window[left:left + spec.win_length] = spec.window.double()
        n = torch.arange(n_fft, dtype=torch.float64)
        angle = 2 * torch.pi * n[None, :] * torch.arange(n_fft // 2 + 1, dtype=torch.float64)[:, None] / n_fft
        basis = torch.cat([torch.cos(angle), torch.sin(angle)]) * window  # (2 * n_freqs, n_fft)
        self.register_buffer("basis", basis.float()[:, None, :])  # (out channels, 1, kernel)
        self.register_buffer("fb", melspec.mel_scale.fb.detach().clone())  # (n_freqs, n_mels)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        # (B, S) -> (B, 1, S) -> (B, 2 * n_freqs, T): real and imaginary parts of every frame
        parts = torch.nn.functional.conv1d(wave[:, None, :], self.basis, stride=self.hop_length)
        re, im = parts.chunk(2, dim=1)
        power = re * re + im * im  # (B, n_freqs, T)
        return torch.matmul(power.transpose(1, 2), self.fb).transpose(1, 2)  # (B, T, n_mels) -> (B, n_mels, T)


def exportable(model: Recognizer) -> Recognizer:
    """A copy of ``model`` (eval mode, no SpecAugment) whose front end traces into ONNX operators."""
    out = copy.deepcopy(model).eval()
    out.spec_augment = None
    out.features.melspec = ConvMelSpectrogram(model.features.melspec)
    return out


def example_batch(sample_rate_hz: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two seeded noise waveforms of 1.0 s and 0.7 s, zero-padded: what the exporter traces and checks."""
    gen = torch.Generator().manual_seed(0)
    lens = torch.tensor([sample_rate_hz, int(0.7 * sample_rate_hz)])
    wave = 0.1 * torch.randn(2, int(lens[0]), generator=gen)
    wave[1, lens[1]:] = 0
    return wave, lens


def export_metadata(model: Recognizer, bundle: dict, source: str | os.PathLike, *, int8: bool) -> dict[str, str]:
    """The ``metadata_props`` of an export (every value a string; structured values as JSON)."""
    feats = model.features.config
    return {
        "asr_format": ONNX_FORMAT,
        "asr_format_version": str(ONNX_FORMAT_VERSION),
        "asr_version": __version__,
        "vocab": json.dumps(bundle["vocab"], ensure_ascii=False),
        "blank": "0",
        "features": json.dumps(feats.to_dict()),
        "model": json.dumps(bundle["model"]),
        "sample_rate_hz": str(feats.sample_rate_hz),
        "min_samples": str(feats.fft_length),  # shorter rows must be zero-padded to this (padding is exact)
        "frame_shift_s": repr(feats.output_frame_shift_s),
        "parameters": str(num_parameters(model)),
        "int8": "true" if int8 else "false",
        "source_sha256": file_sha256(source),
        "io": "wave float32 (B,S), wave_lens int64 (B,) -> log_probs float32 (B,T,V), lengths int64 (B,)",
        **subword_metadata(bundle),
    }


def subword_metadata(bundle: dict) -> dict[str, str]:
    """A subword model's sentencepiece model as metadata: ``tokenizer`` (JSON: kind, SHA-256, base64 bytes).

    Empty for a character model (``vocab`` says it all). The runtime rebuilds the tokenizer from these bytes and
    checks them against the hash and ``vocab``, as a model file's are checked.
    """
    entry = bundle.get("tokenizer")
    if entry is None:
        return {}
    proto = entry["model"].numpy().tobytes()
    return {"tokenizer": json.dumps({"kind": entry["kind"], "sha256": entry["sha256"],
                                     "model_base64": base64.b64encode(proto).decode("ascii")})}


def _trace_to_onnx(model: Recognizer, path: Path) -> None:
    """Write the exportable copy of ``model`` to ``path`` with dynamic batch and length."""
    wave, lens = example_batch(model.features.config.sample_rate_hz)
    dynamic = {"wave": {0: "batch", 1: "samples"}, "wave_lens": {0: "batch"},
               "log_probs": {0: "batch", 1: "frames"}, "lengths": {0: "batch"}}
    with warnings.catch_warnings():  # tracer notes on shape-dependent Python branches, checked by _check_export
        warnings.simplefilter("ignore")
        torch.onnx.export(exportable(model), (wave, lens), str(path), dynamo=False, opset_version=OPSET,
                          input_names=list(INPUTS), output_names=list(OUTPUTS), dynamic_axes=dynamic,
                          do_constant_folding=True)


def _add_metadata(path: Path, metadata: dict[str, str]) -> None:
    import onnx

    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    proto.doc_string = "asr recognizer: waveform -> CTC log-posteriors (see metadata_props)"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def quantize_int8(src: Path, dst: Path) -> None:
    """onnxruntime dynamic quantization: int8 weights of the recurrent layers and the dense layer.

    The front end's matrix products (mel filterbank, DCT) stay float: they are a small share of
    the work, and rounding them would move every feature. onnxruntime quantizes LSTM and MatMul
    operators; its GRU operator has no int8 form, so a GRU model keeps float recurrent layers.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    front_end = [n.name for n in onnx.load(str(src)).graph.node if "/features/" in n.name]
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its advice to pre-process (shape inference) is for static quantization
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=["LSTM", "MatMul"],
                         nodes_to_exclude=front_end, per_channel=False)
    finally:
        root.setLevel(level)


def _check_export(model: Recognizer, path: Path, *, tolerance: float) -> float:
    """Max abs difference of the export's log-posteriors from torch's on :func:`example_batch` (valid frames)."""
    wave, lens = example_batch(model.features.config.sample_rate_hz)
    with torch.inference_mode():
        ref, ref_lens = model(wave, lens)
    got, got_lens = OnnxRecognizer(path, threads=1)(wave, lens)
    if got.shape != ref.shape or not torch.equal(got_lens, ref_lens):
        raise ExportError(f"{path}: the export gives shapes {tuple(got.shape)} / lengths {got_lens.tolist()}, "
                          f"torch {tuple(ref.shape)} / {ref_lens.tolist()}")
    valid = torch.arange(ref.shape[1])[None, :] < ref_lens[:, None]
    diff = float((got - ref)[valid].abs().max())
    if diff > tolerance:
        raise ExportError(f"{path}: log-posteriors differ from torch's by {diff:.2e} (more than {tolerance:g})")
    return diff


def card_path(out: str | os.PathLike) -> Path:
    """Where the model card of export ``out`` goes: ``model.onnx`` → ``model.card.md``."""
    return Path(out).with_suffix(".card.md")


def export_onnx(model_file: str | os.PathLike, out: str | os.PathLike, *, int8: bool = False,
                overwrite: bool = False, card: bool = True, test_manifest: str | os.PathLike | None = None) -> dict:
    """Export ``model_file`` (an asr model file) to ONNX at ``out``, with its model card beside it.

    With ``test_manifest``, the export itself is scored on it (greedy decoding) and the card
    quotes its WER and CER.

    The export is checked before it is kept: onnxruntime must reproduce torch's log-posteriors
    on a padded two-utterance batch within :data:`CHECK_TOLERANCE` (fp32; an int8 export only
    has to run with the same shapes, its accuracy is measured by ``benchmarks/runtimes.py``).

    Returns:
        What was written: ``{"onnx", "card", "bytes", "max_abs_diff", "int8"}``, and ``"test"`` (manifest,
        WER, CER, utterances) with ``test_manifest``.

    Raises:
        ModelFileError: ``model_file`` is not a loadable model file.
        WouldReplace: ``out`` (or its card) exists and not ``overwrite``.
        ExportError: the model cannot be exported, or the export does not reproduce it.
    """
    out = Path(out)
    targets = [out, card_path(out)] if card else [out]
    refuse_to_replace(targets, overwrite=overwrite)
    model, _, bundle = load_model(model_file)
    if bundle["model"].get("proj_size"):
        raise ExportError(f"{model_file}: LSTMs with projections (model.proj_size) have no ONNX export in torch")
    if bundle["model"].get("chunk_s") and bundle["model"].get("rnn_type") != "gru":
        raise ExportError(f"{model_file}: latency-controlled LSTMs (model.chunk_s, model.rnn_type=lstm) have no ONNX "
                          "export: their forward state is carried chunk by chunk, a loop over the input length "
                          "(a GRU's is not); run them with the torch runtime")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name[:40]}.{os.getpid()}.tmp.onnx")
    tmp_q = tmp.with_suffix(".q.onnx")
    try:
        _trace_to_onnx(model, tmp)
        _add_metadata(tmp, export_metadata(model, bundle, model_file, int8=int8))
        diff = _check_export(model, tmp, tolerance=CHECK_TOLERANCE)
        if int8:
            quantize_int8(tmp, tmp_q)
            os.replace(tmp_q, tmp)
            diff = _check_export(model, tmp, tolerance=float("inf"))
        with open(tmp, "rb+") as f:  # on disk before the rename, as asr.fileio.atomic_open does
            os.fsync(f.fileno())
        os.replace(tmp, out)
    finally:
        for p in (tmp, tmp_q):
            p.unlink(missing_ok=True)
    result = {"onnx": str(out), "bytes": out.stat().st_size, "max_abs_diff": diff, "int8": int8}
    if test_manifest is not None:
        result["test"] = score_export(out, test_manifest)
    if card:
        atomic_write_text(card_path(out), model_card(model, bundle, model_file, result))
        result["card"] = str(card_path(out))
    return result


def score_export(path: Path, manifest: str | os.PathLike) -> dict:
    """Greedy WER/CER of the export at ``path`` on ``manifest``, run by onnxruntime as users will run it."""
    from asr.data.manifest import read_manifest
    from asr.inference.evaluate import recognize, score

    onnx_model = OnnxRecognizer(path)
    utts = read_manifest(manifest)
    summary, _ = score(utts, recognize(onnx_model, onnx_model.tokenizer, utts))
    return {"manifest": str(manifest), "wer": summary["wer"], "cer": summary["cer"], "utterances": len(utts)}


def latency_class(model: Recognizer, settings: dict) -> str:
    """The model card's line on when results can come (streaming runs the model file, not the export)."""
    if settings.get("bidirectional", True) and not settings.get("chunk_s"):
        return ("offline: every output frame depends on the whole utterance (bidirectional), so a result comes "
                "after the audio ends; not a streaming model")
    from asr.inference.streaming import StreamingError, StreamingRecognizer

    try:
        rec = StreamingRecognizer(model, None)
    except StreamingError as err:
        return f"offline: the layers could stream, but {err}"
    if settings.get("chunk_s"):
        what = (f"latency-controlled: chunks of {settings['chunk_s']:g} s with {settings.get('right_context_s', 0):g} "
                f"s of look-ahead, algorithmic latency {1000 * rec.algorithmic_latency_s:.0f} ms")
    else:
        what = (f"unidirectional: the past only, algorithmic latency {1000 * rec.algorithmic_latency_s:.0f} ms at "
                "asr serve's default step_s=0.09")
    return (f"{what}; streams (partial results) with `asr serve` or asr.inference.streaming from the model file "
            "(runtime torch); this export recognises whole files, with the same output")


def model_card(model: Recognizer, bundle: dict, model_file: str | os.PathLike, export: dict) -> str:
    """A short Markdown model card: data, features, size, recorded scores, latency class, the files."""
    m, f = bundle["model"], model.features.config
    cfg = bundle.get("config") or {}
    data = cfg.get("data") or {}
    metrics = {k: v for k, v in (bundle.get("metrics") or {}).items() if isinstance(v, (int, float, str))}
    direction = "bidirectional" if m.get("bidirectional", True) else "unidirectional"
    latency = latency_class(model, m)
    units = (f"{bundle['tokenizer']['kind']} sentencepiece pieces, carried in metadata tokenizer"
             if "tokenizer" in bundle else "characters")
    if m.get("chunk_s"):
        direction = "latency-controlled bidirectional"
    lines = [
        f"# Model card: {Path(export['onnx']).name}", "",
        f"- **Exported from** `{model_file}` (SHA-256 {file_sha256(model_file)[:16]}...) by asr {__version__}; "
        f"ONNX opset {OPSET}, {'int8 (onnxruntime dynamic quantization)' if export['int8'] else 'float32'}, "
        f"{export['bytes'] / 1e6:.1f} MB; max abs log-posterior difference from torch on the check batch "
        f"{export['max_abs_diff']:.1e}.",
        f"- **Model**: {m.get('num_layers')} x {m.get('hidden_size')} {direction} {str(m.get('rnn_type')).upper()}, "
        f"CTC over {len(bundle['vocab'])} symbols (blank + {units}), {num_parameters(model):,} parameters.",
        f"- **Features**: {f.n_mfcc} MFCC from {f.n_mels} slaney mel bands, {f.win_length_ms:g} ms / "
        f"{f.hop_length_ms:g} ms, deltas {f.deltas}, stacked x{f.stack} every {f.subsample} frames "
        f"({1000 * f.output_frame_shift_s:g} ms per output frame), cmn {f.cmn}, at {f.sample_rate_hz} Hz.",
        f"- **Training data**: {data.get('train_manifest', 'not recorded')} (dev: "
        f"{data.get('dev_manifest', 'not recorded')}).",
        "- **Scores recorded in the model file**: "
        + (", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()) or "none")
        + ".",
        "- **Test set**: " + (f"WER {100 * export['test']['wer']:.2f} %, CER {100 * export['test']['cer']:.2f} % "
                              f"(greedy, this export in onnxruntime) on {export['test']['utterances']} utterances "
                              f"of `{export['test']['manifest']}`." if "test" in export else
                              "not scored at export (`test=<manifest>` scores it); see the recipe's RESULTS.md."),
        f"- **Latency class**: {latency}.",
        "- **Use**: `asr transcribe runtime=onnx model=<this file> ...`, or any ONNX runtime: inputs `wave` "
        "(float32, B x S, zero-padded, S >= metadata min_samples) and `wave_lens` (int64); outputs `log_probs` "
        "(B x T x V) and `lengths`; vocabulary and settings in the file's metadata_props.",
        "",
    ]
    return "\n".join(lines)
