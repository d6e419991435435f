"""Data-parallel training and sharded transcription under ``torchrun`` (2 CPU processes, gloo).

Each test launches ``python -m torch.distributed.run --nproc-per-node=2`` on the tone corpus:
ranks must train on disjoint data and end with identical weights, resume exactly, share one
Hydra run directory, and a 2-rank transcription must equal the single-process one.
"""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import TONE_TEXTS, tiny_settings, train_tone_model, write_tone_corpus

from asr.config.schema import ConfigError
from asr.data.dataset import DurationBatchSampler
from asr.data.manifest import ManifestError, manifest_files, read_manifests
from asr.inference.outputs import TranscriptLog, iter_records
from asr.inference.transcribe import part_path, transcribe
from asr.models.checkpoint import safe_load

TESTS = Path(__file__).resolve().parents[1]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]


def torchrun(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    # faulthandler: should a rank still abort, its Python stacks are in the failure message
    # the ranks import asr from this checkout (a worktree's), not from wherever the package is installed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)]), "OMP_NUM_THREADS": "1",
           "PYTHONFAULTHANDLER": "1"}
    done = subprocess.run([*TORCHRUN, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def probe(out: Path, manifest: Path, *assignments: str) -> list[dict]:
    """Train under 2-rank torchrun through tests/ddp_probe.py; return each rank's record."""
    torchrun(str(TESTS / "ddp_probe.py"), str(out), str(manifest), "trainer.threads=1", *assignments)
    ranks = [json.loads((out / f"probe-{r}.json").read_text()) for r in range(2)]
    # the group must be gone before exit: one that outlives destroy_process_group made a rank abort at exit
    assert [r["group_freed"] for r in ranks] == [True, True]
    return ranks


def weights(path: Path) -> dict:
    return torch.load(path, weights_only=True)


# ---- without torchrun --------------------------------------------------------------------------

def test_manifest_lists_and_globs_expand_in_sorted_order(tmp_path):
    for name, texts in (("b", ["abc", "cab"]), ("a", ["c"]), ("c", ["b a c"])):
        write_tone_corpus(tmp_path / "shards", texts, name=name)
    pattern = str(tmp_path / "shards" / "*.jsonl")
    assert [p.name for p in manifest_files(pattern)] == ["a.jsonl", "b.jsonl", "c.jsonl"]
    assert [u.text for u in read_manifests([pattern])] == ["c", "abc", "cab", "b a c"]
    assert [u.text for u in read_manifests([tmp_path / "shards/c.jsonl", tmp_path / "shards/a.jsonl"])] == \
           ["b a c", "c"]
    with pytest.raises(ManifestError, match=r"nope-\*.jsonl: no manifest matches"):
        manifest_files(str(tmp_path / "nope-*.jsonl"))


def test_config_accepts_a_list_of_manifests_and_names_a_bad_entry():
    from asr.config.schema import Settings

    s = Settings.from_dict({"data": {"train_manifest": ["a.jsonl", "shards/*.jsonl"]}})
    assert s.data.train_manifest == ["a.jsonl", "shards/*.jsonl"]
    with pytest.raises(ConfigError, match=r"data.train_manifest"):
        Settings.from_dict({"data": {"train_manifest": ["a.jsonl", 3]}})


def test_sampler_cap_gives_ranks_with_their_own_data_equal_steps():
    long, short = DurationBatchSampler([1.0] * 9, 2.0), DurationBatchSampler([1.0] * 5, 2.0)
    assert (long.plan_length(), short.plan_length()) == (5, 3)
    for s in (long, short):
        s.max_batches = min(long.plan_length(), short.plan_length())
    assert len(list(long)) == len(list(short)) == 3 and long.plan_length() == 5


def test_rank_shards_need_enough_files_and_shared_vocabulary(tmp_path):
    from asr.training.distributed import World
    from asr.training.inputs import train_files_for_rank

    for i in range(3):
        write_tone_corpus(tmp_path, TONE_TEXTS[i::3], name=f"train-{i}")
    s = tiny_settings(str(tmp_path / "train-*.jsonl"))
    s = dataclasses.replace(s, data=dataclasses.replace(s.data, rank_shards=True))
    with pytest.raises(ConfigError, match="4 ranks"):
        train_files_for_rank(s, World(rank=0, size=4))
    with pytest.raises(ConfigError, match="data.vocab and data.stats"):
        train_files_for_rank(s, World(rank=1, size=2))


def test_merge_parts_folds_a_killed_runs_records_in_once(tmp_path):
    from asr.inference.outputs import make_record
    from asr.inference.transcribe import _merge_parts

    out = tmp_path / "out.jsonl"
    recs = [make_record(f"u{i}", f"/a/u{i}.wav", 1.0, f"text {i}") for i in range(5)]
    with TranscriptLog(part_path(out, 0)) as p0, TranscriptLog(part_path(out, 1)) as p1:
        p0.write(recs[0:2])
        p1.write(recs[2:4])
    with open(part_path(out, 1), "a") as f:
        f.write('{"id": "u9", "half a li')  # killed mid-write
    with TranscriptLog(out) as log:
        log.write([recs[4]])
        assert _merge_parts(out, log, keep=True) == 4
    assert [r["id"] for r in iter_records(out)] == ["u4", "u0", "u1", "u2", "u3"]
    assert not list(tmp_path.glob("*.part"))


# ---- under torchrun -----------------------------------------------------------------------------

def test_two_rank_training_splits_the_data_and_keeps_replicas_identical(tone_corpus, tmp_path):
    epochs = 3
    ranks = probe(tmp_path / "run", tone_corpus, f"trainer.max_epochs={epochs}", "data.max_batch_duration_s=1.3")
    seen = [r["seen"] for r in ranks]
    assert len(seen[0]) == len(seen[1]) > 0  # equal work: no rank waits at an epoch's end
    per_epoch = len(seen[0]) // epochs
    for e in range(epochs):
        mine = [{u for b in s[e * per_epoch:(e + 1) * per_epoch] for u in b} for s in seen]
        assert mine[0] and mine[1] and not mine[0] & mine[1], f"epoch {e}: ranks shared {mine[0] & mine[1]}"
    w0, w1 = weights(tmp_path / "run/weights-0.pt"), weights(tmp_path / "run/weights-1.pt")
    assert all(torch.equal(w0[k], w1[k]) for k in w0)
    saved = safe_load(tmp_path / "run/checkpoints/last.pt")
    assert saved["world_size"] == 2 and all(torch.equal(saved["model"][k], w0[k]) for k in w0)
    assert saved["state"]["step"] == per_epoch * epochs
    # both ranks computed the same sharded dev score, and only rank 0 wrote the log
    assert ranks[0]["summary"]["best_dev_wer"] == ranks[1]["summary"]["best_dev_wer"]
    assert len((tmp_path / "run/train_log.jsonl").read_text().splitlines()) == epochs


def test_out_of_memory_on_one_rank_is_split_there_and_keeps_the_two_rank_gradient(tone_corpus, tmp_path):
    # rank 1 runs out of memory on every batch of more than one utterance and retries it in pieces,
    # while rank 0 trains whole batches: the summed gradient must still be that of the unsplit step
    clean = probe(tmp_path / "clean", tone_corpus, "trainer.max_epochs=2")
    split = probe(tmp_path / "split", tone_corpus, "trainer.max_epochs=2", "probe.oom_rank=1")
    assert clean[0]["summary"]["oom_splits"] == 0
    assert split[0]["summary"]["oom_splits"] == split[1]["summary"]["oom_splits"] > 0  # both ranks count rank 1's
    assert [r["seen"] for r in split] == [r["seen"] for r in clean]  # same batches, no step skipped
    w0, w1, w = (weights(tmp_path / d / f"weights-{r}.pt") for d, r in (("split", 0), ("split", 1), ("clean", 0)))
    assert all(torch.equal(w0[k], w1[k]) for k in w0)
    # pieces only change the order of the sums: equal to rounding
    assert all(torch.allclose(w0[k], w[k], rtol=1e-4, atol=1e-6) for k in w0)
    assert split[0]["summary"]["best_dev_wer"] == clean[0]["summary"]["best_dev_wer"]


def test_non_finite_loss_on_one_rank_skips_the_step_on_both(tone_corpus, tmp_path):
    ranks = probe(tmp_path / "run", tone_corpus, "trainer.max_epochs=1", "probe.nan_rank=1", "probe.nan_call=1")
    assert [r["summary"]["skipped_batches"] for r in ranks] == [1, 1]
    w0, w1 = weights(tmp_path / "run/weights-0.pt"), weights(tmp_path / "run/weights-1.pt")
    assert all(torch.equal(w0[k], w1[k]) for k in w0)
    assert safe_load(tmp_path / "run/checkpoints/last.pt")["state"]["skipped_batches"] == 1


@pytest.mark.slow
def test_two_rank_resume_continues_exactly(tone_corpus, tmp_path):
    common = ["data.max_batch_duration_s=1.3", "model.dropout=0.2"]  # dropout: each rank's RNG must come back
    probe(tmp_path / "straight", tone_corpus, "trainer.max_epochs=2", *common)
    probe(tmp_path / "cut", tone_corpus, "trainer.max_epochs=1", *common)
    probe(tmp_path / "cut", tone_corpus, "trainer.max_epochs=2", "trainer.resume=true", *common)
    a, b = (safe_load(tmp_path / d / "checkpoints/last.pt") for d in ("straight", "cut"))
    assert a["state"]["step"] == b["state"]["step"]
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    logs = [[json.loads(x)["train_loss"] for x in (tmp_path / d / "train_log.jsonl").read_text().splitlines()]
            for d in ("straight", "cut")]
    assert logs[0] == logs[1]
    from asr.training.train import train

    one = tiny_settings(tone_corpus, resume=True, max_epochs=3)
    one = dataclasses.replace(one, model=dataclasses.replace(one.model, dropout=0.2))  # the run's own settings
    with pytest.raises(ConfigError, match="run of 2 process"):  # one process cannot continue it exactly
        train(one, tmp_path / "cut")


def test_two_ranks_streaming_from_tar_shards_train_as_they_do_from_the_files(tone_corpus, tmp_path):
    from asr.data.shards import write_shards

    sharded = write_shards(tone_corpus, tmp_path / "sh", shard_size_mb=0.02)["manifest"]
    common = ["trainer.max_epochs=2", "data.max_batch_duration_s=1.3", "data.preload=false"]
    files = probe(tmp_path / "files", tone_corpus, *common)
    packed = probe(tmp_path / "shards", sharded, f"data.dev_manifest={sharded}", *common)
    assert [r["seen"] for r in files] == [r["seen"] for r in packed]  # the same utterances on the same rank
    assert not {u for b in packed[0]["seen"] for u in b} & {u for b in packed[1]["seen"] for u in b}
    a, b = weights(tmp_path / "files/weights-0.pt"), weights(tmp_path / "shards/weights-0.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_rank_shards_each_rank_reads_only_its_own_manifests(tmp_path):
    from asr.frontend.features import FeatureConfig
    from asr.frontend.stats import build_vocab, compute_stats, save_stats, save_vocab

    texts = TONE_TEXTS + ["ba", "ca", "cb", "a c"]
    shards = [write_tone_corpus(tmp_path / "corpus", texts[i::3], name=f"train-{i}", seed=i) for i in range(3)]
    utts = read_manifests(shards)
    save_vocab(tmp_path / "vocab.json", build_vocab(utts))
    save_stats(tmp_path / "stats.pt", compute_stats(utts, FeatureConfig()))
    ranks = probe(tmp_path / "run", str(tmp_path / "corpus/train-*.jsonl"), "trainer.max_epochs=2",
                  "data.max_batch_duration_s=1.3", "data.rank_shards=true", f"data.vocab={tmp_path}/vocab.json",
                  f"data.stats={tmp_path}/stats.pt", f"data.dev_manifest={shards[0]}")
    own = [{u.utt_id for u in read_manifests(shards[r::2])} for r in range(2)]
    seen = [{u for b in r["seen"] for u in b} for r in ranks]
    # utterance ids are paths inside the corpus folder: rank 0 reads train-0 and train-2, rank 1 train-1
    assert seen[0] <= own[0] and seen[1] <= own[1] and seen[0] and seen[1]
    assert len(ranks[0]["seen"]) == len(ranks[1]["seen"])


@pytest.mark.slow
def test_torchrun_cli_ranks_share_one_run_directory(tone_corpus, tmp_path):
    exp = tmp_path / "exp"
    # microseconds in the name: ranks that resolved ${now:...} themselves would get two directories
    torchrun("-m", "asr", "train", f"data.train_manifest={tone_corpus}", f"data.dev_manifest={tone_corpus}",
             "data.max_batch_duration_s=1.3", "data.max_duration_s=1.3",
             "model.hidden_size=16", "model.num_layers=1", "augment=none", "trainer.max_epochs=1",
             "trainer.threads=1", "trainer.device=cpu", "trainer.tensorboard=false",
             f"hydra.run.dir={exp}/" + "${now:%H-%M-%S-%f}", cwd=tmp_path)
    (run,) = list(exp.iterdir())
    assert {p.name for p in run.iterdir()} >= {".hydra", "train.log", "config.resolved.yaml", "model.pt",
                                               "checkpoints", "train_log.jsonl", "train_summary.json"}
    assert (run / "train.log").read_text().count("run directory") == 1  # rank 1 wrote no log file
    assert {p.name for p in tmp_path.iterdir()} == {"exp", "corpus"}  # nor anything in its working directory


@pytest.fixture(scope="module")
def tone_model(tmp_path_factory):
    return train_tone_model(tmp_path_factory.mktemp("tone"))


def test_two_rank_transcription_equals_single_process_and_resumes(tone_model, tmp_path):
    model_file, manifest = tone_model
    from asr.models.checkpoint import load_model

    model, tokenizer, _ = load_model(model_file)
    single = transcribe(model, tokenizer, manifest, tmp_path / "single.jsonl", num_workers=0,
                        max_batch_duration_s=1.5)
    expected = (tmp_path / "single.jsonl").read_text()
    args = ["-m", "asr", "transcribe", f"model={model_file}", f"input={manifest}", "batch.max_duration_s=1.5",
            "batch.num_workers=0", "threads=1", "device=cpu", f"hydra.run.dir={tmp_path}/hydra"]
    torchrun(*args, f"output={tmp_path}/two.jsonl", "format=[jsonl,srt]")
    assert (tmp_path / "two.jsonl").read_text() == expected
    summary = json.loads((tmp_path / "two.jsonl.summary.json").read_text())
    assert summary["processes"] == 2 and summary["this_run"]["files"] == single["files"] == len(TONE_TEXTS)
    assert summary["scores"]["wer"] == single["scores"]["wer"] == 0.0
    assert len(list((tmp_path / "two_srt").rglob("*.srt"))) == len(TONE_TEXTS)  # derived formats: rank 0 only
    assert not list(tmp_path.glob("*.part"))
    # a killed 2-rank run left 3 finished records in its parts (and a torn line), 1 already merged: 4 left to do
    lines = expected.splitlines(keepends=True)
    part_path(tmp_path / "resumed.jsonl", 0).write_text(lines[0] + lines[5])
    part_path(tmp_path / "resumed.jsonl", 1).write_text(lines[2] + lines[3][:20])
    (tmp_path / "resumed.jsonl").write_text(lines[7])
    torchrun(*args, f"output={tmp_path}/resumed.jsonl")
    assert (tmp_path / "resumed.jsonl").read_text() == expected
    summary = json.loads((tmp_path / "resumed.jsonl.summary.json").read_text())
    assert (summary["this_run"]["files"], summary["this_run"]["resumed_files"]) == (4, 4)


# ---- cluster launch ------------------------------------------------------------------------------

def test_sbatch_template_starts_one_torchrun_per_node_with_a_shared_rendezvous(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text("#!/bin/sh\nprintf 'gpu-17\\ngpu-18\\n'\n")
    (bin_dir / "srun").write_text('#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n')  # print, do not run
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints/last.pt").write_bytes(b"")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SLURM_JOB_NODELIST": "gpu-[17-18]",
           "SLURM_NNODES": "2", "SLURM_GPUS_PER_NODE": "a100:4", "SLURM_JOB_ID": "4242", "RUN_DIR": str(run_dir)}
    done = subprocess.run(["bash", str(TESTS.parent / "recipes/slurm/train.sbatch"), "data=an4", "model=small"],
                          capture_output=True, text=True, env=env, check=True)
    args = done.stdout.splitlines()[1:]
    assert args[:5] == ["--kill-on-bad-exit=1", "python", "-m", "torch.distributed.run", "--nnodes=2"]
    assert "--nproc-per-node=4" in args and "--rdzv-endpoint=gpu-17:29500" in args and "--rdzv-id=4242" in args
    assert args[-7:] == ["-m", "asr", "train", f"hydra.run.dir={run_dir}", "trainer.resume=true", "data=an4",
                         "model=small"]


def test_slurm_sweep_launcher_config_composes():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    done = subprocess.run([sys.executable, "-m", "asr", "train", "hydra/launcher=slurm", "hydra.launcher.partition=gpu",
                           "--cfg", "hydra", "--package", "hydra.launcher"], capture_output=True, text=True, check=True)
    assert "SlurmLauncher" in done.stdout and "partition: gpu" in done.stdout and "gpus_per_node: 1" in done.stdout
