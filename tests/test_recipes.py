"""Recipes end to end, as a user runs them (slow: deselect with -m 'not slow')."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from asr.models.checkpoint import safe_load

ROOT = Path(__file__).resolve().parents[1]
AN4 = Path(os.environ.get("ASR_AN4_DIR", ROOT.parent / "shared" / "data" / "an4"))
TINY = ["model.hidden_size=32", "model.num_layers=1", "trainer.max_epochs=1", "trainer.threads=1",
        "trainer.tensorboard=false"]


def run_recipe(script: str, *args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", **(env_extra or {})}
    return subprocess.run(["bash", str(ROOT / "recipes" / script / "run.sh"), *args], capture_output=True,
                          text=True, env=env, timeout=1200)


@pytest.mark.slow
def test_embedded_recipe_end_to_end_prints_wer_and_reruns_skip_done_stages(tmp_path):
    exp = tmp_path / "exp"
    tiny_corpus = {"NUM_TRAIN": "24", "NUM_DEV": "6", "NUM_TEST": "6"}
    # a front-end override reaches the statistics stage too, or training would refuse stats.pt
    args = ["--exp", str(exp), *TINY, "features.cmn=utterance"]
    r = run_recipe("synthetic", *args, env_extra=tiny_corpus)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert safe_load(exp / "lang" / "stats.pt")["features"]["cmn"] == "utterance"
    assert safe_load(exp / "train" / "model.pt")["features"]["cmn"] == "utterance"
    wer = re.search(r"WER (\d+\.\d+) %", r.stdout)
    assert wer, r.stdout[-2000:]
    summary = json.loads((exp / "eval_test" / "summary.json").read_text())
    assert abs(100 * summary["wer"] - float(wer.group(1))) < 0.006 and summary["utterances"] == 6
    assert sorted(p.name for p in (exp / ".done").iterdir()) == ["0.synthesize", "1.stats", "2.train", "3.evaluate"]
    r2 = run_recipe("synthetic", *args, env_extra=tiny_corpus)
    assert r2.returncode == 0 and r2.stdout.count("already done") == 4


@pytest.mark.slow
def test_recipe_stage_selection_and_unknown_option(tmp_path):
    r = run_recipe("an4", "--bogus")
    assert r.returncode == 2 and "unknown option --bogus" in r.stderr
    if not AN4.is_dir():
        pytest.skip(f"AN4 not found at {AN4}")
    r = run_recipe("an4", "--data-dir", str(AN4), "--exp", str(tmp_path / "exp"), "--stop-stage", "1")
    assert r.returncode == 0, r.stderr[-2000:]
    assert sum(1 for _ in open(tmp_path / "exp" / "data" / "test.jsonl")) == 130
    assert not (tmp_path / "exp" / "lang").exists()  # stage 2 was not selected


@pytest.mark.slow
@pytest.mark.skipif(not AN4.is_dir(), reason=f"AN4 not found at {AN4} (set ASR_AN4_DIR)")
def test_an4_recipe_tiny_run_from_shared_copy(tmp_path):
    exp = tmp_path / "exp"
    r = run_recipe("an4", "--data-dir", str(AN4), "--exp", str(exp), *TINY, "data.max_batch_duration_s=200",
                   env_extra={"LM_WEIGHTS": "0,1", "WORD_SCORES": "0"})  # a 2-job grid keeps stage 6 short
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    summary = json.loads((exp / "eval_test" / "summary.json").read_text())
    assert summary["utterances"] == 130 and summary["words"]["ref_len"] == 773
    assert 0.0 <= summary["wer"] and summary["failed"] == []
    assert (exp / "train" / "model.pt").is_file() and (exp / "lang" / "stats.pt").is_file()
    # stages 5-7: the KenLM binary built offline is what the test decode used, at the weights picked on dev
    best = json.loads((exp / "tune_lm" / "best.json").read_text())
    lm = json.loads((exp / "eval_test_beam_lm" / "summary.json").read_text())
    assert lm["decoder_settings"]["lm"] == str(exp / "lang" / "lm_3gram.bin")
    assert (exp / "lang" / "lm_3gram.bin").is_file()
    assert f"decoder.lm_weight={lm['decoder_settings']['lm_weight']:g}" in best["overrides"]
    assert json.loads((exp / "eval_test_beam" / "summary.json").read_text())["decoder"] == "beam"
    assert sorted(p.name for p in (exp / ".done").iterdir())[-3:] == ["5.lm", "6.tune_lm", "7.decode"]


@pytest.mark.slow
@pytest.mark.skipif(not AN4.is_dir(), reason=f"AN4 not found at {AN4} (set ASR_AN4_DIR)")
def test_an4_size_sweep_runs_jobs_side_by_side_scores_test_and_skips_finished_ones(tmp_path):
    exp = tmp_path / "exp"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    sweep = ["bash", str(ROOT / "recipes" / "an4" / "size_sweep.sh"), "--exp", str(exp)]
    r = subprocess.run(sweep, capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2 and f"{exp} does not exist: run recipes/an4/run.sh --stop-stage 2" in r.stderr
    exp.mkdir()
    r = subprocess.run(sweep, capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2 and f"{exp.resolve()}/data/train.jsonl is missing" in r.stderr  # stages 1-2 first
    r = run_recipe("an4", "--data-dir", str(AN4), "--exp", str(exp), "--stop-stage", "2")
    assert r.returncode == 0, r.stderr[-2000:]
    tiny = ["--jobs", "2", "--sizes", "16", "--layers", "1,2", "trainer.max_epochs=1", "trainer.tensorboard=false",
            "data.max_duration_s=1.5"]
    r = subprocess.run([*sweep, *tiny], capture_output=True, text=True, env=env, timeout=1200)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    rows = [line for line in (exp / "size" / "sweep_table.md").read_text().splitlines() if line.startswith("| lstm")]
    assert [row.split(" | ")[0] for row in rows] == ["| lstm_1x16", "| lstm_2x16"]
    for job in ("lstm_1x16", "lstm_2x16"):
        summary = json.loads((exp / "size" / job / "eval_test" / "summary.json").read_text())
        assert summary["utterances"] == 130
        assert json.loads((exp / "size" / job / "train_summary.json").read_text())["epochs"] == 1
    r = subprocess.run([*sweep, *tiny], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0 and r.stdout.count("done already") == 2


@pytest.mark.slow
@pytest.mark.skipif(not AN4.is_dir(), reason=f"AN4 not found at {AN4} (set ASR_AN4_DIR)")
def test_an4_ablation_trains_each_part_on_one_schedule_and_tables_every_condition(tmp_path):
    exp = tmp_path / "exp"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    ablation = ["bash", str(ROOT / "recipes" / "an4" / "ablation.sh"), "--exp", str(exp)]
    r = subprocess.run(ablation, capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2 and "run recipes/an4/run.sh --stop-stage 5" in r.stderr
    for stages in (("--stop-stage", "2"), ("--stage", "5", "--stop-stage", "5")):  # data, stats, lexicon + LM
        r = run_recipe("an4", "--data-dir", str(AN4), "--exp", str(exp), *stages)
        assert r.returncode == 0, r.stderr[-2000:]
    r = subprocess.run([*ablation, "--only", "recipe,nonsense"], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2 and "no part named 'nonsense'" in r.stderr
    tiny = ["--only", "recipe,silence", "--epochs", "1", "--jobs", "2", "--conditions", "clean,trimmed",
            "model.hidden_size=16", "model.num_layers=1", "trainer.tensorboard=false", "data.max_duration_s=1.5"]
    r = subprocess.run([*ablation, *tiny], capture_output=True, text=True, env=env, timeout=1200)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    table = (exp / "ablation" / "ablation_table.md").read_text().splitlines()
    assert table[0].startswith("| part | clean | trimmed | clean LM |")
    assert [row.split(" | ")[0] for row in table[2:]] == ["| recipe", "| silence"]
    config = (exp / "ablation" / "silence" / ".hydra" / "overrides.yaml").read_text()
    assert "augment.silence_prob=0.3" in config and "trainer.max_epochs=1" in config
    assert "silence_prob" not in (exp / "ablation" / "recipe" / ".hydra" / "overrides.yaml").read_text()
    r = subprocess.run([*ablation, *tiny], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0 and r.stdout.count("done already") == 2


SPEECHOCEAN = Path(os.environ.get("ASR_SPEECHOCEAN_DIR", ROOT.parent / "shared" / "data" / "speechocean762"))


def speechocean_subset(root: Path, out: Path, speakers: int = 30, per_speaker: int = 2) -> int:
    """A small Kaldi data directory: the first utterances of the first speakers, audio paths made absolute."""
    spk = dict(line.split(maxsplit=1) for line in (root / "train" / "utt2spk").read_text().splitlines())
    keep: dict[str, list[str]] = {}
    for utt, s in spk.items():
        if (s in keep or len(keep) < speakers) and len(keep.setdefault(s, [])) < per_speaker:
            keep[s].append(utt)
    utts = {u for us in keep.values() for u in us}
    (out / "train").mkdir(parents=True)
    for name in ("text", "wav.scp", "utt2spk", "spk2gender"):
        lines = (root / "train" / name).read_text().splitlines()
        key = (lambda k: k in utts) if name != "spk2gender" else (lambda k: k in keep)
        rows = [ln for ln in lines if key(ln.split(maxsplit=1)[0])]
        if name == "wav.scp":
            rows = [f"{ln.split(maxsplit=1)[0]} {root / ln.split(maxsplit=1)[1]}" for ln in rows]
        (out / "train" / name).write_text("\n".join(rows) + "\n")
    return len(utts)


@pytest.mark.slow
@pytest.mark.skipif(not (SPEECHOCEAN.is_dir() and AN4.is_dir()), reason="speechocean762 or AN4 not in ../shared/data")
def test_speechocean762_recipe_holds_speakers_out_mixes_an4_and_decodes_with_its_lm(tmp_path):
    n = speechocean_subset(SPEECHOCEAN, tmp_path / "so")
    exp = tmp_path / "exp"
    r = run_recipe("speechocean762", "--data-dir", str(tmp_path / "so"), "--an4-dir", str(AN4), "--exp", str(exp),
                   *TINY, "data.max_batch_duration_s=200", env_extra={"LM_WEIGHTS": "0", "WORD_SCORES": "0",
                                                                      "AN4_WEIGHT": "0.1"})
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    rows = {s: [json.loads(x) for x in (exp / "data" / f"{s}.jsonl").read_text().splitlines()]
            for s in ("train", "dev", "test")}
    assert sum(map(len, rows.values())) == n
    voices = {s: {x["speaker"] for x in r_} for s, r_ in rows.items()}
    assert len(voices["dev"]) == len(voices["test"]) == 3 and len(voices["train"]) == 24
    assert not (voices["dev"] | voices["test"]) & voices["train"] and not voices["dev"] & voices["test"]
    log = (exp / "train" / "train.log").read_text()
    assert f"train corpus {exp / 'data' / 'an4' / 'train.jsonl'}: weight 0.1, 870 usable utterances" in log
    assert f"train: {len(rows['train']) + 870} utterances" in log
    assert "'" in json.loads((exp / "lang" / "vocab.json").read_text())  # speechocean762 writes "it's"
    lm = json.loads((exp / "eval_test_beam_lm" / "summary.json").read_text())
    assert lm["utterances"] == len(rows["test"]) and lm["decoder_settings"]["lm"] == str(exp / "lang" / "lm_3gram.bin")
    r = run_recipe("speechocean762", "--an4-dir")
    assert r.returncode == 2 and "--an4-dir needs a value" in r.stderr
