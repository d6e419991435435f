"""asr-transcribe: alignment, windows, outputs, and whole runs on the tone corpus.

A tiny model is trained once per module on the tone corpus (about 5 s): it recognises
its training texts exactly, so transcripts, timestamps and scores can be checked as numbers.
"""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import SR, TONE_TEXTS, tone_audio, train_tone_model

from asr.data.discover import list_inputs
from asr.data.manifest import read_manifest
from asr.data.tokenizer import CharTokenizer
from asr.decoding.alignment import best_path, words_from_path
from asr.decoding.ctc import greedy_decode
from asr.frontend.features import FeatureConfig, FeatureExtractor
from asr.inference.evaluate import recognize, score
from asr.inference.outputs import (
    OutputError,
    SubtitleConfig,
    TranscriptLog,
    make_cues,
    make_record,
    render_srt,
    render_vtt,
    sort_records,
)
from asr.inference.segment import WindowConfig, keep_central, plan_windows
from asr.inference.transcribe import transcribe
from asr.models.checkpoint import load_model

CLI = "import sys; from asr.cli.apps import transcribe_main; sys.argv[0] = 'asr-transcribe'; transcribe_main()"


@pytest.fixture(scope="module")
def tone_model(tmp_path_factory):
    """``(model file, train manifest)``: a 2 x 48 BiLSTM overfit on the 8 tone utterances."""
    return train_tone_model(tmp_path_factory.mktemp("tone"))


@pytest.fixture(scope="module")
def loaded(tone_model):
    torch.set_num_threads(1)
    model, tokenizer, _ = load_model(tone_model[0])
    return model, tokenizer


def records(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


# ---- alignment ----------------------------------------------------------------------------------

def test_words_from_a_hand_built_path():
    vocab = ["<blank>", " ", "a", "b"]
    #       a    a    _    a    b    ' '  ' '  _    b    _
    path = [2, 2, 0, 2, 3, 1, 1, 0, 3, 0]
    post = [0.9, 0.7, 1.0, 0.5, 0.6, 1.0, 1.0, 1.0, 0.8, 1.0]
    words = words_from_path(path, post, vocab, frame_shift_s=0.03, offset_s=10.0)
    assert [w.text for w in words] == ["aab", "b"]  # a blank separates the repeated 'a'
    assert words[0].start_s == pytest.approx(10.0) and words[0].end_s == pytest.approx(10.15)  # frames 0..4
    assert words[1].start_s == pytest.approx(10.24) and words[1].end_s == pytest.approx(10.27)
    assert words[0].confidence == pytest.approx((0.9 + 0.7 + 0.5 + 0.6) / 4)  # blank frames do not count
    assert words[1].confidence == pytest.approx(0.8)
    assert words_from_path([0, 1, 1, 0], [1.0] * 4, vocab, frame_shift_s=0.03) == []


@pytest.mark.parametrize("seed", range(5))
def test_words_join_to_the_greedy_transcript(seed):
    tok = CharTokenizer(["<blank>", " ", "a", "b", "c"])
    g = torch.Generator().manual_seed(seed)
    log_probs = torch.randn(3, 40, 5, generator=g).mul(3).log_softmax(-1)  # (B, T, V)
    lengths = torch.tensor([40, 25, 1])
    ids, post = best_path(log_probs)
    for b, greedy in enumerate(greedy_decode(log_probs, lengths)):
        n = int(lengths[b])
        words = words_from_path(ids[b, :n].tolist(), post[b, :n].tolist(), tok.vocab, frame_shift_s=0.03)
        assert " ".join(w.text for w in words) == " ".join(tok.decode(greedy).split())
        assert all(0 < w.confidence <= 1 and w.start_s < w.end_s for w in words)
        assert all(a.end_s <= b.start_s for a, b in zip(words, words[1:]))


# ---- windows ------------------------------------------------------------------------------------

@pytest.mark.parametrize("duration", [5.0, 30.0, 30.01, 57.0, 3600.0])
def test_windows_cover_the_file_and_keep_regions_tile_it(duration):
    cfg = WindowConfig(window_s=30.0, overlap_s=4.0)
    wins = plan_windows(duration, cfg)
    assert wins[0].offset_s == 0 and wins[0].keep_from_s == -np.inf and wins[-1].keep_to_s == np.inf
    assert wins[-1].duration_s is None  # the last window reads to the end of the file
    for a, b in zip(wins, wins[1:]):
        assert a.keep_to_s == b.keep_from_s  # no gap, no overlap between kept regions
        assert b.offset_s == pytest.approx(a.offset_s + 26.0)
        assert a.keep_to_s - a.offset_s - a.nominal_s == pytest.approx(-2.0)  # 2 s of context past the cut
        assert b.keep_from_s - b.offset_s == pytest.approx(2.0)
    assert wins[-1].offset_s + wins[-1].nominal_s == pytest.approx(duration)
    assert len(wins) == (1 if duration <= 30 else int(np.ceil((duration - 30) / 26)) + 1)
    aligned = plan_windows(duration, cfg, frame_shift_s=0.03)  # every window starts on the 30 ms frame grid
    assert all(abs(w.offset_s / 0.03 - round(w.offset_s / 0.03)) < 1e-6 for w in aligned)
    assert [w.keep_from_s for w in aligned[1:]] == [w.keep_to_s for w in aligned[:-1]]
    # a manifest segment inside a file reads exactly its span
    seg = plan_windows(duration, cfg, offset_s=100.0, to_end=False)
    assert seg[0].offset_s == 100.0 and seg[-1].offset_s + seg[-1].duration_s == pytest.approx(100.0 + duration)


def test_keep_central_assigns_a_word_to_exactly_one_window():
    from asr.decoding.alignment import Word

    wins = plan_windows(80.0, WindowConfig(30.0, 4.0))
    words = [Word(str(i), t, t + 0.4, 1.0) for i, t in enumerate(np.arange(0, 79.5, 0.35))]
    kept = [w for win in wins for w in keep_central(words, win)]
    assert sorted(kept, key=lambda w: w.start_s) == words


# ---- outputs ------------------------------------------------------------------------------------

def test_cues_split_at_pauses_and_length_and_render_as_srt_and_vtt():
    words = [{"word": w, "start": s, "end": e} for w, s, e in
             [("one", 0.0, 0.4), ("two", 0.5, 0.9), ("three", 2.0, 2.5), ("four", 2.6, 3.0), ("five", 3.1, 9.5)]]
    cues = make_cues(words, SubtitleConfig(max_gap_s=0.6, max_cue_s=6.0, max_chars=84))
    assert cues == [(0.0, 0.9, "one two"), (2.0, 3.0, "three four"), (3.1, 9.5, "five")]  # pause; then length
    assert make_cues(words[:2], SubtitleConfig(max_chars=5)) == [(0.0, 0.4, "one"), (0.5, 0.9, "two")]
    srt = render_srt([(3661.5, 3662.25, "hello world")])
    assert srt == "1\n01:01:01,500 --> 01:01:02,250\nhello world\n\n"
    assert render_vtt([(0.0, 1.0, "hi")]) == "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nhi\n\n"
    long = render_srt([(0, 1, " ".join(["word"] * 12))]).splitlines()[2:4]
    assert len(long) == 2 and all(len(line) <= 42 for line in long)  # wrapped onto two lines


def test_transcript_log_drops_a_partial_line_and_refuses_foreign_files(tmp_path):
    out = tmp_path / "t.jsonl"
    with TranscriptLog(out) as tl:
        tl.write([make_record("a", "/a.wav", 1.0, "x"), make_record("b", "/b.wav", 1.0, "y")])
    with open(out, "a") as f:
        f.write('{"id": "c", "path": "/c.w')  # a run killed in the middle of a line
    with TranscriptLog(out) as tl:
        assert tl.done == {"a", "b"}
        tl.write([make_record("c", "/c.wav", 1.0, "z")])
    assert [r["id"] for r in records(out)] == ["a", "b", "c"]
    with TranscriptLog(out), pytest.raises(OutputError, match="another asr-transcribe run"):
        TranscriptLog(out)  # two runs into one file would interleave their lines
    sort_records(out, ["c", "a", "b"])
    assert [r["id"] for r in records(out)] == ["c", "a", "b"]

    mine = tmp_path / "notes.txt"
    mine.write_text("my notes\n")
    with pytest.raises(OutputError, match="refusing to overwrite .*overwrite=true"):
        TranscriptLog(mine)
    assert mine.read_text() == "my notes\n"
    with TranscriptLog(mine, overwrite=True) as tl:
        assert tl.done == set()
    assert mine.read_text() == ""


# ---- whole runs ---------------------------------------------------------------------------------

def test_transcripts_equal_recognize_and_scores_equal_evaluate(loaded, tone_model, tmp_path):
    model, tokenizer = loaded
    manifest = tone_model[1]
    utts = read_manifest(manifest)
    hyps = recognize(model, tokenizer, utts)
    summary = transcribe(model, tokenizer, manifest, tmp_path / "m.jsonl", num_workers=0)
    recs = records(tmp_path / "m.jsonl")
    assert [r["id"] for r in recs] == [u.utt_id for u in utts]  # input order
    assert [r["text"] for r in recs] == [" ".join(h.text.split()) for h in hyps]
    assert [r["text"] for r in recs] == TONE_TEXTS
    assert summary["scores"]["wer"] == score(utts, hyps)[0]["wer"] == 0.0
    # a folder gives the same texts, keyed by the path inside the folder, with workers decoding
    transcribe(model, tokenizer, manifest.parent / "audio", tmp_path / "f.jsonl", num_workers=2)
    by_id = {r["id"]: r["text"] for r in records(tmp_path / "f.jsonl")}
    assert [by_id[Path(u.utt_id).name] for u in utts] == TONE_TEXTS
    # batching never changes a transcript: one file per batch gives the same words and times
    transcribe(model, tokenizer, manifest, tmp_path / "one.jsonl", max_batch_duration_s=0.01, num_workers=0)
    for a, b in zip(recs, records(tmp_path / "one.jsonl")):
        assert [(w["word"], w["start"], w["end"]) for w in a["words"]] == \
               [(w["word"], w["start"], w["end"]) for w in b["words"]]
        assert [w["confidence"] for w in a["words"]] == pytest.approx([w["confidence"] for w in b["words"]],
                                                                      abs=2e-3)


class LocalToneModel(torch.nn.Module):
    """A hand-built recognizer whose every 30 ms frame depends only on its own 25 ms of audio.

    400 Hz → 'a', 900 Hz → 'b', 1600 Hz → a word break, quiet → blank. With no long-range
    context, recognising a file in windows must give exactly what one pass over it gives.
    """

    vocab = ["<blank>", " ", "a", "b"]

    def __init__(self):
        super().__init__()
        self.features = FeatureExtractor(FeatureConfig())
        fb = self.features.melspec.mel_scale.fb  # (n_freqs, n_mels)
        bin_hz = SR / self.features.config.fft_length
        self.bands = [int(fb[round(hz / bin_hz)].argmax()) for hz in (1600, 400, 900)]  # symbols 1, 2, 3

    def forward(self, wave, wave_lens):
        power = self.features.melspec(wave)[:, self.bands, ::3].transpose(1, 2)  # (B, T, 3) at a 30 ms shift
        sym = torch.where(power.max(-1).values > 1e-2, power.argmax(-1) + 1, 0)  # (B, T)
        return torch.nn.functional.one_hot(sym, 4).float().mul(20).log_softmax(-1), \
            self.features.output_lengths(wave_lens)


def test_long_file_windows_stitch_to_the_single_pass_transcript(tmp_path):
    model, tokenizer = LocalToneModel(), CharTokenizer(LocalToneModel.vocab)
    rng = np.random.default_rng(0)
    words = [str(w) for w in rng.choice(["ab", "ba", "aba", "b", "bab", "a"], 150)]
    parts, spans, t = [], [], 0.0
    for i, word in enumerate(words):
        seg = tone_audio(word, rng)
        spans.append((t, t + len(seg) / SR))
        parts += [seg, tone_audio("c", rng)] if i < len(words) - 1 else [seg]  # the 1600 Hz tone breaks words
        t += sum(len(p) for p in parts[-2:]) / SR if i < len(words) - 1 else 0
    (tmp_path / "in").mkdir()
    sf.write(tmp_path / "in" / "long.flac", np.concatenate(parts), SR, subtype="PCM_16")
    runs = {}
    for name, window_s in [("windowed", 12.0), ("single", 10_000.0)]:
        summary = transcribe(model, tokenizer, tmp_path / "in", tmp_path / f"{name}.jsonl", formats=["srt", "vtt"],
                             windows=WindowConfig(window_s=window_s, overlap_s=4.0), num_workers=0)
        (runs[name],) = records(tmp_path / f"{name}.jsonl")
    rec = runs["windowed"]
    assert rec["duration"] > 90 and len(plan_windows(rec["duration"], WindowConfig(12.0, 4.0))) >= 10
    assert rec == runs["single"]  # words, times and confidences: no seam anywhere
    assert [w["word"] for w in rec["words"]] == words and rec["text"] == " ".join(words)
    for w, (start, end) in zip(rec["words"], spans):  # each word lies inside its own stretch of audio
        assert start <= w["start"] < w["end"] <= end + 0.03
    assert summary["audio_seconds"] == rec["duration"]
    srt = (tmp_path / "windowed_srt" / "long.srt").read_text()
    assert srt.startswith("1\n00:00:00,") and srt.count(" --> ") >= rec["duration"] / 6  # cues of at most 6 s
    assert (tmp_path / "windowed_vtt" / "long.vtt").read_text().startswith("WEBVTT\n\n")


def _bad_and_good_folder(root: Path) -> tuple[dict[str, str], dict[str, str]]:
    """A folder of broken files (name → expected reason fragment) and good ones (name → text)."""
    rng = np.random.default_rng(1)
    root.mkdir()
    tone = tone_audio("abc", rng)
    good = {"plain.flac": "abc", "eight_k.wav": "abc", "stereo_48k.wav": "abc", "clipped.wav": None,
            "vorbis.ogg": "abc", "lossy.mp3": None, "nested/deep/again.flac": "abc"}
    sf.write(root / "plain.flac", tone, SR)
    sf.write(root / "eight_k.wav", tone[::2], 8000)  # tones are below 4 kHz: exact decimation
    up = np.interp(np.arange(len(tone) * 3) / 3, np.arange(len(tone)), tone)
    sf.write(root / "stereo_48k.wav", np.stack([up, 0.5 * up], axis=1), 48000)
    sf.write(root / "clipped.wav", np.clip(tone * 30, -1, 1), SR, subtype="PCM_16")
    sf.write(root / "vorbis.ogg", tone, SR)
    sf.write(root / "lossy.mp3", tone, SR)
    (root / "nested" / "deep").mkdir(parents=True)
    sf.write(root / "nested" / "deep" / "again.flac", tone, SR)

    bad = {"empty.wav": "empty file", "zero_samples.wav": "no samples", "truncated.flac": "cannot decode",
           "text.wav": "cannot decode", "nan.wav": "NaN", "inf.wav": "infinite", "one_sample.wav": "too short",
           "random_bytes.flac": "cannot decode", "dangling.wav": "does not exist", "locked.wav": "permission denied"}
    (root / "empty.wav").write_bytes(b"")
    sf.write(root / "zero_samples.wav", np.zeros(0, np.float32), SR)
    full = io.BytesIO()
    sf.write(full, tone, SR, format="FLAC")
    (root / "truncated.flac").write_bytes(full.getvalue()[: len(full.getvalue()) // 2])
    (root / "text.wav").write_text("this is a text file with a .wav name\n" * 20)
    sf.write(root / "nan.wav", np.where(np.arange(len(tone)) == 500, np.nan, tone).astype(np.float32), SR,
             subtype="FLOAT")
    sf.write(root / "inf.wav", np.where(np.arange(len(tone)) == 9, np.inf, tone).astype(np.float32), SR,
             subtype="FLOAT")
    sf.write(root / "one_sample.wav", tone[:1], SR)
    (root / "random_bytes.flac").write_bytes(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    (root / "dangling.wav").symlink_to(root / "gone.wav")
    sf.write(root / "locked.wav", tone, SR)
    (root / "locked.wav").chmod(0)
    # not audio at all: skipped and counted, not failed
    (root / "dir.wav").mkdir()
    (root / "notes.txt").write_text("not audio")
    sf.write(root / ".hidden.wav", tone, SR)
    return bad, good


def test_bad_files_are_reported_and_every_good_file_is_transcribed(loaded, tmp_path, monkeypatch):
    import asr.data.audio

    model, tokenizer = loaded
    bad, good = _bad_and_good_folder(tmp_path / "in")
    if os.geteuid() == 0:
        # root reads a chmod-000 file anyway; make the access check answer as it would for a user
        real_access = os.access
        monkeypatch.setattr(asr.data.audio.os, "access",
                            lambda p, mode, **kw: not str(p).endswith("locked.wav") and real_access(p, mode, **kw))
    summary = transcribe(model, tokenizer, tmp_path / "in", tmp_path / "out.jsonl", formats=["csv"], num_workers=1)
    recs = {r["id"]: r for r in records(tmp_path / "out.jsonl")}
    assert set(recs) == set(bad) | set(good)
    for name, reason in bad.items():
        assert recs[name]["text"] is None and reason in recs[name]["error"], (name, recs[name]["error"])
    for name, text in good.items():
        assert recs[name]["error"] is None and recs[name]["text"] is not None, (name, recs[name]["error"])
        if text is not None:
            assert recs[name]["text"] == text, name
    assert recs["eight_k.wav"]["duration"] == pytest.approx(len(tone_audio("abc", np.random.default_rng(1))) / SR,
                                                            abs=1e-3)
    assert (summary["files"], summary["transcribed"], summary["failed"]) == (len(bad) + len(good), len(good), len(bad))
    assert {f["id"] for f in summary["failed_files"]} == set(bad)
    assert summary["skipped"] == {"hidden file": 1, "not an audio file (by extension)": 1,
                                  "a folder, not an audio file (searched inside it)": 1}
    csv_rows = (tmp_path / "out.csv").read_text().splitlines()
    assert len(csv_rows) == 1 + len(bad) + len(good)


def _cli(*args: str, cwd: Path) -> list[str]:
    return [sys.executable, "-c", CLI, *args, "hydra.run.dir=hydra", "progress=false", "threads=1"]


def test_cli_refuses_to_overwrite_a_foreign_file_and_scores_a_manifest(tone_model, tmp_path):
    model_file, manifest = tone_model
    mine = tmp_path / "important.jsonl"
    mine.write_text('{"my": "data"}\n')
    r = subprocess.run(_cli(f"model={model_file}", f"input={manifest}", f"output={mine}", cwd=tmp_path),
                       cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "refusing to overwrite" in r.stderr and "Traceback" not in r.stderr
    assert mine.read_text() == '{"my": "data"}\n'
    r = subprocess.run(_cli(f"model={model_file}", f"input={manifest}", f"output={tmp_path / 'o.jsonl'}",
                            "format=[csv,vtt]", cwd=tmp_path), cwd=tmp_path, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "WER 0.00 %  CER 0.00 %" in r.stdout and "transcribed 8 of 8 files" in r.stdout
    assert len(list((tmp_path / "o_vtt").rglob("*.vtt"))) == 8
    r = subprocess.run(_cli(f"model={model_file}", f"input={manifest}", f"output={tmp_path / 'p.jsonl'}",
                            "format=docx", cwd=tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "docx" in r.stderr


def test_discovery_filters_and_counts(tmp_path):
    rng = np.random.default_rng(0)
    for rel in ["a.flac", "b.WAV", "sub/c.flac", ".git/d.flac", "sub/e.txt"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith("txt"):
            (tmp_path / rel).write_text("x")
        else:
            sf.write(tmp_path / rel, tone_audio("a", rng), SR, format=rel.rsplit(".", 1)[1].upper())
    found = list_inputs(tmp_path)
    assert [u.utt_id for u in found.utts] == ["a.flac", "b.WAV", "sub/c.flac"]
    assert sorted(s.reason for s in found.skipped) == ["hidden folder", "not an audio file (by extension)"]
    assert [u.utt_id for u in list_inputs(tmp_path, include="sub/*").utts] == ["sub/c.flac"]
    assert [u.utt_id for u in list_inputs(tmp_path, extensions=["wav"]).utts] == ["b.WAV"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list_inputs(tmp_path / "nope")


@pytest.mark.parametrize("override,needle", [
    ("long_audio.overlap_s=40", "overlap_s"),
    ("batch.max_duraton_s=5", "batch.max_duraton_s"),
])
def test_cli_config_errors_name_the_key(override, needle, tmp_path):
    r = subprocess.run(_cli("model=m.pt", "input=.", "output=o.jsonl", override, cwd=tmp_path), cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and needle in r.stderr and "Traceback" not in r.stderr  # Hydra refuses unknown keys itself


# ---- runtime=onnx: no torch in the process ------------------------------------------------------

# the `asr` command, reporting on exit which of torch / torchaudio the process imported
ASR_REPORTING_TORCH = ("import sys\nfrom asr.__main__ import main\nsys.argv[1:1] = ['transcribe']\ntry:\n    main()\n"
                       "finally:\n    print('loaded:', [m for m in ('torch', 'torchaudio') if m in sys.modules], "
                       "file=sys.stderr)")


def _asr_transcribe(*settings: str, cwd: Path) -> subprocess.CompletedProcess:
    root = str(Path(__file__).resolve().parents[2])  # this checkout's asr, whatever is installed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])}
    return subprocess.run([sys.executable, "-c", ASR_REPORTING_TORCH, *settings, "hydra.run.dir=hydra",
                           "progress=false", "threads=1"], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_onnx_runtime_transcribes_without_torch_and_writes_what_the_torch_path_writes(loaded, tone_model, tmp_path):
    from asr.inference.export import export_onnx

    model_file, manifest = tone_model
    export_onnx(model_file, tmp_path / "m.onnx", card=False)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really")
    with_broken = tmp_path / "with_broken.jsonl"
    lines = [{"audio_filepath": str(Path(u.audio_path).resolve()), "duration": u.duration_s, "text": u.text}
             for u in read_manifest(manifest)] + [{"audio_filepath": str(broken), "duration": 1.0, "text": "a"}]
    with_broken.write_text("".join(json.dumps(line) + "\n" for line in lines))
    for source, status in [(manifest, 0), (with_broken, 3)]:
        r = _asr_transcribe("runtime=onnx", f"model={tmp_path / 'm.onnx'}", f"input={source}",
                            f"output={tmp_path / source.stem}_onnx.jsonl", cwd=tmp_path)
        assert r.returncode == status, r.stderr[-3000:]
        assert "loaded: []" in r.stderr, r.stderr[-3000:]  # neither torch nor torchaudio was imported
    assert "transcribed 8 of 9 files" in r.stdout and f"{broken}:" in r.stderr
    model, tokenizer = loaded
    transcribe(model, tokenizer, manifest, tmp_path / "torch.jsonl", progress=False, num_workers=0)
    onnx_records, torch_records = records(tmp_path / f"{manifest.stem}_onnx.jsonl"), records(tmp_path / "torch.jsonl")
    assert [r["text"] for r in onnx_records] == TONE_TEXTS and len(torch_records) == len(TONE_TEXTS)
    for a, b in zip(onnx_records, torch_records):
        # the runtimes' posteriors agree to ~1e-6, so a confidence may round to the next 0.001; all else is equal
        confidences = [[w.pop("confidence") for w in r["words"]] for r in (a, b)]
        assert confidences[0] == pytest.approx(confidences[1], abs=1.5e-3)
        assert a == b and a["words"]


def test_a_broken_onnx_file_is_one_error_line_naming_it(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf")
    r = _asr_transcribe("runtime=onnx", f"model={bad}", f"input={tmp_path}", f"output={tmp_path / 'o.jsonl'}",
                        cwd=tmp_path)
    assert r.returncode == 2 and f"error: {bad}: not a loadable ONNX file" in r.stderr, r.stderr[-3000:]
    assert "Traceback" not in r.stderr


def test_numpy_best_path_equals_torch_and_one_batch_gets_no_decoding_worker(monkeypatch):
    from asr.inference import transcribe as module

    log_probs = torch.randn(3, 17, 6).log_softmax(-1)
    ids, post = best_path(log_probs)
    np_ids, np_post = best_path(log_probs.numpy())
    assert isinstance(np_ids, np.ndarray) and np.array_equal(np_ids, ids.numpy())
    np.testing.assert_allclose(np_post, post.numpy(), rtol=1e-6)
    monkeypatch.setattr(module, "available_cores", lambda: 4)
    assert module.default_workers(threads=1, batches=1) == 0  # nothing to decode while the model runs
    assert module.default_workers(threads=1, batches=2) == 1
    assert module.default_workers(threads=4, batches=2) == 0  # no core to spare
