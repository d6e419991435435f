"""``asr stream``: a file to a running ``asr serve``, partial and final results printed as they come."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import threading
import time

import numpy as np
import pytest
import soxr

from asr.cli.serve import _stream_microphone, stream_main
from asr.config.commands import StreamConfig
from asr.data.audio import load_audio
from asr.inference.limits import Limits
from asr.inference.stream_client import MicrophoneError
from asr.models.checkpoint import load_model
from tests.conftest import SR
from tests.inference.test_serve import Running, audio_file, lc_model  # noqa: F401 - fixtures used by name
from tests.inference.test_streaming import offline_record


def resample(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    return soxr.resample(x, src, dst).astype(np.float32)


def test_stream_prints_partials_then_the_final_and_exits_0(lc_model, audio_file, capsys):  # noqa: F811
    srv = Running(lc_model, Limits())
    try:
        url = srv.url.replace("http", "ws") + "/stream"
        assert stream_main([str(audio_file), "--url", url, "speed=0"]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[-1].startswith("final: ") and "(confidence 0." in lines[-1]
        assert sum(line.startswith("partial: ") for line in lines) >= 2
        assert stream_main([f"file={audio_file}", f"url={url}", "speed=0", "events=true"]) == 0
        events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert events[0]["type"] == "ready" and events[-1]["type"] == "final" and events[-1]["end_of_stream"]
    finally:
        srv.close()


def test_stream_to_no_server_is_one_error_line(audio_file, capsys):  # noqa: F811
    assert stream_main([f"file={audio_file}", "url=ws://127.0.0.1:9/stream"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot stream to ws://127.0.0.1:9/stream") and "asr serve running" in err


class FakeSoundDevice:
    """A stand-in for the sounddevice module: a "microphone" at ``rate`` Hz that plays ``samples`` (then
    silence), block by block on its own thread, ``speed`` times faster than real time."""

    def __init__(self, samples: np.ndarray, rate: int, speed: float = 4.0):
        self.samples, self.rate, self.speed = samples, rate, speed
        self.opened = []

    def query_devices(self, device, kind):
        assert kind == "input"
        if device == "missing":
            raise ValueError("No input device matching 'missing'")
        return {"name": "fake", "default_samplerate": float(self.rate)}

    def InputStream(self, *, samplerate, channels, dtype, blocksize, device, callback):  # noqa: N802 - its API
        self.opened.append({"samplerate": samplerate, "channels": channels, "dtype": dtype, "device": device})
        return _FakeStream(self, blocksize, callback)


class _FakeStream:
    def __init__(self, sd: FakeSoundDevice, blocksize: int, callback):
        self.sd, self.blocksize, self.callback = sd, blocksize, callback
        self.done = threading.Event()

    def _play(self):
        start = 0
        while not self.done.is_set():
            block = self.sd.samples[start:start + self.blocksize]
            block = np.pad(block, (0, self.blocksize - len(block)))[:, None].astype(np.float32)  # (frames, channels)
            self.callback(block, self.blocksize, None, None)
            start += self.blocksize
            time.sleep(self.blocksize / self.sd.rate / self.sd.speed)

    def __enter__(self):
        self.thread = threading.Thread(target=self._play, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join(5)
        assert not self.thread.is_alive()


def _mic_config(url: str, **kw) -> StreamConfig:
    return StreamConfig(mic=True, url=url, events=True, timeout_s=20.0, **kw)


def test_the_microphone_streams_like_the_file_and_ends_at_max_duration(lc_model, audio_file, capsys):  # noqa: F811
    samples = load_audio(audio_file, SR)
    srv = Running(lc_model, Limits())
    try:
        url = srv.url.replace("http", "ws") + "/stream"
        model, tokenizer, _ = load_model(lc_model)
        expected = offline_record(model, tokenizer, audio_file)
        sd = FakeSoundDevice(samples, SR)
        c = _mic_config(url, max_duration_s=len(samples) / SR, mic_device="3")
        result = asyncio.run(_stream_microphone(c, lambda e: None, sounddevice=sd))
        assert sd.opened == [{"samplerate": SR, "channels": 1, "dtype": "float32", "device": 3}]
        assert result.error is None and result.close_code == 1000
        assert result.sent[-1][0] == pytest.approx(len(samples) / SR, abs=1e-3)  # all of it, and no more
        assert result.final["text"] == expected["text"] and result.final["words"] == expected["words"]
        # a 48 kHz microphone is resampled to the model's rate on the way
        sd48 = FakeSoundDevice(resample(samples, SR, 48000), 48000, speed=8.0)
        result = asyncio.run(_stream_microphone(_mic_config(url, max_duration_s=2.0), lambda e: None, sounddevice=sd48))
        assert sd48.opened[0]["samplerate"] == 48000 and result.error is None
        assert result.sent[-1][0] == pytest.approx(2.0, abs=0.01) and result.final is not None
    finally:
        srv.close()


def test_ctrl_c_ends_the_microphone_stream_with_its_final_result(lc_model, audio_file):  # noqa: F811
    srv = Running(lc_model, Limits())
    try:
        url = srv.url.replace("http", "ws") + "/stream"
        sd = FakeSoundDevice(load_audio(audio_file, SR), SR, speed=1.0)

        async def main():
            asyncio.get_running_loop().call_later(1.0, os.kill, os.getpid(), signal.SIGINT)
            return await _stream_microphone(_mic_config(url), lambda e: None, sounddevice=sd)

        result = asyncio.run(asyncio.wait_for(main(), 30))
        assert result.error is None and result.final is not None and result.final["end_of_stream"]
        assert 0.5 < result.sent[-1][0] < 3.0  # about a second of audio, then the stream ended
    finally:
        srv.close()


def test_microphone_problems_are_one_clear_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # not installed
    assert stream_main(["--mic", "url=ws://127.0.0.1:9/stream"]) == 2
    assert "pip install 'asr[mic]'" in capsys.readouterr().err
    sd = FakeSoundDevice(np.zeros(SR, np.float32), SR)
    with pytest.raises(MicrophoneError, match="no microphone input missing"):
        asyncio.run(_stream_microphone(_mic_config("ws://127.0.0.1:9/stream", mic_device="missing"), print,
                                       sounddevice=sd))
    assert stream_main(["a.wav", "--mic"]) == 2
    assert "not both" in capsys.readouterr().err
    assert stream_main([]) == 2
    assert "--mic" in capsys.readouterr().err
