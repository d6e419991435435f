"""The commands' Hydra configs, installed as the package ``asr.conf``.

Group files extend the schema's defaults, which live in Hydra's ConfigStore (``/schema/<group>``,
see :mod:`asr.cli.store`). Importing this package registers them, so ``pkg://asr.conf`` and
``initialize_config_module("asr.conf")`` compose without further set-up.
"""

from asr.cli.store import register

register()
