"""A catalogue of bad inputs, built in tmp_path: broken audio files and broken manifest lines.

Each entry says which problem kind :func:`asr.data.validate.validate_manifest` must report for it,
so the tests can check every kind by line number, and count how many kinds were tried.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import soundfile as sf
from conftest import SR, TONE_TEXTS, tone_audio


def write_bad_audio(root: Path) -> dict[str, tuple[str, ...]]:
    """Broken audio files under ``root``; returns ``{file name: problem kinds accepted for it}``."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    tone = tone_audio("abc", rng)
    good = root / "good.flac"
    sf.write(good, tone, SR, subtype="PCM_16")
    kinds: dict[str, tuple[str, ...]] = {}
    (root / "empty.flac").write_bytes(b"")
    kinds["empty.flac"] = ("unreadable_audio",)
    (root / "noise_bytes.flac").write_bytes(rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())
    kinds["noise_bytes.flac"] = ("unreadable_audio",)
    data = good.read_bytes()
    (root / "truncated.flac").write_bytes(data[: len(data) // 3])  # the header promises more than is there
    kinds["truncated.flac"] = ("unreadable_audio", "duration_mismatch")
    (root / "header_only.flac").write_bytes(data[:200])
    kinds["header_only.flac"] = ("unreadable_audio", "duration_mismatch")
    (root / "text.wav").write_text("this is not audio\n" * 20)
    kinds["text.wav"] = ("unreadable_audio",)
    sf.write(root / "nan.wav", np.where(np.arange(len(tone)) == 700, np.nan, tone).astype(np.float32), SR,
             subtype="FLOAT")
    kinds["nan.wav"] = ("unreadable_audio",)
    sf.write(root / "zero_frames.wav", np.zeros(0, dtype=np.float32), SR)
    kinds["zero_frames.wav"] = ("unreadable_audio", "duration_mismatch")
    (root / "folder.flac").mkdir()
    kinds["folder.flac"] = ("missing_audio",)
    kinds["missing.flac"] = ("missing_audio",)
    return kinds


def write_bad_manifest(root: Path) -> tuple[Path, dict[int, tuple[str, ...]], int]:
    """A manifest mixing good lines with every bad kind, audio under ``root``.

    Returns ``(manifest, {line number: accepted problem kinds}, number of good lines)``.
    """
    bad_audio = write_bad_audio(root / "audio")
    rng = np.random.default_rng(11)
    good = []
    for i, text in enumerate(TONE_TEXTS):
        rel = f"audio/ok_{i}.flac"
        audio = tone_audio(text, rng)
        sf.write(root / rel, audio, SR, subtype="PCM_16")
        good.append({"audio_filepath": rel, "duration": round(len(audio) / SR, 4), "text": text})
    outside = root.parent / f"{root.name}_outside.flac"
    sf.write(outside, tone_audio("a", rng), SR)
    os.symlink(outside, root / "audio" / "link.flac")
    def fresh(text: str, name: str) -> dict:  # a good file of its own, so only the intended problem shows
        audio = tone_audio(text, rng)
        sf.write(root / "audio" / f"{name}.flac", audio, SR, subtype="PCM_16")
        return {"audio_filepath": f"audio/{name}.flac", "duration": round(len(audio) / SR, 4), "text": text}

    dur = good[0]["duration"]
    lines: list[tuple[str, tuple[str, ...]]] = [(json.dumps(g), ()) for g in good]
    lines += [(json.dumps({"audio_filepath": f"audio/{name}", "duration": dur, "text": "abc"}), kinds)
              for name, kinds in bad_audio.items()]
    lines += [
        ('{"audio_filepath": "audio/ok_0.flac", "duration": 1.0, "text": "abc"', ("bad_line",)),  # cut short
        ('["audio/ok_0.flac", 1.0, "abc"]', ("bad_line",)),
        (json.dumps({"duration": dur, "text": "abc"}), ("bad_line",)),
        (json.dumps({"audio_filepath": "audio/ok_1.flac", "duration": -1.0, "text": "cab"}), ("bad_line",)),
        ('{"audio_filepath": "audio/ok_1.flac", "duration": NaN, "text": "cab"}', ("bad_line",)),
        (json.dumps({"audio_filepath": "audio/ok_1.flac", "duration": "1.0", "text": "cab"}), ("bad_line",)),
        (json.dumps({"audio_filepath": "audio/ok_1.flac", "duration": dur, "text": 42}), ("bad_line",)),
        (json.dumps({"audio_filepath": "audio/ok_1.flac", "duration": dur, "text": "cab", "offset": -2}),
         ("bad_line",)),
        ('{"audio_filepath": "audio/ok_1.flac", "duration": 1.0, "text": "caf\xe9"}'.encode("latin-1"),
         ("bad_line",)),  # not UTF-8
        (json.dumps({"audio_filepath": "../" + outside.name, "duration": dur, "text": "a"}), ("path_escape",)),
        (json.dumps({"audio_filepath": "audio/link.flac", "duration": dur, "text": "a"}), ("path_escape",)),
        (json.dumps({"audio_filepath": "audio/ok_2.flac", "duration": good[2]["duration"], "text": "  "}),
         ("empty_text",)),
        (json.dumps({"audio_filepath": "audio/ok_2.flac", "duration": good[2]["duration"], "text": "?!",
                     "id": "punct"}), ("empty_text",)),
        (json.dumps(good[3]), ("duplicate",)),
        (json.dumps({**good[4], "id": "same_audio_other_id"}), ("duplicate",)),
        (json.dumps({**fresh("ab", "long_claim"), "duration": 9.0}), ("duration_mismatch",)),
        (json.dumps({**fresh("ab", "past_end"), "offset": 0.5, "duration": 2.0}), ("duration_mismatch",)),
        (json.dumps({**fresh("c", "upper"), "text": "C"}), ("text_not_normalised",)),
        (json.dumps({**fresh("c", "oov"), "text": "d"}), ("out_of_vocabulary",)),
        (json.dumps({**fresh("c", "too_long"), "text": "abcabcabcabcabcabcabc"}), ("transcript_too_long",)),
    ]
    with open(root / "bad.jsonl", "wb") as f:
        for text, _ in lines:
            f.write((text if isinstance(text, bytes) else text.encode()) + b"\n")
    expected = {i: kinds for i, (_, kinds) in enumerate(lines, start=1) if kinds}
    return root / "bad.jsonl", expected, len(good)
