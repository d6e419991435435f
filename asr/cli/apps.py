"""Every command's entry point by its console-script name (``asr-train`` is :func:`train_main`, ...).

The commands live in one module each (:mod:`asr.cli.train`, :mod:`asr.cli.evaluate`, ...); this
module gathers them for ``pyproject.toml``'s console scripts and for callers that import them.
"""

from asr.cli.analysis import eval_table_main, inspect_main, plot_main, sweep_table_main
from asr.cli.average import average_main
from asr.cli.corpora import (
    download_an4_main,
    download_librispeech_main,
    import_kaldi_main,
    prepare_an4_main,
    prepare_commonvoice_main,
    prepare_librispeech_main,
    prepare_speechocean762_main,
    split_speakers_main,
    synthesize_main,
)
from asr.cli.evaluate import build as _decoder
from asr.cli.evaluate import evaluate_main
from asr.cli.export import export_main
from asr.cli.lm import build_lm_main
from asr.cli.serve import serve_main, stream_main
from asr.cli.shard import shard_main
from asr.cli.train import stats_main, train_main
from asr.cli.transcribe import transcribe_main
from asr.cli.validate import validate_main

__all__ = ["average_main", "build_lm_main", "download_an4_main", "download_librispeech_main", "eval_table_main",
           "evaluate_main", "export_main", "import_kaldi_main", "prepare_commonvoice_main", "prepare_librispeech_main",
           "inspect_main", "plot_main", "prepare_an4_main", "prepare_speechocean762_main", "serve_main",
           "shard_main", "split_speakers_main", "stats_main", "stream_main", "sweep_table_main", "synthesize_main",
           "train_main",
           "transcribe_main", "validate_main",
           "_decoder"]
