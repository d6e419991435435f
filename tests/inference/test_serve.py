"""asr serve over loopback with a real WebSocket client: bad clients get clear errors, good ones offline results."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import torch

from asr.data.audio import load_audio
from asr.inference.limits import Limits
from asr.inference.serve import OfflineRecognizer, Server, serve
from asr.inference.stream_client import stream_audio, to_pcm16
from asr.inference.streaming import StreamingRecognizer
from asr.models.checkpoint import load_model
from tests.conftest import SR, TONE_TEXTS, tone_audio, write_tone_corpus
from tests.inference.test_streaming import offline_record, train_model

TIMEOUT_S = 60  # no test waits longer than this for anything


@pytest.fixture(scope="module")
def lc_model(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("serve")
    corpus = write_tone_corpus(root / "corpus", TONE_TEXTS)
    return train_model(root / "lc", corpus, chunk_s=0.24, right_context_s=0.12, edge_pad_s=0.3)


@pytest.fixture(scope="module")
def audio_file(tmp_path_factory) -> Path:
    import soundfile as sf

    path = tmp_path_factory.mktemp("audio") / "tones.flac"
    sf.write(path, tone_audio(" ".join(TONE_TEXTS), np.random.default_rng(3)), SR, subtype="PCM_16")
    return path


class Running:
    """A server on a free loopback port, in a thread with its own event loop."""

    def __init__(self, model_file: Path, limits: Limits, offline: bool = False, **offline_settings):
        model, tokenizer, _ = load_model(model_file)
        rec = OfflineRecognizer(model, tokenizer, **offline_settings) if offline else \
            StreamingRecognizer(model, tokenizer)
        self.server = Server(rec, limits)
        self.port: int | None = None
        self._ready = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self.thread.start()
        assert self._ready.wait(TIMEOUT_S), "server did not start"

    async def _main(self) -> None:
        self.loop, self.stop = asyncio.get_running_loop(), asyncio.Event()
        await serve(self.server, "127.0.0.1", 0, stop=self.stop, on_ready=self._on_ready)

    def _on_ready(self, port: int) -> None:
        self.port = port
        self._ready.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(TIMEOUT_S)
        assert not self.thread.is_alive(), "server did not stop"


@pytest.fixture
def running(lc_model):
    servers = []

    def start(**limits) -> Running:
        servers.append(Running(lc_model, Limits(**{"max_message_bytes": 8000, "idle_timeout_s": 5.0, **limits})))
        return servers[-1]
    yield start
    for s in servers:
        s.close()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT_S))


async def misbehave(url: str, first, then=(), wait_close: bool = True) -> tuple[list[dict], int | None]:
    """Send ``first`` then ``then`` (str: text, bytes: binary); the JSON messages received and the close code."""
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url + "/stream") as ws:
            for msg in (first, *then):
                await (ws.send_str(msg) if isinstance(msg, str) else ws.send_bytes(msg))
            if not wait_close:
                return [], None  # leave mid-stream: the context managers drop the connection
            got = [m.json() async for m in ws if m.type == aiohttp.WSMsgType.TEXT]
            return got, ws.close_code


START = json.dumps({"sample_rate": SR})
BAD_CLIENTS = {  # name: (first message, then, expected error code, expected close code)
    "odd_bytes": (START, [b"\x01\x02\x03"], "bad_audio", 1003),
    "oversize": (START, [b"\x00" * 12000], "message_too_big", 1009),
    "wrong_rate": (json.dumps({"sample_rate": 8000}), [], "bad_sample_rate", 1003),
    "missing_rate": (json.dumps({"rate": SR}), [], "bad_start", 1008),
    "not_json": ("hello", [], "bad_start", 1008),
    "binary_first": (b"\x00\x00" * 100, [], "bad_start", 1008),
    "text_after_start": (START, ["stop please"], "bad_message", 1003),
}


def test_bad_clients_get_clear_errors_while_a_good_client_gets_the_offline_result(running, lc_model, audio_file):
    srv = running(max_streams=16)
    model, tokenizer, _ = load_model(lc_model)
    expected = offline_record(model, tokenizer, audio_file)
    samples = load_audio(audio_file, SR)
    rng = np.random.default_rng(0)
    garbage = rng.integers(0, 256, 4000, dtype=np.uint8).tobytes()  # noise, but whole samples: decoded as audio

    async def main():
        good = asyncio.ensure_future(stream_audio(srv.url.replace("http", "ws") + "/stream", samples, SR, speed=3.0))
        await asyncio.sleep(0.3)  # the good stream is under way while the others misbehave
        bad = {name: asyncio.ensure_future(misbehave(srv.url, first, then))
               for name, (first, then, _, _) in BAD_CLIENTS.items()}
        quitter = asyncio.ensure_future(misbehave(srv.url, START, [to_pcm16(samples[:8000])] * 3, wait_close=False))
        noise = asyncio.ensure_future(misbehave(srv.url, START, [garbage, json.dumps({"type": "end"})]))
        return await good, {k: await v for k, v in bad.items()}, await noise, await quitter

    good, bad, noise, _ = run(main())
    for name, (_, _, code, close_code) in BAD_CLIENTS.items():
        events, closed = bad[name]
        assert events[-1]["type"] == "error" and events[-1]["code"] == code, (name, events)
        assert events[-1]["message"] and closed == close_code, (name, events, closed)
    assert "8000 Hz is not supported: this model listens at 16000 Hz" in bad["wrong_rate"][0][-1]["message"]
    assert noise[0][-1]["type"] == "final" and noise[1] == 1000  # garbage that is whole samples is just noise
    assert good.close_code == 1000 and good.error is None
    assert good.final["text"] == expected["text"] and good.final["words"] == expected["words"]
    assert good.events[0]["type"] == "ready" and sum(e["type"] == "partial" for e in good.events) >= 3
    health = run(_get_json(srv.url + "/health"))
    assert health[0] == 200 and health[1]["status"] == "ready" and health[1]["streams"] == 0


async def _get_json(url: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session, session.get(url) as r:
        return r.status, await r.json()


async def _post(url: str, body: bytes) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session, session.post(url, data=body) as r:
        return r.status, await r.json()


def test_stream_count_idle_and_duration_limits_are_answered_and_closed(running):
    srv = running(max_streams=2, idle_timeout_s=0.5, max_stream_s=1.0)
    quarter = to_pcm16(np.zeros(SR // 4, dtype=np.float32))  # 0.25 s per message

    async def main():
        async with aiohttp.ClientSession() as session:
            holders = [await session.ws_connect(srv.url + "/stream") for _ in range(2)]
            for ws in holders:
                await ws.send_str(START)
                assert (await ws.receive_json())["type"] == "ready"
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(srv.url + "/stream")
            idle = [m.json() async for m in holders[0] if m.type == aiohttp.WSMsgType.TEXT]  # sends nothing more
            for ws in holders:
                await ws.close()
        too_long = await misbehave(srv.url, START, [quarter] * 5)
        return refused.value.status, idle, too_long

    status, idle, (too_long, closed) = run(main())
    assert status == 503
    assert idle[-1]["code"] == "idle" and "no message for 0.5 s" in idle[-1]["message"]
    assert [e["type"] for e in too_long][-2:] == ["final", "error"] and too_long[-1]["code"] == "stream_too_long"
    assert too_long[-2]["end_of_stream"] and closed == 1008


def test_upload_returns_the_transcribe_record_and_bad_uploads_clear_errors(running, lc_model, audio_file):
    srv = running(max_upload_bytes=400_000)
    model, tokenizer, _ = load_model(lc_model)
    expected = offline_record(model, tokenizer, audio_file)
    url = srv.url + "/transcribe?name=tones.flac"
    status, record = run(_post(url, audio_file.read_bytes()))
    assert status == 200 and record == {**expected, "id": "tones.flac", "path": "tones.flac"}
    status, bad = run(_post(srv.url + "/transcribe?name=../../etc/x.wav", b"RIFF not really a wav file"))
    assert status == 422 and bad["text"] is None and bad["id"] == "x.wav" and bad["error"]
    status, big = run(_post(url, b"\x00" * 500_000))
    assert status == 413 and big["code"] == "upload_too_big" and "400000 bytes" in big["message"]
    status, empty = run(_post(url, b""))
    assert status == 400 and empty["code"] == "empty_upload"


def test_an_upload_that_trickles_is_answered_408_and_frees_its_slot(running, audio_file):
    srv = running(idle_timeout_s=0.5, max_uploads=1)

    async def slow_upload() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"POST /transcribe HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"\x00" * 10)
        await writer.drain()
        answer = await reader.read(4096)  # nothing more is sent: the server must give up on its own
        writer.close()
        return answer

    answer = run(slow_upload())
    assert answer.startswith(b"HTTP/1.1 408") and b'"code": "idle"' in answer
    status, record = run(_post(srv.url + "/transcribe?name=t.flac", audio_file.read_bytes()))
    assert status == 200 and record["text"]  # the slot was given back


def test_health_reports_readiness_and_the_model(running):
    status, body = run(_get_json(running().url + "/health"))
    assert status == 200 and body["status"] == "ready" and body["max_streams"] == 16
    assert body["chunk_s"] == 0.24 and body["right_context_s"] == 0.12
    assert body["algorithmic_latency_s"] == pytest.approx(0.345)  # (8 - 1 + 4) frames x 30 ms + 15 ms


def test_sigterm_finishes_open_streams_and_exits(lc_model, audio_file, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "asr", "serve", f"model={lc_model}", "port=0", "threads=1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    try:
        line = proc.stdout.readline()  # "asr serve: listening on http://127.0.0.1:PORT ..."
        port = re.search(r"127\.0\.0\.1:(\d+)", line)
        assert port, line + proc.stderr.read()
        samples = load_audio(audio_file, SR)

        async def main():
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect(f"http://127.0.0.1:{port.group(1)}/stream") as ws:
                    await ws.send_str(START)
                    await ws.receive_json()
                    await ws.send_bytes(to_pcm16(samples[:SR]))
                    await asyncio.sleep(0.5)
                    proc.send_signal(signal.SIGTERM)
                    return [m.json() async for m in ws if m.type == aiohttp.WSMsgType.TEXT], ws.close_code

        events, closed = run(main())
        assert proc.wait(TIMEOUT_S) == 0
        finals = [e for e in events if e["type"] == "final"]
        assert finals and finals[-1]["end_of_stream"] and events[-1]["code"] == "shutting_down" and closed == 1001
        assert "asr serve: stopped" in proc.stdout.read()
    finally:
        proc.kill()
        proc.wait(TIMEOUT_S)


def test_the_model_thread_reports_one_streams_error_and_serves_the_others(lc_model, audio_file):
    from asr.inference.serve import Engine
    from asr.inference.streaming import StreamingError

    model, tokenizer, _ = load_model(lc_model)
    rec = StreamingRecognizer(model, tokenizer)
    engine = Engine(rec, max_batch=8)
    ended, good = rec.open(), rec.open()
    ended.finish()
    samples = load_audio(audio_file, SR)

    async def main():
        bad = engine.submit(ended, torch.zeros(160))  # audio after the end: that stream's error
        first = engine.submit(good, torch.from_numpy(samples))
        with pytest.raises(StreamingError, match="ended"):
            await bad
        events = await first
        return events + await engine.submit(good, None)

    try:
        events = run(main())
    finally:
        engine.close()
    assert events[-1]["type"] == "final" and events[-1]["end_of_stream"] and events[-1]["text"]
    assert engine.jobs_done == 2 and not engine.thread.is_alive()


@pytest.fixture(scope="module")
def full_model(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("serve_full")
    corpus = write_tone_corpus(root / "corpus", TONE_TEXTS)
    return train_model(root / "full", corpus, edge_pad_s=0.3)


def test_a_full_context_model_streams_one_final_result_equal_to_transcribe(full_model, audio_file, tmp_path):
    model, tokenizer, _ = load_model(full_model)
    assert not model.acoustic.streamable
    expected = offline_record(model, tokenizer, audio_file)
    assert len(expected["text"].replace(" ", "")) >= 10, expected  # the model says something to compare
    samples = load_audio(audio_file, SR)
    srv = Running(full_model, Limits(max_message_bytes=8000, idle_timeout_s=5.0, max_stream_s=2.0), offline=True)
    try:
        ws_url = srv.url.replace("http", "ws") + "/stream"
        whole = run(stream_audio(ws_url, samples[:int(1.9 * SR)], SR, speed=0, piece_s=0.07))
        ready, *rest = whole.events
        assert ready["type"] == "ready" and ready["streaming"] is False and ready["chunk_s"] is None
        assert [e["type"] for e in rest] == ["final"] and whole.close_code == 1000  # no partials
        cut = offline_record(model, tokenizer, _wav(tmp_path / "cut.wav", samples[:int(1.9 * SR)]))
        assert whole.final["text"] == cut["text"] and whole.final["words"] == cut["words"]
        assert whole.final["end"] == 1.9 and whole.final["end_of_stream"]
        # past limits.max_stream_s: the audio so far gets its final result, then the error and a clean close
        long = run(stream_audio(ws_url, samples, SR, speed=0, piece_s=0.1))
        assert long.final["end"] == 2.0 and long.error["code"] == "stream_too_long" and long.close_code == 1008
        status, record = run(_post(srv.url + "/transcribe?name=tones.flac", audio_file.read_bytes()))
        assert status == 200 and record == {**expected, "id": "tones.flac", "path": "tones.flac"}
        empty = run(stream_audio(ws_url, samples[:800], SR, speed=0))  # 50 ms: too short to recognise
        assert empty.final["text"] == "" and empty.final["words"] == [] and empty.close_code == 1000
        status, health = run(_get_json(srv.url + "/health"))
        assert status == 200 and health["streaming"] is False and health["algorithmic_latency_s"] is None
    finally:
        srv.close()


def test_a_full_context_models_stream_gets_a_final_result_at_each_pause(full_model, tmp_path):
    from asr.inference.endpoint import EnergyEndpointer

    model, tokenizer, _ = load_model(full_model)
    rng = np.random.default_rng(7)
    pause = (0.003 * rng.standard_normal(int(0.8 * SR))).astype(np.float32)  # the tone corpus's background
    audio = np.concatenate([tone_audio("abc cab", rng), pause, tone_audio("b a c", rng)])
    (cut,) = EnergyEndpointer(SR, silence_s=0.4).push(audio)  # one pause of 0.4 s or more
    first = offline_record(model, tokenizer, _wav(tmp_path / "first.wav", audio[:cut]))
    second = offline_record(model, tokenizer, _wav(tmp_path / "second.wav", audio[cut:]))
    assert first["text"] and second["text"], (first, second)
    srv = Running(full_model, Limits(max_message_bytes=8000, idle_timeout_s=5.0), offline=True,
                  endpoint_silence_s=0.4)
    try:
        got = run(stream_audio(srv.url.replace("http", "ws") + "/stream", audio, SR, speed=0, piece_s=0.05))
    finally:
        srv.close()
    a, b = got.finals
    assert (a["segment"], a["end_of_stream"], b["segment"], b["end_of_stream"]) == (0, False, 1, True)
    assert a["text"] == first["text"] and a["words"] == first["words"] and a["start"] == 0.0
    assert a["end"] == b["start"] == round(cut / SR, 3) and b["end"] == round(len(audio) / SR, 3)
    offset = cut / SR  # the second segment's words in stream time
    assert b["text"] == second["text"]
    assert [w["start"] for w in b["words"]] == [round(w["start"] + offset, 3) for w in second["words"]]


def _wav(path: Path, samples: np.ndarray) -> Path:
    import soundfile as sf

    sf.write(path, samples, SR, subtype="FLOAT")
    return path


@pytest.mark.parametrize("model, setting, says", [
    ("full", "endpoint_blank_s=0.6", "full-context bidirectional model, which has no blank output"),
    ("lc", "endpoint_silence_s=0.5", "endpoint_silence_s=0.5 is for full-context models"),
])
def test_asr_serve_refuses_the_other_kinds_endpointer_in_one_line(full_model, lc_model, tmp_path, model, setting,
                                                                   says):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    path = full_model if model == "full" else lc_model
    refused = subprocess.run([sys.executable, "-m", "asr", "serve", f"model={path}", "port=0", setting],
                             capture_output=True, text=True, cwd=tmp_path, env=env, timeout=TIMEOUT_S)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and says in refused.stderr, refused.stderr


def test_asr_serve_says_a_full_context_model_gives_final_results_only(full_model, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-m", "asr", "serve", f"model={full_model}", "port=0", "threads=1",
                             "endpoint_silence_s=0.5"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env)
    try:
        line = proc.stdout.readline()
        assert "full-context bidirectional: a stream gets no partial results" in line, line + proc.stderr.read()
        assert "after each pause of 0.5 s" in line, line
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(TIMEOUT_S) == 0
    finally:
        proc.kill()
        proc.wait(TIMEOUT_S)
