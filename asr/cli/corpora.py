"""Corpus preparation: ``asr download-an4``, ``asr prepare-an4``, ``asr synthesize``, ``asr import-kaldi``,
``asr split-speakers``, ``asr download-librispeech``, ``asr prepare-librispeech``, ``asr prepare-commonvoice``,
``asr prepare-speechocean762``."""

from __future__ import annotations

import sys

from asr.cli.common import Flags, command_flags, tool
from asr.config.commands import (
    DownloadAn4Config,
    DownloadLibrispeechConfig,
    ImportKaldiConfig,
    PrepareAn4Config,
    PrepareCommonvoiceConfig,
    PrepareLibrispeechConfig,
    PrepareSpeechocean762Config,
    SplitSpeakersConfig,
    SynthesizeConfig,
)

# the older argparse forms: python -m asr.corpora.an4 download --dir D / prepare --src S --out O
AN4_FLAGS = {"download-an4": Flags(options={"--dir": "dir", "--url": "url"}),
             "prepare-an4": Flags(options={"--src": "src", "--out": "out"})}
SYNTHESIZE_FLAGS = command_flags(Flags(
    options={"--out": "out", "--num-train": "num_train", "--num-dev": "num_dev", "--num-test": "num_test",
             "--seed": "seed", "--sample-rate": "sample_rate_hz", "--workers": "workers"},
    switches={"--overwrite": "overwrite"}), "synthesize")
for _command, _flags in AN4_FLAGS.items():
    command_flags(_flags, _command)


def _download(c: DownloadAn4Config) -> int:
    from asr.corpora.an4 import AN4_URL, download_an4

    download_an4(c.dir, url=c.url or AN4_URL)
    return 0


def _prepare(c: PrepareAn4Config) -> int:
    from asr.corpora.an4 import prepare_an4

    prepare_an4(c.src, c.out)
    return 0


def _synthesize(c: SynthesizeConfig) -> int:
    from asr.corpora.synthetic import generate_corpus

    generate_corpus(c.out, num_train=c.num_train, num_dev=c.num_dev, num_test=c.num_test, seed=c.seed,
                    sample_rate_hz=c.sample_rate_hz, num_workers=c.workers, overwrite=c.overwrite)
    return 0


def _import_kaldi(c: ImportKaldiConfig) -> int:
    from asr.corpora.kaldi import prepare_kaldi

    report = prepare_kaldi(c.data_dir, c.out, root=c.root, allow_pipes=c.allow_pipes, audio_dir=c.audio_dir,
                           normalize=c.normalize)
    print(f"{report['utterances']} utterances, {report['speakers']} speakers, {report['hours']:.2f} h -> {c.out}")
    if report["skipped"]:
        print(f"left out {len(report['skipped'])} utterance(s):", file=sys.stderr)
        for reason in report["skipped"][:20]:
            print(f"  {reason}", file=sys.stderr)
    return 0


def _split_speakers(c: SplitSpeakersConfig) -> int:
    from asr.data.split import split_by_speaker

    r = split_by_speaker(c.manifest, c.train_out, c.dev_out, dev_fraction=c.dev_fraction, seed=c.seed)
    print(f"train: {r['train_utterances']} utterances, {r['train_speakers']} speakers -> {c.train_out}; "
          f"dev: {r['dev_utterances']} utterances, {len(r['dev_speakers'])} speakers "
          f"({' '.join(r['dev_speakers'])}) -> {c.dev_out}")
    return 0


def _download_librispeech(c: DownloadLibrispeechConfig) -> int:
    from asr.corpora.librispeech import OPENSLR_URL, download_librispeech, read_checksums

    sums = read_checksums(c.checksums) if c.checksums else None
    download_librispeech(c.dir, c.subsets, base_url=c.base_url or OPENSLR_URL, sha256=sums)
    return 0


def _prepare_librispeech(c: PrepareLibrispeechConfig) -> int:
    from asr.corpora.librispeech import prepare_librispeech

    _print_report(prepare_librispeech(c.src, c.out, c.subsets))
    return 0


def _prepare_commonvoice(c: PrepareCommonvoiceConfig) -> int:
    from asr.corpora.commonvoice import prepare_commonvoice

    _print_report(prepare_commonvoice(c.src, c.out, c.splits, normalize=c.normalize))
    return 0


def _prepare_speechocean762(c: PrepareSpeechocean762Config) -> int:
    from asr.corpora.speechocean762 import prepare_speechocean762

    for name, r in prepare_speechocean762(c.src, c.out, apostrophes=c.apostrophes).items():
        print(f"{name}: {r['utterances']} utterances, {r['speakers']} speakers -> {r['manifest']}")
    return 0


def _print_report(report: dict[str, dict]) -> None:
    """One line per manifest written; every utterance left out, named, on stderr."""
    for name, r in report.items():
        print(f"{name}: {r['utterances']} utterances, {r['speakers']} speakers, {r['hours']:.2f} h -> "
              f"{r['manifest']}" + (f" ({len(r['skipped'])} left out)" if r["skipped"] else ""))
        for reason in r["skipped"]:
            print(f"  left out: {reason}", file=sys.stderr)


def import_kaldi_main(argv: list[str] | None = None) -> int:
    """``asr import-kaldi data_dir=<kaldi dir> out=<manifest> [root=<dir>] [allow_pipes=true]``."""
    from asr.corpora.kaldi import KaldiError

    return tool("import-kaldi", _import_kaldi, argv, errors=(KaldiError,))


def split_speakers_main(argv: list[str] | None = None) -> int:
    """``asr split-speakers manifest=<jsonl> train_out=<jsonl> dev_out=<jsonl> [dev_fraction=0.1 seed=0]``."""
    from asr.data.split import SplitError

    return tool("split-speakers", _split_speakers, argv, errors=(SplitError,))


def download_librispeech_main(argv: list[str] | None = None) -> int:
    """``asr download-librispeech dir=<folder> subsets=[dev-clean,...] [base_url=... checksums=<file>]``."""
    from asr.corpora.librispeech import LibriSpeechError

    return tool("download-librispeech", _download_librispeech, argv, errors=(LibriSpeechError,))


def prepare_librispeech_main(argv: list[str] | None = None) -> int:
    """``asr prepare-librispeech src=<LibriSpeech dir> out=<folder> [subsets=[...]]``: <out>/<subset>.jsonl."""
    from asr.corpora.librispeech import LibriSpeechError

    return tool("prepare-librispeech", _prepare_librispeech, argv, errors=(LibriSpeechError,))


def prepare_commonvoice_main(argv: list[str] | None = None) -> int:
    """``asr prepare-commonvoice src=<language folder> out=<folder> [splits=[train,dev,test]]``."""
    from asr.corpora.commonvoice import CommonVoiceError

    return tool("prepare-commonvoice", _prepare_commonvoice, argv, errors=(CommonVoiceError,))


def prepare_speechocean762_main(argv: list[str] | None = None) -> int:
    """``asr prepare-speechocean762 src=<dir> out=<folder>``: train on 99 speakers, 26 digit readers held out."""
    from asr.corpora.kaldi import KaldiError
    from asr.data.split import SplitError

    return tool("prepare-speechocean762", _prepare_speechocean762, argv, errors=(KaldiError, SplitError))


def download_an4_main(argv: list[str] | None = None) -> int:
    """``asr download-an4 dir=<folder> [url=...]``: CMU's AN4 sphere archive, extracted into <folder>/an4."""
    from asr.corpora.an4 import An4Error

    return tool("download-an4", _download, argv, AN4_FLAGS["download-an4"], errors=(An4Error,))


def prepare_an4_main(argv: list[str] | None = None) -> int:
    """``asr prepare-an4 src=<an4 copy> out=<folder>``: train/dev/test/train_full manifests."""
    from asr.corpora.an4 import An4Error

    return tool("prepare-an4", _prepare, argv, AN4_FLAGS["prepare-an4"], errors=(An4Error,))


def synthesize_main(argv: list[str] | None = None) -> int:
    """``asr synthesize out=<folder> [num_train=3000 ...]``: the embedded eSpeak NG corpus."""
    return tool("synthesize", _synthesize, argv, SYNTHESIZE_FLAGS)


def an4_module_main(argv: list[str]) -> int:
    """``python -m asr.corpora.an4 download|prepare --flags`` (the module's older form)."""
    commands = {"download": download_an4_main, "prepare": prepare_an4_main}
    if not argv or argv[0] not in commands:
        print("usage: python -m asr.corpora.an4 {download,prepare} ... (or: asr download-an4 / asr prepare-an4)",
              file=sys.stderr)
        return 2
    return commands[argv[0]](argv[1:])
