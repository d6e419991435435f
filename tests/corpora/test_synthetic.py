"""The synthetic AN4-domain corpus: determinism, manifests, voice split, letter names, idempotency."""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from asr.corpora.synthetic import (
    generate_corpus,
    load_domain,
    make_spec,
    number_words,
    render,
    synthesize,
    to_ssml,
)
from asr.data.audio import audio_info, load_audio
from asr.data.manifest import read_manifest
from asr.data.text import normalize_text

SIZES = {"train": 6, "dev": 2, "test": 3}
TINY = dict(num_train=6, num_dev=2, num_test=3, seed=3, num_workers=1)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    """The same tiny corpus generated twice, into two directories: in this process and by two workers."""
    a, b = tmp_path_factory.mktemp("a") / "corpus", tmp_path_factory.mktemp("b") / "corpus"
    return (a, generate_corpus(a, **TINY)), (b, generate_corpus(b, **{**TINY, "num_workers": 2}))


@pytest.fixture(scope="module")
def domain():
    return load_domain()


def _files(root):
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_same_seed_gives_identical_manifests_and_audio_whatever_the_worker_count(corpora):
    (a, paths_a), (b, paths_b) = corpora
    assert sorted(paths_a) == ["dev", "test", "train"]
    for split in paths_a:
        assert paths_a[split] == a / f"{split}.jsonl"
        assert paths_a[split].read_bytes() == paths_b[split].read_bytes()
    flacs_a = [p.relative_to(a) for p in _files(a / "audio")]
    assert flacs_a == [p.relative_to(b) for p in _files(b / "audio")]
    assert len(flacs_a) == sum(SIZES.values())
    for rel in flacs_a:
        samples_a, _ = sf.read(a / rel, dtype="int16")
        samples_b, _ = sf.read(b / rel, dtype="int16")
        np.testing.assert_array_equal(samples_a, samples_b)
        assert (a / rel).read_bytes() == (b / rel).read_bytes()


def test_manifests_match_the_audio(corpora):
    (root, paths), _ = corpora
    for split, path in paths.items():
        utts = read_manifest(path)
        assert len(utts) == SIZES[split]
        for utt in utts:
            info = audio_info(utt.audio_path)
            assert info.sample_rate_hz == 16000 and info.num_channels == 1
            assert utt.duration_s == round(info.num_frames / 16000, 4)
            assert 0.5 < utt.duration_s < 15
            assert utt.text and utt.text == normalize_text(utt.text)
            assert utt.audio_path.startswith(str((root / "audio" / split).resolve()))
            rms = float(np.sqrt(np.mean(load_audio(utt.audio_path, 16000) ** 2)))
            assert rms > 0.005, f"{utt.utt_id} is nearly silent (RMS {rms:.4f})"
        records = [json.loads(line) for line in path.read_text().splitlines()]
        assert all(rec["audio_filepath"].startswith(f"audio/{split}/") for rec in records)
        assert all("+" in rec["speaker"] and rec["kind"] for rec in records)


def test_test_voices_are_never_train_voices(corpora, domain):
    (_, paths), _ = corpora
    speakers = {split: {json.loads(line)["speaker"] for line in path.read_text().splitlines()}
                for split, path in paths.items()}
    assert not speakers["test"] & speakers["train"]
    # The split holds for any corpus size: variants, hence voices, are partitioned by split.
    voices = {split: {make_spec(0, split, i, domain).voice for i in range(400)} for split in ("train", "dev", "test")}
    variants = {split: {v.split("+")[1] for v in vs} for split, vs in voices.items()}
    assert not variants["test"] & variants["train"] and not variants["dev"] & variants["train"]
    assert not variants["test"] & variants["dev"]
    assert variants["test"] <= set(domain["voices"]["variants"]["test"])
    assert len(voices["train"]) > 100 and len(voices["test"]) > 40  # accents x variants


def test_utterance_is_a_function_of_seed_split_index(domain):
    spec = make_spec(5, "train", 7, domain)
    assert make_spec(5, "train", 7, domain) == spec
    assert make_spec(5, "dev", 7, domain) != spec and make_spec(6, "train", 7, domain) != spec
    first = render(spec, domain, 16000)
    render(make_spec(5, "train", 8, domain), domain, 16000)  # eSpeak state must not leak into the next one
    np.testing.assert_array_equal(render(spec, domain, 16000), first)


def test_breath_noise_does_not_follow_the_clock():
    # eSpeak seeds its breath noise from time(); "+victor" breathes, so without a fixed seed
    # the samples change when the second changes.
    first = synthesize("s u e", voice="en+victor", noise_seed=11).samples
    time.sleep(1.05)
    np.testing.assert_array_equal(synthesize("s u e", voice="en+victor", noise_seed=11).samples, first)


def test_letters_are_spoken_as_letter_names(domain):
    # Plain text makes "a" the article (phoneme a#); spelling mode says its name /eI/.
    plain = synthesize("a b a", voice="en-us", with_phonemes=True).phonemes
    assert "a#" in plain
    spelled = synthesize(to_ssml(["a", "b", "a"], domain), voice="en-us", ssml=True, with_phonemes=True)
    vowels = [p for p in spelled.phonemes if not p.startswith("_")]
    assert "a#" not in vowels
    assert sum(p.strip("',") == "eI" for p in vowels) == 2
    assert sum(p.strip("',") == "i:" for p in vowels) == 1  # "b" is "bee"
    assert spelled.sample_rate_hz == 22050 and spelled.samples.dtype == np.int16


def test_to_ssml_spells_letter_runs_and_respells_words(domain):
    ssml = to_ssml(["rubout", "h", "i", "two", "a"], domain, spaced_letters=True)
    assert ssml == ('<speak>rub out <say-as interpret-as="characters">h i</say-as> two '
                    '<say-as interpret-as="characters">a</say-as></speak>')


@pytest.mark.parametrize("n, words", [(0, "zero"), (7, "seven"), (15, "fifteen"), (40, "forty"), (99, "ninety nine"),
                                      (100, "one hundred"), (2405, "two thousand four hundred five"),
                                      (9011, "nine thousand eleven")])
def test_number_words(domain, n, words):
    assert " ".join(number_words(n, domain)) == words


def test_rerun_with_same_parameters_is_a_no_op(corpora):
    (root, paths), _ = corpora
    before = {p: p.stat().st_mtime_ns for p in _files(root)}
    start = time.perf_counter()
    assert generate_corpus(root, **TINY) == paths
    assert time.perf_counter() - start < 1.0
    assert {p: p.stat().st_mtime_ns for p in _files(root)} == before


def test_other_parameters_are_refused(corpora, capsys):
    (root, _), _ = corpora
    before = {p: p.stat().st_mtime_ns for p in _files(root)}
    with pytest.raises(FileExistsError, match=str(root)):
        generate_corpus(root, **{**TINY, "seed": 4})
    from asr.cli.corpora import synthesize_main

    assert synthesize_main(["--out", str(root), "--num-train", "7", "--num-dev", "2", "--num-test", "3"]) == 2
    assert "num_train=6 there vs 7 asked" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in _files(root)} == before


def test_unrelated_directory_is_refused_and_overwrite_replaces(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="notes.txt"):
        generate_corpus(tmp_path, **TINY)
    paths = generate_corpus(tmp_path, **{**TINY, "num_train": 2, "num_test": 1}, overwrite=True)
    assert [len(read_manifest(paths[s])) for s in ("train", "dev", "test")] == [2, 2, 1]
    assert json.loads((tmp_path / ".done").read_text())["params"]["num_train"] == 2
    assert len(list((tmp_path / "audio").rglob("*.flac"))) == 5


def test_missing_espeak_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)  # import fails as if not installed
    with pytest.raises(RuntimeError, match="pip install espeakng-loader"):
        synthesize("one")
    with pytest.raises(RuntimeError, match="pip install espeakng-loader"):
        generate_corpus(tmp_path / "corpus", **TINY)


def test_unloadable_library_is_a_clear_error(monkeypatch):
    import espeakng_loader

    monkeypatch.setattr(espeakng_loader, "get_library_path", lambda: "/nonexistent/libespeak-ng.so")
    with pytest.raises(RuntimeError, match="pip install espeakng-loader"):
        synthesize("one")
