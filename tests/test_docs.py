"""Docs that cannot drift: every command line in README.md, docs/*.md and recipes/*/RESULTS.md composes.

A command line is any shell segment in a fenced code block, or an inline code span, that starts with
``asr-<cmd>``, ``asr <cmd>``, ``python -m asr ...``, ``torchrun ... -m asr <cmd>``, a recipe's ``run.sh`` /
``size_sweep.sh`` / ``ablation.sh`` or ``sbatch recipes/slurm/train.sbatch`` (whose extra arguments are ``asr-train``
overrides). Shell variables assigned earlier in the same code block are expanded (``e=recipes/an4/exp``,
``lex="decoder.lexicon=..."``), a ``for x in a b`` loop variable takes its first value, ``\\`` continuations
are joined, ``<placeholder>`` and ``...`` stand for values the reader fills in, and a multirun's
comma-separated sweep is checked value by value.

Each command is composed in-process as the command itself composes it (``asr.__main__.COMMANDS`` names its
entry point): training and the ``conf/`` commands from ``asr.conf`` after the schema's ConfigStore nodes are
registered, the commands whose ``model=`` is a file through their own ``register`` (their YAML in ConfigStore),
the tools through ``asr.cli.common.compose_tool``; then validated with the schema (``Settings.from_dict``,
``COMMAND_CONFIGS``, ``TOOL_CONFIGS``). A few cheap ones run for real: every ``--help`` line, the docs'
``asr validate`` line on a tiny manifest, and the README's first ``asr train`` line for one epoch.
"""

from __future__ import annotations

import copy
import importlib
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hydra import compose, initialize, initialize_config_module
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted(ROOT.glob("recipes/*/RESULTS.md"))]
# recipes/<corpus>/run.sh trains with data=<corpus>
RECIPE_DATA = {"an4": "an4", "synthetic": "synthetic", "speechocean762": "speechocean762", "librispeech": "librispeech"}
PLACEHOLDER = "PLACEHOLDER"


@dataclass
class DocCommand:
    """One command line found in a doc: where it is, what it says, and what the checker will run."""

    where: str  # "README.md:42"
    text: str  # the line as written (continuations joined)
    command: str  # "train", "evaluate", "sweep-table", "module:asr.decoding.lm", ...
    args: list[str] = field(default_factory=list)  # after expansion: overrides or argparse arguments

    def __str__(self) -> str:
        return f"{self.where}: {self.text}"


# ---- extraction ------------------------------------------------------------------------------


FENCE = re.compile(r"^\s*(```|~~~)\s*([\w-]*)")
INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
ASSIGN = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
ANGLE = re.compile(r"<[^<>\n]*[A-Za-z][^<>\n]*>")
SHELL_LANGS = {"", "bash", "sh", "shell", "console", "zsh"}


def _logical_lines(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Join ``\\`` continuations; each result keeps the number of its first line."""
    out: list[tuple[int, str]] = []
    buf, start = "", None
    for n, line in lines:
        if start is None:
            start = n
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        out.append((start, buf + line))
        buf, start = "", None
    if start is not None:
        out.append((start, buf))
    return out


def _segments(line: str) -> list[list[str]]:
    """Shell words of each simple command on a line (split at ; && || | and comments)."""
    line = ANGLE.sub(PLACEHOLDER, line)
    lex = shlex.shlex(line, posix=True, punctuation_chars=";&|")
    lex.whitespace_split = True
    lex.commenters = "#"
    segs: list[list[str]] = [[]]
    try:
        for tok in lex:
            if tok and set(tok) <= set(";&|"):
                segs.append([])
            else:
                segs[-1].append(tok)
    except ValueError:  # an unbalanced quote: prose, not a command
        return []
    return [s for s in segs if s]


def _expand(word: str, env: dict[str, str]) -> str:
    return VAR.sub(lambda m: env.get(m.group(1) or m.group(2), PLACEHOLDER), word)


def _classify(words: list[str]) -> tuple[str, list[str]] | None:
    """``(command, arguments)`` when the words start a command this test checks, else None."""
    while words and words[0] in ("do", "then", "else", "time", "nice"):
        words = words[1:]
    if not words:
        return None
    head = words[0].rsplit("/", 1)[-1] if words[0].startswith(".venv/") else words[0]
    if head.startswith("asr-"):
        return head[4:], words[1:]
    if head == "asr":
        return (words[1], words[2:]) if len(words) > 1 and not words[1].startswith("-") else ("", words[1:])
    if head in ("python", "python3") and len(words) > 2 and words[1] == "-m" and words[2].startswith("asr"):
        if words[2] == "asr":
            return (words[3], words[4:]) if len(words) > 3 else ("", [])
        return f"module:{words[2]}", words[3:]
    if head == "torchrun" and "-m" in words:
        i = words.index("-m")
        if words[i + 1:i + 2] == ["asr"] and len(words) > i + 2:
            return words[i + 2], words[i + 3:]
    m = re.fullmatch(r"recipes/(\w+)/(run|size_sweep|ablation)\.sh", head)
    if m and m.group(1) in RECIPE_DATA:
        return "recipe", [f"data={RECIPE_DATA[m.group(1)]}", *_recipe_overrides(words[1:])]
    if head == "sbatch" and any(w.endswith("recipes/slurm/train.sbatch") for w in words):
        i = next(i for i, w in enumerate(words) if w.endswith("recipes/slurm/train.sbatch"))
        return "recipe", words[i + 1:]
    return None


def _recipe_overrides(words: list[str]) -> list[str]:
    """A recipe's Hydra overrides: its arguments less ``--option value`` pairs."""
    out, skip = [], False
    for w in words:
        if skip:
            skip = False
        elif w.startswith("--"):
            skip = "=" not in w
        else:
            out.append(w)
    return out


def _from_words(words: list[str], env: dict[str, str], where: str, text: str,
                inline: bool = False) -> DocCommand | None:
    if len(words) >= 3 and words[0] == "for" and words[2] == "in":
        env[words[1]] = _expand(words[3], env) if len(words) > 3 else PLACEHOLDER
        return None
    if words and all(ASSIGN.match(w) for w in words):  # e=recipes/an4/exp (a shell assignment, no command)
        for w in words:
            name, value = ASSIGN.match(w).groups()
            env[name] = _expand(value, env)
        return None
    expanded: list[str] = []
    for w in words:  # an expanded variable splits into words, as in the shell ($lex: several overrides)
        expanded.extend(_expand(w, env).split() if VAR.search(w) else [w])
    found = _classify(expanded)
    if found is None:
        return None
    command, args = found
    if PLACEHOLDER in command or (inline and not args):
        return None  # `python -m asr <command>`, `python -m asr.corpora.synthetic` in prose: names, not lines
    return DocCommand(where, text.strip(), command, args)


def extract(markdown: str, name: str) -> list[DocCommand]:
    """Every command line of one markdown document."""
    commands: list[DocCommand] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if fence:
            lang, body, i = fence.group(2).lower(), [], i + 1
            while i < len(lines) and not lines[i].lstrip().startswith(fence.group(1)):
                body.append((i + 1, lines[i]))
                i += 1
            i += 1
            if lang in SHELL_LANGS:
                env: dict[str, str] = {}
                for n, line in _logical_lines(body):
                    for words in _segments(line):
                        cmd = _from_words(words, env, f"{name}:{n}", line)
                        if cmd:
                            commands.append(cmd)
            continue
        for span in INLINE.findall(lines[i]):
            for words in _segments(span):
                cmd = _from_words(words, {}, f"{name}:{i + 1}", span, inline=True)
                if cmd:
                    commands.append(cmd)
        i += 1
    return commands


def doc_commands() -> list[DocCommand]:
    return [c for f in DOC_FILES for c in extract(f.read_text(encoding="utf-8"), f.relative_to(ROOT).as_posix())]


# ---- checking ------------------------------------------------------------------------------


def _entry_point(command: str):
    """The function behind ``asr <command>`` (``asr.__main__.COMMANDS``, the CLI's own registry)."""
    from asr.__main__ import COMMANDS

    if command not in COMMANDS:
        raise AssertionError(f"no command asr {command} (asr --help lists: {', '.join(COMMANDS)})")
    module, entry, _ = COMMANDS[command]
    return getattr(importlib.import_module(f"asr.cli.{module}"), entry)


def _sweep_variants(overrides: list[str]) -> list[list[str]]:
    """One override list per sweep value (a ``-m`` run's ``a=1,2`` is checked as ``a=1`` and as ``a=2``)."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    base = [o.input_line if not o.is_sweep_override() else
            f"{o.get_key_element()}={next(iter(o.sweep_string_iterator()))}" for o in parsed]
    variants = [base]
    for i, o in enumerate(parsed):
        if o.is_sweep_override():
            variants += [base[:i] + [f"{o.get_key_element()}={v}"] + base[i + 1:]
                         for v in list(o.sweep_string_iterator())[1:]]
    return variants


def _overrides(args: list[str]) -> list[str]:
    """The Hydra overrides of a command line: flags (-m, --help) and bare placeholders dropped."""
    out = []
    for a in args:
        if a.startswith("-") or a in (PLACEHOLDER, "..."):
            continue
        key, sep, value = a.partition("=")
        if not sep:
            raise AssertionError(f"{a!r} is not a key=value setting")
        if value in ("...", "") or PLACEHOLDER in value:
            value = PLACEHOLDER
        out.append(f"{key}={value}")
    return out


def _compose(config: str, overrides: list[str], register=None):
    """Compose ``config`` as its command does: from ``conf/``, or (``register``) from ConfigStore alone."""
    from asr.cli.store import register as register_schema

    GlobalHydra.instance().clear()
    store = ConfigStore.instance()
    register_schema()
    if register is None:
        with initialize_config_module(config_module="asr.conf", version_base="1.3"):
            return compose(config_name=config, overrides=overrides)
    with initialize(version_base="1.3", config_path=None):
        saved = copy.deepcopy(store.repo)  # what one command registers must not leak into the next one's search
        try:
            register()
            return compose(config_name=config, overrides=overrides)
        finally:
            store.repo = saved


def _check_overrides(command: str, overrides: list[str]) -> None:
    """Compose ``command``'s config with ``overrides`` and validate it with the schema, as the command does."""
    from asr.cli.common import compose_tool, resolved, validated
    from asr.config.commands import COMMAND_CONFIGS, TOOL_CONFIGS
    from asr.config.schema import Settings

    if command in ("train", "recipe"):
        d = resolved(_compose("train", overrides))
        unknown = sorted(set(d) - set(Settings.__dataclass_fields__))
        assert not unknown, f"unknown top-level key(s) {unknown}"
        Settings.from_dict(d)
    elif command in TOOL_CONFIGS:
        validated(compose_tool(command, overrides), TOOL_CONFIGS[command])
    else:
        register = getattr(_entry_point(command), "register", None)
        validated(_compose(command, overrides, register), COMMAND_CONFIGS[command])


def check(cmd: DocCommand) -> None:
    """Raise AssertionError naming the doc line when ``cmd`` does not compose against the schema."""
    try:
        if cmd.command.startswith("module:"):
            raise AssertionError(f"python -m {cmd.command[7:]} is not a command; use asr <command> (asr --help)")
        if cmd.command == "" or cmd.args in (["--help"], ["-h"]):
            return  # `asr --help`, `asr train --help`: run for real in test_help_commands_run
        args = cmd.args
        if cmd.command != "recipe":
            _entry_point(cmd.command)
            from asr.cli.common import COMMAND_FLAGS

            if cmd.command in COMMAND_FLAGS:  # the older form (asr stream a.wav --mic): as the command reads it
                args = COMMAND_FLAGS[cmd.command].overrides([a for a in args if a not in (PLACEHOLDER, "...")])
        for variant in _sweep_variants(_overrides(args)):
            _check_overrides(cmd.command, variant)
    except Exception as err:  # noqa: BLE001 - every failure is reported against its doc line
        raise AssertionError(f"{cmd}\n  -> {type(err).__name__}: {err}") from None
    finally:
        GlobalHydra.instance().clear()


# ---- tests ---------------------------------------------------------------------------------


COMMANDS = doc_commands()


def test_docs_have_commands_to_check():
    assert len(COMMANDS) >= 40, [str(c) for c in COMMANDS]
    kinds = {c.command for c in COMMANDS}
    assert {"train", "evaluate", "transcribe", "validate", "recipe"} <= kinds, kinds


@pytest.mark.parametrize("cmd", COMMANDS, ids=[c.where for c in COMMANDS])
def test_doc_command_composes(cmd):
    check(cmd)


def _bad(markdown: str) -> list[DocCommand]:
    cmds = extract(markdown, "bad.md")
    assert cmds, markdown
    return cmds


@pytest.mark.parametrize("markdown,needle", [
    ("```bash\nasr-train data=an4 model.hiden_size=5\n```", "model.hiden"),  # unknown key
    ("Run `asr-train model=huge`.", "model/huge"),  # unknown group option
    ("```bash\nasr-train model.hidden_size=-5\n```", "hidden_size"),  # composes, the schema refuses it
    ("```bash\ne=x; asr-evaluate model=$e/m.pt data.manifest=d.jsonl decoder.beam=4\n```", "decoder.beam"),
    ("```bash\nasr transcribe model=m.pt input=a/ output=o.jsonl batch.size=4\n```", "size"),
    ("```bash\nasr-evaluate -m model=m.pt data.manifest=d.jsonl decoder=beam_lm decoder.lexicon=l \\\n"
     "    decoder.lm=x.bin decoder.lm_weight=0,abc\n```", "lm_weight"),  # the second sweep value is bad
    ("```bash\nasr sweep-table dir=exp/sweep colour=red\n```", "colour"),  # a tool: unknown key
    ("```bash\nasr build-lm train=t.jsonl\n```", "missing required"),  # required settings left out
    ("```bash\npython -m asr.decoding.lm build --train t.jsonl\n```", "not a command"),
    ("```bash\nasr-average exp/run --last 3\n```", "not a key=value"),  # one command style
    ("```bash\nrecipes/an4/run.sh --stage 3 modle.num_layers=5\n```", "modle"),  # recipe overrides
    ("```bash\nasr-frobnicate x=1\n```", "no command asr frobnicate"),
])
def test_checker_fails_on_a_bad_line_and_names_it(markdown, needle):
    cmd = _bad(markdown)[0]
    with pytest.raises(AssertionError) as err:
        check(cmd)
    message = str(err.value)
    assert message.startswith("bad.md:"), message  # the doc line is named
    assert needle in message, message


def test_extraction_expands_variables_loops_and_continuations():
    md = ("```bash\n"
          "e=recipes/an4/exp; lex=\"decoder.lexicon=$e/lang/lexicon.txt decoder.lm=$e/lang/lm.bin\"\n"
          "for m in a.pt b.pt; do asr-evaluate model=$m data.manifest=$e/data/dev.jsonl \\\n"
          "    decoder=beam_lm $lex <best overrides>; done   # a comment\n"
          "```\n"
          "and inline `asr-train -m model.num_layers=2,3` too; `make demo` is not ours.\n")
    cmds = extract(md, "x.md")
    assert [(c.where, c.command) for c in cmds] == [("x.md:3", "evaluate"), ("x.md:6", "train")]
    assert cmds[0].args == ["model=a.pt", "data.manifest=recipes/an4/exp/data/dev.jsonl", "decoder=beam_lm",
                            "decoder.lexicon=recipes/an4/exp/lang/lexicon.txt",
                            "decoder.lm=recipes/an4/exp/lang/lm.bin", PLACEHOLDER]
    assert _sweep_variants(_overrides(cmds[1].args)) == [["model.num_layers=2"], ["model.num_layers=3"]]


# ---- the cheap ones, for real ----------------------------------------------------------------


def _run(words: list[str], cwd: Path) -> subprocess.CompletedProcess:
    exe = BIN / words[0]
    argv = [str(exe), *words[1:]] if exe.exists() else [sys.executable, "-m", "asr", *words[1:]]
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_help_commands_run(tmp_path):
    """Every ``--help`` line in the docs prints help and exits 0."""
    helps = [c for c in COMMANDS if c.args in (["--help"], ["-h"])]
    for c in helps:
        words = ["asr" if not c.command else f"asr-{c.command}", *c.args]
        r = _run(words, tmp_path)
        assert r.returncode == 0 and r.stdout.strip(), f"{c}\n  -> exit {r.returncode}: {r.stderr[-2000:]}"


def _first(command: str, needle: str) -> DocCommand:
    found = [c for c in COMMANDS if c.command == command and any(needle in a for a in c.args)]
    assert found, f"no asr-{command} line with {needle} in the docs"
    return found[0]


def _with(args: list[str], **values: str) -> list[str]:
    """``args`` with ``key=value`` replaced (or added) for each of ``values`` (dots as ``__``)."""
    keys = {k.replace("__", "."): v for k, v in values.items()}
    kept = [a for a in args if a.partition("=")[0] not in keys]
    return kept + [f"{k}={v}" for k, v in keys.items()]


def test_validate_line_runs_on_a_tiny_manifest(tone_corpus, tmp_path):
    cmd = _first("validate", "data.manifest=")
    args = _with([a for a in cmd.args if not a.startswith("data.vocab")], data__manifest=str(tone_corpus),
                 report=str(tmp_path / "check.json"), hydra__run__dir=str(tmp_path / "v"))
    r = _run(["asr-validate", *args], tmp_path)
    assert r.returncode == 0, f"{cmd}\n  -> {r.stdout}{r.stderr[-2000:]}"
    assert "8 lines, 8 usable; 0 fatal" in r.stdout, r.stdout


def test_quick_start_train_line_runs_one_epoch(tone_corpus, tmp_path):
    """The README's first ``asr-train data=an4 ...`` line, on the tone corpus for one epoch."""
    readme = [c for c in COMMANDS if c.where.startswith("README.md") and c.command == "train"]
    assert readme, "README.md has no asr-train line"
    cmd = readme[0]
    tiny = dict(data__train_manifest=str(tone_corpus), data__dev_manifest=str(tone_corpus),
                data__vocab="null", data__stats="null", trainer__max_epochs="1", trainer__threads="1",
                trainer__tensorboard="false", model__hidden_size="16", model__num_layers="1",
                data__max_batch_duration_s="2.5", data__max_duration_s="2.5", hydra__run__dir=str(tmp_path / "run"))
    r = _run(["asr-train", *_with([a for a in cmd.args if not a.startswith("-")], **tiny)], tmp_path)
    assert r.returncode == 0, f"{cmd}\n  -> {r.stderr[-3000:]}"
    assert (tmp_path / "run" / "model.pt").is_file()
