import json

import pytest

from asr.data.dataset import DurationBatchSampler, ctc_min_frames, filter_utterances, make_batches
from asr.data.manifest import ManifestError, Utterance, read_manifest
from asr.data.tokenizer import CharTokenizer
from asr.frontend.features import FeatureConfig, output_frames_for_duration

DURS = [1.0, 2.0, 3.5, 0.7, 2.2, 5.0, 1.1, 1.3, 4.4, 0.9, 2.8, 3.1]


def test_batches_respect_padded_duration_cap_and_cover_every_utterance_once():
    batches = make_batches(DURS, 6.0, seed=1, epoch=0, sort_jitter=0.1)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(len(DURS)))
    for b in batches:
        assert len(b) == 1 or len(b) * max(DURS[i] for i in b) <= 6.0


def test_batches_depend_only_on_seed_and_epoch():
    assert make_batches(DURS, 6.0, seed=3, epoch=2) == make_batches(DURS, 6.0, seed=3, epoch=2)
    assert make_batches(DURS, 6.0, seed=3, epoch=2, sort_jitter=0.2) != make_batches(DURS, 6.0, seed=3, epoch=3,
                                                                                     sort_jitter=0.2)


def test_ddp_ranks_get_disjoint_equal_shares():
    ranks = [DurationBatchSampler(DURS, 4.0, seed=0, rank=r, world_size=2) for r in range(2)]
    shares = [list(s) for s in ranks]
    assert len(shares[0]) == len(shares[1]) > 0
    ids = [[i for b in share for i in b] for share in shares]
    assert not set(ids[0]) & set(ids[1])


def test_ddp_ranks_split_every_global_batch_at_most_one_utterance_over_their_cap():
    durs = [0.5 + (i * 37 % 23) / 10 for i in range(60)]
    ranks = [DurationBatchSampler(durs, 4.0, seed=7, sort_jitter=0.1, rank=r, world_size=2) for r in range(2)]
    for s in ranks:
        s.set_epoch(3)
    shares = [list(s) for s in ranks]
    glob = [b for b in make_batches(durs, 8.0, seed=7, epoch=3, sort_jitter=0.1) if len(b) >= 2]
    assert len(shares[0]) == len(shares[1]) == len(glob) > 5  # every rank steps once per global batch
    for step, (a, b) in enumerate(zip(*shares)):
        assert sorted(a + b) == sorted(glob[step]) and not set(a) & set(b)
        assert all((len(x) - 1) * max(durs[i] for i in x) <= 4.0 for x in (a, b))  # at most one over the cap
        assert abs(len(a) - len(b)) <= 1


def test_two_ranks_at_half_the_cap_step_like_one_process():
    durs = [0.5 + (i * 37 % 23) / 10 for i in range(60)]
    single = DurationBatchSampler(durs, 8.0, seed=1, sort_jitter=0.05)
    ranks = [DurationBatchSampler(durs, 4.0, seed=1, sort_jitter=0.05, rank=r, world_size=2) for r in range(2)]
    for s in (single, *ranks):
        s.set_epoch(2)
    steps = [sorted(a + b) for a, b in zip(*map(list, ranks))]
    assert steps == [sorted(b) for b in single if len(b) >= 2]  # a one-utterance batch cannot be shared
    assert len(steps) >= len(list(single)) - 1


def test_sortagrad_epochs_go_shortest_first_then_shuffle():
    s = DurationBatchSampler(DURS, 4.0, seed=2, sortagrad_epochs=1)
    longest = [max(DURS[i] for i in b) for b in s]  # epoch 0: ascending
    assert longest == sorted(longest) and len(longest) > 2
    s.set_epoch(1)
    assert [max(DURS[i] for i in b) for b in s] != longest  # later epochs are shuffled


def test_sampler_resumes_mid_epoch_with_the_batches_not_yet_seen():
    s = DurationBatchSampler(DURS, 4.0, seed=5, sort_jitter=0.1)
    s.set_epoch(3)
    full = list(s)
    s2 = DurationBatchSampler(DURS, 4.0, seed=5, sort_jitter=0.1)
    s2.set_epoch(3)
    it = iter(s2)
    first = [next(it), next(it)]
    state = s2.state_dict()
    assert state == {"epoch": 3, "start_batch": 2}
    s3 = DurationBatchSampler(DURS, 4.0, seed=5, sort_jitter=0.1)
    s3.load_state_dict(state)
    assert first + list(s3) == full


def test_ctc_min_frames_counts_repeats():
    assert ctc_min_frames([1, 2, 3]) == 3
    assert ctc_min_frames([1, 1, 2, 2, 2]) == 8


def test_infeasible_utterance_is_dropped_and_named(caplog):
    tok = CharTokenizer.build(["hello there", "hi"])
    utts = [Utterance("ok", "/a.wav", 1.0, "hi"),
            Utterance("too-long-text", "/b.wav", 0.2, "hello there hello there"),
            Utterance("odd-chars", "/c.wav", 1.0, "hi!"),
            Utterance("too-short", "/d.wav", 0.05, "hi")]
    frames = lambda d: output_frames_for_duration(FeatureConfig(), d)  # noqa: E731
    with caplog.at_level("WARNING"):
        kept = filter_utterances(utts, tok, frames, min_duration_s=0.1, max_duration_s=30, split="train")
    assert [u.utt_id for u in kept] == ["ok"]
    for name in ("too-long-text", "odd-chars", "too-short"):
        assert name in caplog.text
    assert "needs 25 CTC frames" in caplog.text and "gives 6" in caplog.text


def test_manifest_errors_name_file_and_line(tmp_path):
    m = tmp_path / "m.jsonl"
    m.write_text(json.dumps({"audio_filepath": "a.wav", "duration": 1.0, "text": "x"}) + "\n{not json\n")
    with pytest.raises(ManifestError, match=r"m.jsonl:2: not valid JSON"):
        read_manifest(m)
    m.write_text(json.dumps({"audio_filepath": "a.wav", "duration": -1, "text": "x"}) + "\n")
    with pytest.raises(ManifestError, match=r"m.jsonl:1: 'duration'"):
        read_manifest(m)
    m.write_text(json.dumps({"audio_filepath": "../../etc/passwd", "duration": 1, "text": "x"}) + "\n")
    with pytest.raises(ManifestError, match="escapes"):
        read_manifest(m)


def test_manifest_paths_are_relative_to_the_manifest(tmp_path):
    (tmp_path / "sub").mkdir()
    m = tmp_path / "sub" / "m.jsonl"
    m.write_text(json.dumps({"audio_filepath": "audio/x.flac", "duration": 1.5, "text": "yes"}) + "\n")
    (u,) = read_manifest(m)
    assert u.audio_path == str((tmp_path / "sub" / "audio" / "x.flac").resolve())
    assert (u.duration_s, u.text, u.utt_id) == (1.5, "yes", "audio/x.flac")


def _items(sampler, epoch):
    sampler.set_epoch(epoch)
    return sorted(k for b in sampler for k in b)


def test_sampling_weights_repeat_or_subsample_each_utterance_per_seeded_epoch():
    durs = [1.0 + 0.01 * i for i in range(200)]
    plain = DurationBatchSampler(durs, 8.0, seed=3)
    ones = DurationBatchSampler(durs, 8.0, seed=3, weights=[1.0] * 200)
    plain.set_epoch(2), ones.set_epoch(2)
    assert list(ones) == list(plain)  # weight 1 everywhere is the unweighted plan
    twice = DurationBatchSampler(durs, 8.0, seed=3, weights=[2.0] * 100 + [0.5] * 100)
    epoch0, epoch1 = _items(twice, 0), _items(twice, 1)
    assert [epoch0.count(i) for i in range(100)] == [2] * 100  # weight 2: every utterance twice
    halves = [i for i in epoch0 if i >= 100]
    assert 35 <= len(halves) <= 65 and len(set(halves)) == len(halves)  # weight 0.5: about half, once each
    assert halves != [i for i in epoch1 if i >= 100]  # another half next epoch
    assert _items(DurationBatchSampler(durs, 8.0, seed=3, weights=[2.0] * 100 + [0.5] * 100), 0) == epoch0


def test_weighted_copies_are_tagged_so_each_hears_its_own_augmentation():
    from asr.data.augment import utterance_rng

    s = DurationBatchSampler([1.0, 1.1], 10.0, seed=0, tag_epoch=True, weights=[2.0, 1.0])
    s.set_epoch(4)
    keys = sorted(k for b in s for k in b)
    assert keys == [(0, 4), (0, 4, 1), (1, 4)]
    first, again = utterance_rng(0, 4, 0).random(), utterance_rng(0, 4, 0, 1).random()
    assert first == utterance_rng(0, 4, 0, 0).random() and first != again  # copy 0 draws what it always drew


def test_weighted_plan_is_shared_by_ranks_and_resumes_mid_epoch():
    durs = [1.0 + 0.03 * (i % 17) for i in range(60)]
    w = [1.5] * 30 + [0.7] * 30
    single = DurationBatchSampler(durs, 8.0, seed=5, weights=w)
    ranks = [DurationBatchSampler(durs, 4.0, seed=5, rank=r, world_size=2, weights=w) for r in range(2)]
    assert sorted(_items(ranks[0], 1) + _items(ranks[1], 1)) == sorted(
        k for b in (single.set_epoch(1) or single) if len(b) >= 2 for k in b)
    run = DurationBatchSampler(durs, 4.0, seed=5, weights=w)
    run.set_epoch(2)
    it = iter(run)
    head = [next(it) for _ in range(3)]
    again = DurationBatchSampler(durs, 4.0, seed=5, weights=w)
    again.load_state_dict(run.state_dict())
    again.set_epoch(2)
    full = DurationBatchSampler(durs, 4.0, seed=5, weights=w)
    full.set_epoch(2)
    assert head + list(again) == list(full)
    with pytest.raises(ValueError, match="one positive weight per utterance"):
        DurationBatchSampler(durs, 4.0, weights=[1.0] * 59)


def test_ctc_feasibility_counts_pieces_with_a_subword_tokenizer(tmp_path, caplog):
    """A transcript too long in characters for its audio fits once it is spelled in (fewer) BPE pieces;
    filter_utterances and asr validate both count the tokenizer's ids, not the characters."""
    from asr.data.tokenizer import PieceTokenizer
    from asr.data.validate import validate_manifest

    text = "hello there hello there"
    tok = PieceTokenizer.train([text, "hello", "there hello"] * 4, "bpe", vocab_size=12)
    pieces = ctc_min_frames(tok.encode(text))
    chars = CharTokenizer.build([text])
    features = FeatureConfig()
    duration = next(d / 100 for d in range(1, 200) if output_frames_for_duration(features, d / 100) >= pieces)
    assert pieces < ctc_min_frames(chars.encode(text)) and output_frames_for_duration(features, duration) < \
        ctc_min_frames(chars.encode(text))  # enough frames for the pieces, too few for the characters
    utts = [Utterance("u", "/a.wav", duration, text)]
    frames = lambda d: output_frames_for_duration(features, d)  # noqa: E731
    assert filter_utterances(utts, tok, frames, min_duration_s=0.01, max_duration_s=30, split="train") == utts
    assert filter_utterances(utts, chars, frames, min_duration_s=0.01, max_duration_s=30, split="train") == []
    manifest = tmp_path / "m.jsonl"
    import numpy as np
    import soundfile as sf

    sf.write(tmp_path / "a.wav", np.zeros(int(duration * 16000), dtype=np.float32), 16000)
    manifest.write_text(json.dumps({"audio_filepath": "a.wav", "duration": duration, "text": text}) + "\n")
    kinds = lambda tokenizer: {p["kind"] for p in validate_manifest(manifest, features=features,  # noqa: E731
                                                                tokenizer=tokenizer, audio="header")["problems"]}
    assert "transcript_too_long" not in kinds(tok) and "transcript_too_long" in kinds(chars)
