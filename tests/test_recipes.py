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


LIBRISPEECH_SAMPLE = ROOT.parent / "shared" / "data" / "librispeech_sample"
# the LibriSpeech recipe, tiny: 1 x 32 BiLSTM, one epoch, 64 BPE pieces, no speed perturbation (its 100h settings
# would otherwise apply), no averaging (one epoch), decoding in the main process
LS_TINY = [*TINY, "trainer.progress=false", "data.vocab_size=64", "data.num_workers=0", "augment.speed_perturb=false",
           "trainer.average_last=0"]


@pytest.mark.slow
@pytest.mark.skipif(not LIBRISPEECH_SAMPLE.is_dir(), reason=f"{LIBRISPEECH_SAMPLE} not present")
def test_librispeech_recipe_tiny_run_on_the_sample_chapter(tmp_path):
    """prepare -> BPE + stats -> train -> evaluate on the one sample chapter. It is the only LibriSpeech audio
    here, so the same chapter (dev-clean 4088/158079, 19 utterances) is the train, dev and test set: the run
    checks the plumbing and the numbers it reports, not how well a model generalises."""
    exp = tmp_path / "exp"
    one_chapter = {"TRAIN_SUBSETS": "dev-clean", "DEV_SUBSETS": "dev-clean", "TEST_SUBSETS": "dev-clean"}
    args = ["--data-dir", str(LIBRISPEECH_SAMPLE), "--exp", str(exp), *LS_TINY]
    r = run_recipe("librispeech", *args, env_extra=one_chapter)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert "using the existing copy" in r.stdout and "vocabulary: 65 bpe symbols" in r.stdout
    assert sum(1 for _ in open(exp / "data" / "dev-clean.jsonl")) == 19
    assert (exp / "lang" / "tokenizer.model").is_file()
    bundle = safe_load(exp / "train" / "model.pt")
    assert bundle["tokenizer"]["kind"] == "bpe" and len(bundle["vocab"]) == 65
    assert bundle["model"]["hidden_size"] == 32 and bundle["config"]["data"]["vocab_size"] == 64
    summary = json.loads((exp / "eval_dev-clean" / "summary.json").read_text())
    assert summary["utterances"] == 19 and summary["words"]["ref_len"] == 776  # the chapter's 776 words, all scored
    wer = re.search(r"--- dev-clean\nWER (\d+\.\d+) %", r.stdout)
    assert wer and abs(100 * summary["wer"] - float(wer.group(1))) < 0.006, r.stdout[-2000:]
    assert r.stdout.count("--- dev-clean") == 1  # a subset named as dev and test is scored once
    assert sorted(p.name for p in (exp / ".done").iterdir()) == ["0.download", "1.prepare", "2.tokenizer_stats",
                                                                 "3.train", "4.evaluate"]
    r2 = run_recipe("librispeech", *args, env_extra=one_chapter)
    assert r2.returncode == 0 and r2.stdout.count("already done") == 5


def test_librispeech_recipe_download_stage_verifies_and_resumes(tmp_path):
    """Stage 0 against loopback servers (BASE_URL, CHECKSUMS): a bad checksum is refused and leaves nothing
    done; a download cut halfway resumes from its partial file, and stage 1 prepares what arrived."""
    import hashlib
    import io
    import tarfile

    from tests.corpora.test_librispeech import _Server, _tree

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(_tree(tmp_path / "fixture"), arcname="LibriSpeech")
    archive = buf.getvalue()
    bad, good = tmp_path / "bad.sha256", tmp_path / "good.sha256"
    bad.write_text(f"{'0' * 64}  dev-clean.tar.gz\n")
    good.write_text(f"{hashlib.sha256(archive).hexdigest()}  dev-clean.tar.gz\n")
    subsets = {"TRAIN_SUBSETS": "dev-clean", "DEV_SUBSETS": "dev-clean", "TEST_SUBSETS": "dev-clean"}
    exp = tmp_path / "exp"
    whole = _Server({"/ls/dev-clean.tar.gz": archive})
    cut = _Server({"/ls/dev-clean.tar.gz": archive}, drop_after=len(archive) // 2)  # its first reply stops halfway
    try:
        r = run_recipe("librispeech", "--exp", str(exp), "--stop-stage", "1",
                       env_extra={**subsets, "BASE_URL": whole.url, "CHECKSUMS": str(bad)})
        assert r.returncode != 0 and "SHA-256 mismatch" in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]
        assert not (exp / ".done").exists() and not (exp / "downloads" / "LibriSpeech").exists()
        r = run_recipe("librispeech", "--exp", str(exp), "--stop-stage", "1",
                       env_extra={**subsets, "BASE_URL": cut.url, "CHECKSUMS": str(good)})
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    finally:
        for server in (whole, cut):
            server.httpd.shutdown()
            server.httpd.server_close()
    # the cut download went on with a Range request from where its partial file stopped
    assert cut.requests == [("/ls/dev-clean.tar.gz", None), ("/ls/dev-clean.tar.gz", f"bytes={len(archive) // 2}-")]
    assert sorted(p.name for p in (exp / ".done").iterdir()) == ["0.download", "1.prepare"]
    assert [json.loads(line)["text"] for line in open(exp / "data" / "dev-clean.jsonl")] == \
        ["hello world", "it's a test", "good one"]


@pytest.mark.parametrize("size", ["100h", "960h"])
def test_librispeech_recipe_settings_compose_for_both_sizes(size):
    """recipes/librispeech/settings.sh, as run.sh passes it to asr train, composes against the schema."""
    from tests.test_docs import _check_overrides

    script = f'size={size}; source recipes/librispeech/settings.sh; printf "%s\\n" "${{ls_tokenizer[@]}}" ' \
             '"${ls_model[@]}" "${ls_training[@]}"; echo "subsets=${ls_train_subsets[*]}"'
    out = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    out = out.split("\n")
    overrides = [line for line in out if line and not line.startswith("subsets=")]
    assert "data.tokenizer=bpe" in overrides and any(o.startswith("data.vocab_size=") for o in overrides)
    _check_overrides("train", ["data=librispeech", *overrides])
    subsets = next(line for line in out if line.startswith("subsets=")).split("=", 1)[1].split()
    assert subsets == (["train-clean-100"] if size == "100h" else
                       ["train-clean-100", "train-clean-360", "train-other-500"])
    r = subprocess.run(["bash", "-c", "size=50h; source recipes/librispeech/settings.sh"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 2 and "SIZE must be 100h or 960h, got '50h'" in r.stderr


@pytest.mark.slow
@pytest.mark.skipif(not LIBRISPEECH_SAMPLE.is_dir(), reason=f"{LIBRISPEECH_SAMPLE} not present")
def test_librispeech_recipe_trains_under_torchrun_with_nproc(tmp_path):
    """NPROC=2 starts stage 3 through torchrun: two CPU processes (gloo) train one model on the sample chapter."""
    exp = tmp_path / "exp"
    one_chapter = {"TRAIN_SUBSETS": "dev-clean", "DEV_SUBSETS": "dev-clean", "TEST_SUBSETS": "dev-clean"}
    args = ["--data-dir", str(LIBRISPEECH_SAMPLE), "--exp", str(exp), *LS_TINY, "trainer.device=cpu"]
    r = run_recipe("librispeech", *args, "--stop-stage", "3", env_extra={**one_chapter, "NPROC": "2"})
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert "rank 0 of 2 joined the process group (gloo, cpu)" in r.stdout + r.stderr
    assert safe_load(exp / "train" / "checkpoints" / "last.pt")["world_size"] == 2
    assert safe_load(exp / "train" / "model.pt")["tokenizer"]["kind"] == "bpe"


@pytest.mark.slow
@pytest.mark.skipif(not (SPEECHOCEAN.is_dir() and AN4.is_dir()), reason="speechocean762 or AN4 not in ../shared/data")
def test_an4_recipe_trains_with_an_extra_corpus_at_its_weight_and_names_what_is_missing(tmp_path):
    r = run_recipe("an4", "--extra", "bogus=1", "--exp", str(tmp_path / "x"))
    assert r.returncode == 2 and "no corpus named 'bogus'" in r.stderr
    r = run_recipe("an4", "--extra", "speechocean762=0.2", "--exp", str(tmp_path / "x"))
    assert r.returncode == 2 and "speechocean762 not found: pass --speechocean-dir DIR" in r.stderr
    speechocean_subset(SPEECHOCEAN, tmp_path / "so", speakers=12, per_speaker=3)
    exp = tmp_path / "exp"
    r = run_recipe("an4", "--data-dir", str(AN4), "--exp", str(exp), "--stop-stage", "3", "--extra",
                   "speechocean762=0.5", "--speechocean-dir", str(tmp_path / "so"), *TINY,
                   "data.max_batch_duration_s=200")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    held = [json.loads(x) for x in (exp / "data" / "speechocean762" / "digits.jsonl").read_text().splitlines()]
    kept = [json.loads(x) for x in (exp / "data" / "speechocean762" / "train.jsonl").read_text().splitlines()]
    assert held and kept and not {x["speaker"] for x in held} & {x["speaker"] for x in kept}
    log = (exp / "train" / "train.log").read_text()
    assert f"train corpus {exp / 'data' / 'speechocean762' / 'train.jsonl'}: weight 0.5, {len(kept)} usable" in log
    assert (exp / "train" / "model.pt").is_file()
    (exp / ".done" / "3.train").unlink()
    r = run_recipe("an4", "--data-dir", str(AN4), "--exp", str(exp), "--stage", "3", "--stop-stage", "3",
                   "--extra", "synthetic=0.1", *TINY)
    assert r.returncode == 2 and "synthetic/train.jsonl is missing (stage 1 ran without --extra synthetic)" in r.stderr
