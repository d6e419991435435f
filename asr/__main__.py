"""``python -m asr <command> [overrides]``: the console scripts as one module, for launchers that want ``-m``.

``torchrun`` starts a module or a script in every process, so distributed runs read::

    torchrun --nproc-per-node=4 -m asr train data=an4
    torchrun --nproc-per-node=4 -m asr transcribe model=model.pt input=audio/ output=out/all.jsonl
"""

from __future__ import annotations

import sys

COMMANDS = {"train": "train_main", "evaluate": "evaluate_main", "stats": "stats_main",
            "transcribe": "transcribe_main", "inspect": "inspect_main", "plot": "plot_main"}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(f"usage: python -m asr {{{','.join(COMMANDS)}}} [key=value ...]", file=sys.stderr)
        sys.exit(2)
    from asr.cli import apps as cli

    command = sys.argv.pop(1)
    sys.argv[0] = f"asr-{command}"  # Hydra names the job and its log after the program
    getattr(cli, COMMANDS[command])()


if __name__ == "__main__":
    main()
