"""Corpus preparation: ``asr download-an4``, ``asr prepare-an4``, ``asr synthesize``."""

from __future__ import annotations

import sys

from asr.cli.common import Flags, tool
from asr.config.commands import DownloadAn4Config, PrepareAn4Config, SynthesizeConfig

# the older argparse forms: python -m asr.corpora.an4 download --dir D / prepare --src S --out O
AN4_FLAGS = {"download-an4": Flags(options={"--dir": "dir", "--url": "url"}),
             "prepare-an4": Flags(options={"--src": "src", "--out": "out"})}
SYNTHESIZE_FLAGS = Flags(options={"--out": "out", "--num-train": "num_train", "--num-dev": "num_dev",
                                  "--num-test": "num_test", "--seed": "seed", "--sample-rate": "sample_rate_hz",
                                  "--workers": "workers"}, switches={"--overwrite": "overwrite"})


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
