"""A client of ``asr serve``'s ``/stream``: send audio at real speed (or faster), collect partial and final results.

Used by ``asr stream FILE`` and ``asr stream --mic`` (which print the results as they come), the server tests
and ``benchmarks/serve_load.py`` (which times them). Audio comes from a file, paced at real speed
(:func:`paced_pieces`), or from a microphone through the optional ``sounddevice`` package
(:class:`Microphone`, ``pip install 'asr[mic]'``); :func:`stream_pieces` sends either.

Example:
    >>> result = asyncio.run(stream_audio("ws://127.0.0.1:8000/stream", samples, 16000))  # doctest: +SKIP
    >>> result.final["text"]  # doctest: +SKIP
    'rubout g m e f'
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
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
    pieces = paced_pieces(samples, sample_rate_hz, speed=speed, piece_s=piece_s)
    return await asyncio.wait_for(stream_pieces(url, pieces, sample_rate_hz, on_event=on_event), deadline)


async def paced_pieces(samples: np.ndarray, sample_rate_hz: int, *, speed: float = 1.0,
                       piece_s: float = 0.1) -> AsyncIterator[np.ndarray]:
    """``samples`` in ``piece_s`` pieces, piece k handed out when its audio would have been spoken (``speed``
    times real time; 0: at once)."""
    step = max(1, int(round(piece_s * sample_rate_hz)))
    t0 = time.monotonic()
    for start in range(0, len(samples), step):
        if speed > 0:
            await asyncio.sleep(max(0.0, t0 + start / sample_rate_hz / speed - time.monotonic()))
        yield samples[start:start + step]


async def stream_pieces(url: str, pieces: AsyncIterator[np.ndarray], sample_rate_hz: int, *,
                        on_event: Callable[[dict], None] | None = None) -> StreamResult:
    """Send ``pieces`` (float samples at ``sample_rate_hz``) to ``url`` as they come, then end the stream; returns
    when the server has closed it (after its final result, or an error). No deadline of its own."""
    result = StreamResult()
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url, max_msg_size=1 << 20) as ws:
            receiver = asyncio.ensure_future(_receive(ws, result, on_event))
            await ws.send_json({"sample_rate": sample_rate_hz})
            sent = 0
            async for piece in pieces:
                if ws.closed or result.error:
                    break
                await ws.send_bytes(to_pcm16(piece))
                sent += len(piece)
                result.sent.append((sent / sample_rate_hz, time.monotonic()))
            if not ws.closed and not result.error:
                await ws.send_json({"type": "end"})
            await receiver
            result.close_code = ws.close_code
    return result


class MicrophoneError(RuntimeError):
    """No microphone input: the sounddevice package or the PortAudio library is missing, or the device failed."""


def _sounddevice():
    try:
        import sounddevice
    except ImportError as err:  # the package is missing
        raise MicrophoneError(f"--mic needs the sounddevice package: pip install 'asr[mic]' ({err})") from None
    except OSError as err:  # sounddevice raises OSError when the PortAudio library is missing
        raise MicrophoneError(f"--mic needs the PortAudio library (e.g. apt install libportaudio2): {err}") from None
    return sounddevice


class Microphone:
    """A microphone found and checked (``sounddevice`` importable, the device exists); :meth:`pieces` records.

    The device records at its own default rate (mono), resampled here when that is not ``sample_rate_hz``.

    Args:
        device: a PortAudio device index or name (None: the system's default input).
        sounddevice: the module to record with (tests pass a stand-in; default: the installed package).

    Raises:
        MicrophoneError: the package, the PortAudio library or the device is missing.
    """

    def __init__(self, sample_rate_hz: int, *, piece_s: float = 0.1, device: int | str | None = None,
                 sounddevice=None):
        self.sd = sounddevice or _sounddevice()
        self.sample_rate_hz, self.piece_s, self.device = sample_rate_hz, piece_s, device
        self.name = device if device is not None else "the default input"
        try:
            self.rate = int(self.sd.query_devices(device, "input")["default_samplerate"])
        except Exception as err:  # noqa: BLE001 - PortAudio's errors name the device problem
            raise MicrophoneError(f"no microphone input {device if device is not None else '(default)'}: "
                                  f"{err}") from None

    async def pieces(self, *, max_duration_s: float = 600.0, stop: asyncio.Event | None = None
                     ) -> AsyncIterator[np.ndarray]:
        """Audio in ``piece_s`` pieces at ``sample_rate_hz``, as it is recorded, until ``stop`` is set or
        ``max_duration_s`` of audio has come.

        At most 10 s of audio waits in the queue: if the sender falls that far behind, the recording stops
        with an error rather than grow without bound.
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue(maxsize=max(1, int(10.0 / self.piece_s)))
        overrun = []

        def put(x: np.ndarray) -> None:  # on the event loop
            if queue.full():
                overrun.append(len(x))
            else:
                queue.put_nowait(x)

        def callback(indata, frames, time_info, status) -> None:  # on PortAudio's thread
            loop.call_soon_threadsafe(put, np.asarray(indata, dtype=np.float32)[:, 0].copy())

        try:
            recording = self.sd.InputStream(samplerate=self.rate, channels=1, dtype="float32", callback=callback,
                                            blocksize=max(1, int(round(self.piece_s * self.rate))),
                                            device=self.device)
        except Exception as err:  # noqa: BLE001 - as above
            raise MicrophoneError(f"cannot record from {self.name}: {err}") from None
        resampler = None
        if self.rate != self.sample_rate_hz:
            import soxr

            resampler = soxr.ResampleStream(self.rate, self.sample_rate_hz, 1, dtype="float32")
        limit, total = int(round(max_duration_s * self.sample_rate_hz)), 0
        stopped = asyncio.ensure_future((stop or asyncio.Event()).wait())
        try:
            with recording:
                while total < limit:
                    getter = asyncio.ensure_future(queue.get())
                    await asyncio.wait({getter, stopped}, return_when=asyncio.FIRST_COMPLETED)
                    if not getter.done():
                        getter.cancel()
                        break
                    if overrun:
                        raise MicrophoneError(f"the stream fell more than 10 s behind the microphone "
                                              f"({sum(overrun) / self.rate:.1f} s of audio not sent)")
                    piece = getter.result()
                    if resampler is not None:
                        piece = resampler.resample_chunk(piece)
                    piece = piece[:limit - total]
                    total += len(piece)
                    if len(piece):
                        yield piece
        finally:
            stopped.cancel()
