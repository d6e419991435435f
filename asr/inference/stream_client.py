"""A client of ``asr serve``'s ``/stream``: send audio at real speed (or faster), collect partial and final results.

Used by ``asr stream FILE`` (which prints the results as they come), the server tests and
``benchmarks/serve_load.py`` (which times them). Only files: there is no microphone input (it would need an
audio-capture library this package does not depend on).

Example:
    >>> result = asyncio.run(stream_audio("ws://127.0.0.1:8000/stream", samples, 16000))  # doctest: +SKIP
    >>> result.final["text"]  # doctest: +SKIP
    'rubout g m e f'
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
import numpy as np


@dataclass
class StreamResult:
    """What one stream saw. Times are ``time.monotonic()`` seconds.

    Attributes:
        events: every JSON message from the server (``ready``, ``partial``, ``final``, ``error``), in order.
        received_at: when each event arrived.
        sent: ``(audio seconds sent so far, when)`` after every binary message.
        error: the server's error event, if it sent one.
        close_code: the WebSocket close code (1000: a normal end).
    """

    events: list[dict] = field(default_factory=list)
    received_at: list[float] = field(default_factory=list)
    sent: list[tuple[float, float]] = field(default_factory=list)
    error: dict | None = None
    close_code: int | None = None

    @property
    def finals(self) -> list[dict]:
        return [e for e in self.events if e.get("type") == "final"]

    @property
    def final(self) -> dict | None:
        """The end-of-stream final result (None when the stream did not end normally)."""
        return next((e for e in reversed(self.finals) if e.get("end_of_stream")), None)

    @property
    def text(self) -> str:
        """Every segment's final text, joined."""
        return " ".join(e["text"] for e in self.finals if e["text"])

    def sent_by(self, audio_s: float) -> float | None:
        """When the audio up to ``audio_s`` seconds had been sent (None: it never was)."""
        return next((t for end_s, t in self.sent if end_s >= audio_s - 1e-9), None)


def to_pcm16(samples: np.ndarray) -> bytes:
    """float samples in [-1, 1] → 16-bit little-endian PCM bytes.

    The inverse of how 16-bit files are read (``int / 32768``), so a 16-bit file's own samples are sent.
    """
    return np.clip(np.round(samples * 32768.0), -32768, 32767).astype("<i2").tobytes()


async def _receive(ws: aiohttp.ClientWebSocketResponse, result: StreamResult,
                   on_event: Callable[[dict], None] | None) -> None:
    async for msg in ws:
        if msg.type != aiohttp.WSMsgType.TEXT:
            continue
        event = msg.json()
        result.events.append(event)
        result.received_at.append(time.monotonic())
        if event.get("type") == "error":
            result.error = event
        if on_event is not None:
            on_event(event)


async def stream_audio(url: str, samples: np.ndarray, sample_rate_hz: int, *, speed: float = 1.0,
                       piece_s: float = 0.1, timeout_s: float = 30.0,
                       on_event: Callable[[dict], None] | None = None) -> StreamResult:
    """Stream ``samples`` to ``url`` in ``piece_s`` pieces, ``speed`` times real time (0: as fast as possible).

    Returns when the server has closed the stream (after its final result, or an error), or raises
    ``TimeoutError`` ``timeout_s`` after the audio's expected sending time.
    """
    duration_s = len(samples) / sample_rate_hz
    deadline = (duration_s / speed if speed > 0 else duration_s) + timeout_s
    result = StreamResult()
    await asyncio.wait_for(_stream(url, samples, sample_rate_hz, speed, piece_s, on_event, result), deadline)
    return result


async def _stream(url: str, samples: np.ndarray, sample_rate_hz: int, speed: float, piece_s: float,
                  on_event: Callable[[dict], None] | None, result: StreamResult) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url, max_msg_size=1 << 20) as ws:
            receiver = asyncio.ensure_future(_receive(ws, result, on_event))
            await ws.send_json({"sample_rate": sample_rate_hz})
            step = max(1, int(round(piece_s * sample_rate_hz)))
            t0 = time.monotonic()
            for start in range(0, len(samples), step):
                if speed > 0:  # real time: piece k leaves when its audio would have been spoken
                    await asyncio.sleep(max(0.0, t0 + start / sample_rate_hz / speed - time.monotonic()))
                if ws.closed or result.error:
                    break
                await ws.send_bytes(to_pcm16(samples[start:start + step]))
                result.sent.append((min(start + step, len(samples)) / sample_rate_hz, time.monotonic()))
            if not ws.closed and not result.error:
                await ws.send_json({"type": "end"})
            await receiver
            result.close_code = ws.close_code
