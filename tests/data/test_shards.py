"""WebDataset tar shards: same samples as the files, random access by offset, damage named by shard and key."""

import json
import os
import tarfile

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import SR, TONE_TEXTS, write_tone_corpus

from asr.cli.shard import shard_main
from asr.data import shards
from asr.data.audio import AudioError, audio_info, load_audio
from asr.data.dataset import DurationBatchSampler, SpeechDataset, collate
from asr.data.manifest import read_manifest
from asr.data.shards import ShardError, split_member, write_shards
from asr.data.tokenizer import CharTokenizer
from asr.data.validate import validate_manifest


@pytest.fixture
def corpus(tmp_path):
    """The tone corpus plus two segments of one stereo file (offsets), so members are both copies and cuts."""
    manifest = write_tone_corpus(tmp_path / "corpus", TONE_TEXTS)
    rng = np.random.default_rng(1)
    sf.write(tmp_path / "corpus" / "long.wav", 0.1 * rng.standard_normal((3 * SR, 2)), SR, subtype="PCM_16")
    with open(manifest, "a") as f:
        for offset, text in ((0.5, "ab"), (1.7, "ca")):
            f.write(json.dumps({"audio_filepath": "long.wav", "offset": offset, "duration": 0.8, "text": text,
                                "id": f"long-{offset}", "speaker": "s1"}) + "\n")
    return manifest


def test_shards_hold_the_same_samples_ids_and_texts_as_the_files(corpus, tmp_path):
    r = write_shards(corpus, tmp_path / "sh", shard_size_mb=0.02)  # 20 kB: several shards
    assert r["utterances"] == 10 and r["skipped"] == [] and r["shards"] >= 3
    orig, packed = read_manifest(corpus), read_manifest(r["manifest"])
    assert [(u.utt_id, u.text, u.duration_s, u.speaker) for u in orig] == \
           [(u.utt_id, u.text, u.duration_s, u.speaker) for u in packed]
    for u, v in zip(orig, packed):
        assert split_member(v.audio_path) is not None and v.offset_s == 0.0
        dur = u.duration_s if u.offset_s else None
        a = load_audio(u.audio_path, SR, offset_s=u.offset_s, duration_s=dur)
        assert np.array_equal(a, load_audio(v.audio_path, SR)), u.utt_id
        assert np.array_equal(load_audio(u.audio_path, 8000, offset_s=u.offset_s, duration_s=dur),
                              load_audio(v.audio_path, 8000))  # resampled the same way
    assert audio_info(packed[0].audio_path) == audio_info(orig[0].audio_path)
    # the shard is a plain WebDataset tar: <key>.flac beside <key>.json, in manifest order
    with tarfile.open(tmp_path / "sh" / "shard-000000.tar") as tf:
        names = tf.getnames()
        meta = json.load(tf.extractfile(names[1]))
    assert names[0] == "000000000-train_000.flac" and names[1] == "000000000-train_000.json"
    assert meta == {"id": "audio/train_000.flac", "text": "abc", "duration": orig[0].duration_s}
    assert validate_manifest(r["manifest"], audio="decode")["fatal"] == 0
    assert validate_manifest(r["manifest"], audio="exists")["fatal"] == 0


def test_a_truncated_shard_names_shard_and_key_and_the_rest_still_reads(corpus, tmp_path):
    r = write_shards(corpus, tmp_path / "sh", shard_size_mb=1)
    packed = read_manifest(r["manifest"])
    shard = tmp_path / "sh" / "shard-000000.tar"
    last = packed[-1].audio_path
    with tarfile.open(shard) as tf:
        info = tf.getmember(last.rpartition("#")[2])
    os.truncate(shard, info.offset_data + info.size // 2)  # cut inside the last member's audio
    with pytest.raises(AudioError, match=r"shard-000000\.tar#000000009-long-1_7\.wav: truncated shard"):
        load_audio(last, SR)
    assert load_audio(packed[0].audio_path, SR).size > 0  # random access: earlier members are intact
    ds = SpeechDataset(packed, CharTokenizer(["<blank>", *"abc "]), SR)
    assert "truncated shard" in ds[9]["error"]  # training skips the utterance and names it
    assert [utt for utt, _ in ds.preload()] == [packed[9].utt_id]
    report = validate_manifest(r["manifest"], audio="exists")
    assert report["fatal"] == 1 and "000000009-long-1_7.wav" in report["problems"][0]["message"]
    # cut inside a header: the member is not in the index at all, and the message says the shard is damaged
    os.truncate(shard, info.offset_data - 300)
    with pytest.raises(AudioError, match="no such member in the shard; the shard is damaged"):
        load_audio(last, SR)


def test_an_existing_folder_is_kept_unless_overwrite_and_only_a_shard_folder_is_replaced(corpus, tmp_path):
    out = tmp_path / "sh"
    write_shards(corpus, out)
    with pytest.raises(ShardError, match="already exists"):
        write_shards(corpus, out)
    before = (out / "shard-000000.tar").stat().st_ino
    assert write_shards(corpus, out, overwrite=True)["utterances"] == 10
    assert (out / "shard-000000.tar").stat().st_ino != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "sh"]  # no temporary folder left behind
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ShardError, match="notes.txt"):
        write_shards(corpus, out, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine"


def test_cli_writes_shards_and_refuses_a_bad_size(corpus, tmp_path, capsys):
    assert shard_main([f"manifest={corpus}", f"out={tmp_path}/sh", "shard_size_mb=0.02"]) == 0
    assert "10 utterances in" in capsys.readouterr().out
    assert shard_main([f"manifest={corpus}", f"out={tmp_path}/sh"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert shard_main([f"manifest={corpus}", f"out={tmp_path}/other", "shard_size_mb=0"]) == 2
    assert "shard_size_mb must be > 0" in capsys.readouterr().err


def test_unreadable_audio_is_left_out_and_named(corpus, tmp_path):
    (corpus.parent / "audio" / "train_002.flac").write_bytes(b"not audio")
    r = write_shards(corpus, tmp_path / "sh")
    assert r["utterances"] == 9 and len(r["skipped"]) == 1 and "train_002.flac" in r["skipped"][0]


def test_a_file_whose_name_holds_a_hash_stays_a_file(tmp_path):
    odd = tmp_path / "take.tar#1.wav"
    sf.write(odd, np.zeros(1600, dtype=np.float32), SR)
    assert split_member(odd) is None and load_audio(odd, SR).shape == (1600,)
    assert split_member(tmp_path / "x.tar#a.flac") == (str(tmp_path / "x.tar"), "a.flac")
    with pytest.raises(AudioError, match="x.tar"):  # a missing shard is named
        load_audio(tmp_path / "x.tar#a.flac", SR)


def test_a_member_larger_than_the_bound_is_refused_before_reading(corpus, tmp_path, monkeypatch):
    r = write_shards(corpus, tmp_path / "sh")
    monkeypatch.setattr(shards, "MAX_MEMBER_BYTES", 100)
    with pytest.raises(AudioError, match="larger than any utterance"):
        load_audio(read_manifest(r["manifest"])[0].audio_path, SR)


def test_two_loader_workers_read_shards_as_one_process_reads_the_files(corpus, tmp_path):
    r = write_shards(corpus, tmp_path / "sh", shard_size_mb=0.02)
    tok = CharTokenizer(["<blank>", *"abc "])

    def batches(manifest, workers):
        utts = read_manifest(manifest)
        sampler = DurationBatchSampler([u.duration_s for u in utts], 2.0, seed=3)
        loader = torch.utils.data.DataLoader(SpeechDataset(utts, tok, SR), batch_sampler=sampler,
                                             collate_fn=collate, num_workers=workers)
        return [(b.utt_ids, b.waves) for b in loader]

    first = read_manifest(r["manifest"])[0].audio_path
    load_audio(first, SR)  # the parent holds open shards when the workers fork: each must open its own
    files, packed = batches(corpus, 0), batches(r["manifest"], 2)
    assert load_audio(first, SR).size > 0  # and the workers' exit closed none of the parent's
    assert len(files) == len(packed) >= 4
    for (ids_a, w_a), (ids_b, w_b) in zip(files, packed):
        assert ids_a == ids_b and torch.equal(w_a, w_b)


def test_open_handles_are_bounded_and_each_shard_is_indexed_once(corpus, tmp_path, monkeypatch):
    r = write_shards(corpus, tmp_path / "sh", shard_size_mb=0.02)
    packed = read_manifest(r["manifest"])
    scans = []
    real_index = shards._index
    monkeypatch.setattr(shards, "_index", lambda shard, size: scans.append(shard) or real_index(shard, size))
    monkeypatch.setattr(shards, "MAX_OPEN_SHARDS", 2)
    for _ in range(2):  # a second pass reopens evicted shards without rescanning them
        for u in packed:
            load_audio(u.audio_path, SR)
    mine = [p for p in shards._OPEN if p.startswith(str(tmp_path))]
    assert r["shards"] >= 3 and len(mine) <= 2
    assert sorted(scans) == sorted(str(tmp_path / "sh" / f"shard-{i:06d}.tar") for i in range(r["shards"]))
