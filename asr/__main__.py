"""``asr <command> [key=value ...]`` and ``python -m asr <command> ...``: every command, one style.

``torchrun`` starts a module or a script in every process, so distributed runs read::

    torchrun --nproc-per-node=4 -m asr train data=an4
    torchrun --nproc-per-node=4 -m asr transcribe model=model.pt input=audio/ output=out/all.jsonl

``asr <command> --help`` shows a command's settings and their defaults.
"""

from __future__ import annotations

import importlib
import sys

# command: (module in asr.cli, entry point, one line for the overview)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "train": ("train", "train_main", "train a model: asr train data=an4 model=small trainer.max_epochs=30"),
    "evaluate": ("evaluate", "evaluate_main", "WER/CER of a model file: model=<model.pt> data.manifest=<jsonl>"),
    "transcribe": ("transcribe", "transcribe_main", "audio to text: model=<m.pt> input=<dir|file|jsonl> "
                   "output=<out.jsonl>"),
    "stats": ("train", "stats_main", "vocabulary + normalisation statistics: data=an4 output_dir=<dir>"),
    "validate": ("validate", "validate_main", "check manifests line by line: data.manifest=<jsonl or [a,b]>"),
    "inspect": ("analysis", "inspect_main", "figures of one utterance's gates: model=<m.pt> audio=<file> "
                "output=<dir>"),
    "plot": ("analysis", "plot_main", "training curves of a run: run=<run dir>"),
    "sweep-table": ("analysis", "sweep_table_main", "table + figure of an `asr train -m` sweep: dir=<sweep dir>"),
    "eval-table": ("analysis", "eval_table_main", "table + best job of an `asr evaluate -m` run: dir=<multirun dir>"),
    "average": ("average", "average_main", "average a run's last epochs into a model file: run=<run dir> last=5"),
    "export": ("export", "export_main", "a model file to ONNX + model card: model=<m.pt> out=<m.onnx> int8=false"),
    "build-lm": ("lm", "build_lm_main", "lexicon + KenLM n-gram: train=<jsonl> vocab=<vocab.json> out=<dir>"),
    "download-an4": ("corpora", "download_an4_main", "download CMU's AN4 archive: dir=<folder>"),
    "prepare-an4": ("corpora", "prepare_an4_main", "AN4 manifests: src=<an4 copy> out=<folder>"),
    "synthesize": ("corpora", "synthesize_main", "the embedded eSpeak NG corpus: out=<folder> num_train=3000"),
    "import-kaldi": ("corpora", "import_kaldi_main", "a Kaldi data dir to a manifest: data_dir=<dir> "
                     "out=<jsonl> root=<dir>"),
    "split-speakers": ("corpora", "split_speakers_main", "hold speakers out: manifest=<jsonl> train_out=<jsonl> "
                       "dev_out=<jsonl>"),
    "download-librispeech": ("corpora", "download_librispeech_main", "OpenSLR's LibriSpeech archives: dir=<folder> "
                             "subsets=[dev-clean]"),
    "prepare-librispeech": ("corpora", "prepare_librispeech_main", "LibriSpeech manifests: src=<LibriSpeech dir> "
                            "out=<folder>"),
    "prepare-commonvoice": ("corpora", "prepare_commonvoice_main", "Common Voice manifests: src=<language dir> "
                            "out=<folder>"),
    "prepare-speechocean762": ("corpora", "prepare_speechocean762_main", "speechocean762, digit readers held out: "
                               "src=<dir> out=<folder>"),
    "shard": ("shard", "shard_main", "WebDataset tar shards of a manifest: manifest=<jsonl> out=<dir>"),
    "serve": ("serve", "serve_main", "streaming server (WebSocket, uploads, health): model=<m.pt> port=8000"),
    "stream": ("serve", "stream_main", "a file to asr serve, partial results live: file=<audio> url=<ws url>"),
}


def overview() -> str:
    """The one-screen list of commands that ``asr --help`` prints."""
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {summary}" for name, (_, _, summary) in COMMANDS.items()]
    return "\n".join(["usage: asr <command> [key=value ...]    (asr <command> --help: its settings); commands:",
                      *lines,
                      "train, evaluate, transcribe, stats, validate, inspect, plot also take -m and hydra.* settings."])


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help", "help"):
        print(overview(), file=sys.stdout if len(sys.argv) >= 2 else sys.stderr)
        sys.exit(0 if len(sys.argv) >= 2 else 2)
    command = sys.argv.pop(1)
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}\n\n{overview()}", file=sys.stderr)
        sys.exit(2)
    module, entry, _ = COMMANDS[command]
    sys.argv[0] = f"asr-{command}"  # Hydra names the job and its log after the program
    sys.exit(getattr(importlib.import_module(f"asr.cli.{module}"), entry)())


if __name__ == "__main__":
    main()
