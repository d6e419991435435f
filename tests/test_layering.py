"""The import rule of the layout: training and inference never reach into analysis or plotting code.

Training and transcription run on servers without a display and must start fast; figures,
tables and inspection live in ``asr.analysis``, which may import them, never the reverse.
TensorBoard is allowed only when a run asks for it (imported inside the function that opens it).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOWER_LAYERS = ("asr/training", "asr/inference")
NEVER = ("asr.analysis", "matplotlib")  # not even inside a function
NOT_AT_IMPORT = ("tensorboard", "torch.utils.tensorboard")  # only inside the function that needs it


def _package(path: Path) -> str:
    """The package a file under ``asr/`` belongs to (``asr/inference/transcribe.py`` -> ``asr.inference``)."""
    return ".".join(path.relative_to(ROOT).parent.parts)


def imports(path: Path, package: str | None = None) -> list[tuple[str, int, bool]]:
    """``(module, line, at_module_level)`` for every import in a file, relative imports resolved.

    ``from a import b`` counts as importing both ``a`` and ``a.b`` (``b`` may be a module).
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    parts = (package if package is not None else _package(path)).split(".")
    in_function = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                   for n in ast.walk(f) if n is not f}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # one dot: this package; each further dot: one package up
                base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module
            names = [base, *(f"{base}.{a.name}" for a in node.names)]
        else:
            continue
        found += [(name, node.lineno, id(node) not in in_function) for name in names]
    return found


def _matches(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def violations(paths, package: str | None = None) -> list[str]:
    """``"file:line imports module"`` for every import the rule forbids, sorted."""
    out = []
    for path in paths:
        for name, line, top in imports(path, package):
            if _matches(name, NEVER) or (top and _matches(name, NOT_AT_IMPORT)):
                where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
                out.append(f"{where}:{line} imports {name}")
    return sorted(set(out))


def test_the_checker_sees_relative_nested_and_top_level_imports(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("import os\nfrom ..analysis import plots\nfrom . import outputs\n\ndef f():\n"
                   "    import matplotlib.pyplot as plt\n    from torch.utils.tensorboard import SummaryWriter\n\n"
                   "from torch.utils import tensorboard\n")
    assert violations([src], package="asr.inference") == ["m.py:2 imports asr.analysis",
                                                          "m.py:2 imports asr.analysis.plots",
                                                          "m.py:6 imports matplotlib.pyplot",
                                                          "m.py:9 imports torch.utils.tensorboard"]
    assert ("asr.inference.outputs", 3, True) in imports(src, package="asr.inference")


@pytest.mark.parametrize("layer", LOWER_LAYERS)
def test_training_and_inference_never_import_analysis_or_matplotlib(layer):
    paths = sorted((ROOT / layer).rglob("*.py"))
    assert paths, f"no modules under {layer}"
    bad = violations(paths)
    assert not bad, "training and inference must not import analysis or plotting code: " + "; ".join(bad)


def test_importing_transcription_and_training_loads_no_plotting_code():
    probe = ("import sys, asr.inference.transcribe, asr.inference.evaluate, asr.training.train; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'tensorboard') "
             "or m.startswith(('asr.analysis', 'torch.utils.tensorboard'))))")
    r = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip() == "[]"
