"""What every command shares: composing its config, validating it, and turning user errors into one line.

Three kinds of command, one way to call them (``asr <command> key=value ...``):

* :func:`conf_app`: a Hydra app on ``conf/`` (train, stats, validate, plot), run directory and all.
* :func:`store_app`: a Hydra app whose YAML is read into ConfigStore and composed with no config
  directory (evaluate, transcribe, inspect): Hydra takes ``model=...`` as a group choice whenever
  a ``model/`` group is on the search path, and for these commands ``model=`` is a model *file*.
* :func:`tool`: a command that writes no run directory (sweep-table, average, build-lm, ...),
  composed with Hydra's compose API; its older ``--flag value`` forms are translated to overrides.

A config or data problem ends with one ``error:`` line naming the key or file, and exit status 2.
"""

from __future__ import annotations

import functools
import importlib.resources
import logging
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from asr.cli.store import register, tool_config_name
from asr.config.commands import TOOL_CONFIGS
from asr.config.schema import MISSING, ConfigError, defaults_dict, from_dict
from asr.data.audio import AudioError
from asr.data.manifest import ManifestError
from asr.fileio import describe_os_error

log = logging.getLogger("asr")
CONFIG_PATH = "pkg://asr.conf"
USER_ERRORS = (ConfigError, ManifestError, AudioError, FileNotFoundError, RuntimeError)  # + ModelFileError, see below


def user_error_types() -> tuple[type[BaseException], ...]:
    """:data:`USER_ERRORS`, and ``ModelFileError`` once its module is loaded: only then can one have been raised.

    :mod:`asr.models.checkpoint` imports torch, which ``asr transcribe runtime=onnx`` never loads
    (the ONNX runtime imports that module only to raise its error).
    """
    checkpoint = sys.modules.get("asr.models.checkpoint")
    return USER_ERRORS + ((checkpoint.ModelFileError,) if checkpoint is not None else ())


def fail(err: object) -> None:
    """Print one ``error:`` line and exit with status 2."""
    print(f"error: {err}", file=sys.stderr)
    sys.exit(2)


def user_errors(fn):
    """Turn the errors a user can fix into one clear line and exit status 2."""
    @functools.wraps(fn)
    def wrapper(cfg: DictConfig):
        try:
            return fn(cfg)
        except user_error_types() as err:
            log.error("%s", err)
            fail(err)
        except OSError as err:  # read-only folder, full disk, name too long...: the path and what to do
            log.error("%s", describe_os_error(err))
            fail(describe_os_error(err))
    return wrapper


def _missing_keys(d: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in d.items():
        if isinstance(v, dict):
            out += _missing_keys(v, f"{prefix}{k}.")
        elif v == MISSING:
            out.append(f"{prefix}{k}")
    return out


def resolved(cfg: DictConfig) -> dict:
    """The composed config as a plain dict (interpolations resolved); a required setting left out is an error."""
    d = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    missing = _missing_keys(d)
    if missing:
        raise ConfigError(f"missing required setting(s): {', '.join(f'{k}=...' for k in missing)}")
    return d


def validated(cfg: DictConfig, cls: type):
    """The composed config validated into dataclass ``cls`` (unknown keys, types and ranges checked)."""
    return from_dict(cls, resolved(cfg), "")


def run_dir() -> Path:
    return Path(HydraConfig.get().runtime.output_dir)


def conf_app(config_name: str):
    """Decorator: a Hydra app composing ``conf/<config_name>.yaml``, with :func:`user_errors`."""
    def wrap(fn):
        app = hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name=config_name)(user_errors(fn))

        @functools.wraps(fn)
        def main():
            register()
            return app()
        return main
    return wrap


def store_app(config_name: str, groups: tuple[str, ...] = ("decoder",)):
    """Decorator for commands whose ``model=`` is a model *file*, not the training ``model/`` group.

    Their YAML (``conf/<config_name>.yaml`` and the options of ``groups``) goes into Hydra's
    ConfigStore and the app starts with no config directory, so ``model=<file>`` is a plain value.
    """
    def register_command() -> None:
        root = importlib.resources.files("asr.conf")
        cs = ConfigStore.instance()
        register()
        cs.store(name=config_name, node=OmegaConf.create((root / f"{config_name}.yaml").read_text()))
        for group in groups:
            for option in (root / group).iterdir():
                if option.name.endswith(".yaml"):
                    cs.store(group=group, name=option.name[:-5], node=OmegaConf.create(option.read_text()))

    register_command.__name__ = "register"  # what tests/test_docs.py looks for to compose a command's config

    def wrap(fn):
        app = hydra.main(version_base="1.3", config_path=None, config_name=config_name)(user_errors(fn))

        @functools.wraps(fn)
        def main():
            register_command()
            return app()
        main.register = register_command
        return main
    return wrap


# ---- torchrun: one run directory for all ranks ----------------------------------------------

# Under torchrun every rank starts its own Hydra app. Left alone, each would resolve ${now:...} in
# its own second and write its own directory, .hydra/ and log file. Ranks > 0 therefore run Hydra
# in the current directory with no output of their own (warnings only, to the console) and take
# rank 0's run directory once the process group is up (see shared_run_dir).
QUIET_RANK_OVERRIDES = ["hydra.run.dir=.", "hydra.output_subdir=null", "hydra/job_logging=stdout",
                        "hydra.job_logging.root.level=WARNING"]


def torchrun_aware(main):
    """Entry point wrapper: append :data:`QUIET_RANK_OVERRIDES` to the command line of ranks > 0."""
    @functools.wraps(main)
    def wrapper():
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and int(os.environ.get("RANK", "0")) > 0:
            if "-m" in sys.argv or "--multirun" in sys.argv:
                fail("a multirun (-m) under torchrun is not supported; launch one torchrun per job "
                     "(see docs/scaling-out.md)")
            sys.argv += QUIET_RANK_OVERRIDES
        return main()
    return wrapper


def shared_run_dir(device: str, *, training: bool = False):
    """Join the process group (if any) and return ``(world, device, run directory)``: rank 0's directory on all."""
    from asr.runtime import resolve_device
    from asr.training import distributed

    world, dev = distributed.init_from_env(resolve_device(device), training=training)
    return world, dev, Path(distributed.broadcast(str(run_dir())))


# ---- tools: commands without a run directory ------------------------------------------------

_PLAIN = re.compile(r"[\w./:+~@%-]*")  # values the override grammar reads as they are


@dataclass(frozen=True)
class Flags:
    """A tool's older argparse form: positional arguments and ``--flags`` mapped to its settings."""

    positional: tuple[str, ...] = ()
    options: dict[str, str] = field(default_factory=dict)  # "--output": "output"
    switches: dict[str, str] = field(default_factory=dict)  # "--overwrite": "overwrite" (no value)

    def overrides(self, argv: list[str]) -> list[str]:
        """``["exp/size", "--output", "t"]`` -> ``["dir=exp/size", "output=t"]``; key=value items pass through."""
        out, positional, args = [], list(self.positional), list(argv)
        while args:
            a = args.pop(0)
            flag, eq, value = a.partition("=")
            if flag in self.switches and not eq:
                out.append(f"{self.switches[flag]}=true")
            elif flag in self.options:
                if not eq and not args:
                    raise ConfigError(f"{flag} needs a value")
                out.append(f"{self.options[flag]}={_quoted(value if eq else args.pop(0))}")
            elif a.startswith("-"):
                raise ConfigError(f"unknown option {a}")
            elif eq:
                out.append(a)
            elif positional:
                out.append(f"{positional.pop(0)}={_quoted(a)}")
            else:
                raise ConfigError(f"{a!r} is not a key=value setting")
        return out


COMMAND_FLAGS: dict[str, Flags] = {}  # asr <command> -> its Flags (the docs' command checker reads them too)


def command_flags(flags: Flags, *commands: str) -> Flags:
    """Record ``flags`` as the older argparse form of ``commands``; returns ``flags``."""
    for command in commands:
        COMMAND_FLAGS[command] = flags
    return flags


def _quoted(value: str) -> str:
    if _PLAIN.fullmatch(value) and value:
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _usage(command: str, cls: type) -> str:
    doc = (cls.__doc__ or "").strip().splitlines()[0].replace("``", "")
    return f"{doc}\n\nusage: asr {command} [key=value ...]   settings and defaults (??? = required):\n" + \
        "\n".join(f"  {line}" for line in OmegaConf.to_yaml(defaults_dict(cls)).splitlines())


def compose_tool(command: str, overrides: list[str]) -> DictConfig:
    """The composed config of tool ``command`` (``TOOL_CONFIGS``) with Hydra overrides applied."""
    from hydra import compose, initialize
    from hydra.core.override_parser.overrides_parser import OverridesParser

    allowed = list(defaults_dict(TOOL_CONFIGS[command]))
    unknown = [o.key_or_group for o in OverridesParser.create().parse_overrides(overrides)
               if o.key_or_group.lstrip("+~").split(".")[0] not in allowed]
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    register()
    with initialize(version_base="1.3", config_path=None):
        return compose(config_name=tool_config_name(command), overrides=overrides)


def tool(command: str, run: Callable, argv: list[str] | None, flags: Flags = Flags(),
         errors: tuple[type[BaseException], ...] = ()) -> int:
    """Run tool ``command``: compose and validate its settings, then ``run(settings)``; returns the exit status.

    ``errors``: the command's own exceptions a user can fix, reported like a config error.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    cls = TOOL_CONFIGS[command]
    if any(a in ("-h", "--help") for a in argv):
        print(_usage(command, cls))
        return 0
    try:
        settings = validated(compose_tool(command, flags.overrides(argv)), cls)
        return run(settings) or 0
    except (HydraException, OmegaConfBaseException) as err:  # an override Hydra cannot apply
        print("error: " + "; ".join(line for line in str(err).splitlines() if line.strip()), file=sys.stderr)
    except (*user_error_types(), *errors, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
    except OSError as err:
        print(f"error: {describe_os_error(err)}", file=sys.stderr)
    return 2
