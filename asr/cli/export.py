"""``asr export``: a model file to a self-describing ONNX file and its model card (see ExportConfig)."""

from __future__ import annotations

from asr.cli.common import Flags, tool
from asr.config.commands import ExportConfig

FLAGS = Flags(positional=("model",), options={"--format": "format", "--out": "out"},
              switches={"--int8": "int8", "--overwrite": "overwrite"})  # asr-export model.pt --format onnx --int8


def _export(c: ExportConfig) -> int:
    from asr.inference.export import export_onnx

    r = export_onnx(c.model, c.out, int8=c.int8, overwrite=c.overwrite, card=c.card, test_manifest=c.test)
    kind = "int8" if r["int8"] else "float32"
    print(f"exported {c.model} -> {r['onnx']} ({kind}, {r['bytes'] / 1e6:.1f} MB; onnxruntime vs torch on the "
          f"check batch: max abs log-prob difference {r['max_abs_diff']:.1e})" +
          (f"; model card {r['card']}" if "card" in r else ""))
    if "test" in r:
        print(f"test WER {100 * r['test']['wer']:.2f} %  CER {100 * r['test']['cer']:.2f} % (greedy, onnxruntime) "
              f"on {r['test']['utterances']} utterances of {r['test']['manifest']}")
    return 0


def export_main(argv: list[str] | None = None) -> int:
    """``asr export model=<model.pt> out=<model.onnx> [format=onnx] [int8=true]``; returns the exit status."""
    return tool("export", _export, argv, FLAGS)  # ExportError and WouldReplace are user errors (RuntimeError)
