"""Streaming recognition equals offline recognition, for every model type that can stream (must-show 1)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from asr.data.audio import load_audio
from asr.data.discover import list_inputs, probe_durations
from asr.inference.streaming import Stream, StreamingError, StreamingRecognizer, run_blocks
from asr.inference.transcribe import transcribe_utterances
from asr.models.checkpoint import load_model, safe_load
from tests.conftest import SR, TONE_TEXTS, tiny_settings, tone_audio, write_tone_corpus

STREAMING_MODELS = {
    "uni_lstm": {"bidirectional": False, "rnn_type": "lstm"},
    "uni_gru": {"bidirectional": False, "rnn_type": "gru"},
    "lc_blstm": {"chunk_s": 0.24, "right_context_s": 0.12, "rnn_type": "lstm", "edge_pad_s": 0.3},
    "lc_bgru": {"chunk_s": 0.3, "right_context_s": 0.09, "rnn_type": "gru"},
}


def train_model(root: Path, manifest: Path, **model) -> Path:
    """A tiny model of the given kind trained for a few seconds on the tone corpus; returns its model file."""
    from asr.training.train import train

    s = tiny_settings(manifest, max_epochs=60 if model.get("bidirectional") is False else 25)
    train(dataclasses.replace(s, model=dataclasses.replace(s.model, **model)), root)
    return root / "model.pt"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_tone_corpus(tmp_path_factory.mktemp("tones") / "corpus", TONE_TEXTS)


@pytest.fixture(scope="module")
def long_file(tmp_path_factory) -> Path:
    """The eight tone texts as one utterance (about 5 s): many chunks, many words."""
    import soundfile as sf

    rng = np.random.default_rng(3)
    path = tmp_path_factory.mktemp("long") / "long.flac"
    sf.write(path, tone_audio(" ".join(TONE_TEXTS), rng), SR, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory, corpus) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {name: train_model(root / name, corpus, **kw) for name, kw in STREAMING_MODELS.items()}


def offline_record(model, tokenizer, path: Path) -> dict:
    """What ``asr transcribe`` writes for ``path``: one whole-file pass."""
    utts, _ = probe_durations(list_inputs(path).utts, sample_rate_hz=SR)
    (record,) = [r for batch in transcribe_utterances(model, tokenizer, utts, num_workers=0) for r in batch]
    return record


def streamed(rec: StreamingRecognizer, samples: np.ndarray, seed: int) -> tuple[list[dict], torch.Tensor]:
    """Events of one stream fed random pieces of 10 ms to 2 s, and the log-posteriors it computed."""
    rng = np.random.default_rng(seed)
    stream, events, i, seen = rec.open(), [], 0, []
    take = stream.take
    stream.take = lambda lp: (seen.append(lp.clone()), take(lp))
    while i < len(samples):
        n = int(rng.integers(160, 32000))
        events += stream.accept(torch.from_numpy(samples[i:i + n]))
        i += n
    events += stream.finish()
    return events, torch.cat(seen)


@pytest.mark.parametrize("kind", list(STREAMING_MODELS))
def test_random_pieces_give_the_offline_transcript_and_word_times(models, long_file, kind):
    bundle = safe_load(models[kind])  # the streaming settings live in the self-describing model file
    assert {k: bundle["model"][k] for k in STREAMING_MODELS[kind]} == STREAMING_MODELS[kind]
    model, tokenizer, _ = load_model(models[kind])
    record = offline_record(model, tokenizer, long_file)
    samples = load_audio(long_file, SR)
    with torch.inference_mode():
        offline_lp, _ = model(torch.from_numpy(samples)[None], torch.tensor([len(samples)]))
    rec = StreamingRecognizer(model, tokenizer)
    for seed in range(3):
        events, lp = streamed(rec, samples, seed)
        torch.testing.assert_close(lp, offline_lp[0], atol=1e-5, rtol=0)
        final = events[-1]
        assert final["type"] == "final" and final["end_of_stream"]
        assert [e["type"] for e in events[:-1]] == ["partial"] * (len(events) - 1)
        assert final["text"] == record["text"] and final["words"] == record["words"]
        assert len(record["text"].replace(" ", "")) >= 10, record  # the model says something: letters to compare
        assert final["confidence"] == round(np.mean([w["confidence"] for w in record["words"]]), 3)


def test_partials_grow_towards_the_final_transcript(models, long_file):
    model, tokenizer, _ = load_model(models["lc_blstm"])
    events, _ = streamed(StreamingRecognizer(model, tokenizer), load_audio(long_file, SR), seed=5)
    partials = [e["text"] for e in events if e["type"] == "partial"]
    assert len(partials) >= 5
    joined = events[-1]["text"].replace(" ", "")
    assert all(joined.startswith(p.replace(" ", "")[:-1]) for p in partials)  # the last letter may still repeat


def test_streams_batched_together_equal_streams_alone(models, long_file):
    model, tokenizer, _ = load_model(models["lc_bgru"])
    rec = StreamingRecognizer(model, tokenizer)
    samples = load_audio(long_file, SR)
    alone = streamed(rec, samples, seed=0)[0][-1]
    streams = [rec.open() for _ in range(3)]
    cuts = [samples[:k * 8000] for k in (3, 5, 10)]  # three streams of different lengths, fed in the same rounds
    passes = 0
    for s, audio in zip(streams, cuts):
        s.feed(torch.from_numpy(audio))
    passes += run_blocks([(s, s.blocks()) for s in streams])
    for s, audio in zip(streams, cuts):
        s.feed(torch.from_numpy(samples[len(audio):]))
        s.feed_end()
    passes += run_blocks([(s, s.blocks()) for s in streams])
    finals = [s.take_events()[-1] for s in streams]
    assert all(f["words"] == alone["words"] for f in finals)
    blocks_alone = -(-alone_frames(rec, samples) // rec.chunk_frames)
    assert passes < 3 * blocks_alone  # shared passes: fewer forward passes than blocks


def alone_frames(rec: StreamingRecognizer, samples: np.ndarray) -> int:
    s = rec.open()
    s.accept(torch.from_numpy(samples))
    s.finish()
    return s.frames_done


def test_a_blank_endpoint_ends_a_segment_in_a_pause(models, tmp_path):
    model, tokenizer, _ = load_model(models["lc_blstm"])
    rng = np.random.default_rng(0)
    audio = np.concatenate([tone_audio("abc", rng), np.zeros(SR, dtype=np.float32), tone_audio("cab", rng)])
    rec = StreamingRecognizer(model, tokenizer, endpoint_blank_s=0.6)
    stream, events = rec.open(), []
    for i in range(0, len(audio), 1600):
        events += stream.accept(torch.from_numpy(audio[i:i + 1600]))
    events += stream.finish()
    finals = [e for e in events if e["type"] == "final"]
    assert [f["end_of_stream"] for f in finals] == [False, True]
    assert [f["segment"] for f in finals] == [0, 1]
    assert finals[0]["words"][-1]["end"] < 1.0 < finals[1]["words"][0]["start"]  # the pause is between them
    no_endpoint = streamed(StreamingRecognizer(model, tokenizer), audio, seed=1)[0][-1]
    assert finals[0]["words"] + finals[1]["words"] == no_endpoint["words"]


def test_full_context_models_and_utterance_normalisation_are_refused(tmp_path, corpus):
    full = train_model(tmp_path / "full", corpus)
    model, tokenizer, _ = load_model(full)
    with pytest.raises(StreamingError, match="bidirectional with full context.*model.bidirectional=false"):
        StreamingRecognizer(model, tokenizer)
    uni, _ = load_model(train_model(tmp_path / "cmn", corpus, bidirectional=False))[:2], None
    model, tokenizer = uni
    object.__setattr__(model.features, "config", dataclasses.replace(model.features.config, cmn="utterance"))
    with pytest.raises(StreamingError, match="features.cmn=utterance"):
        StreamingRecognizer(model, tokenizer)


def test_a_finished_stream_refuses_more_audio(models):
    model, tokenizer, _ = load_model(models["uni_gru"])
    stream = StreamingRecognizer(model, tokenizer).open()
    stream.accept(torch.zeros(1600))
    assert stream.finish()[-1]["end_of_stream"]
    with pytest.raises(StreamingError, match="ended"):
        stream.accept(torch.zeros(10))
    assert isinstance(stream, Stream)
