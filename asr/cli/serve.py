"""``asr serve`` (the streaming server) and ``asr stream`` (its file client): see ServeConfig and StreamConfig."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

from asr.cli.common import Flags, command_flags, tool
from asr.config.commands import ServeConfig, StreamConfig

SERVE_FLAGS = command_flags(Flags(positional=("model",), options={"--host": "host", "--port": "port"}),
                            "serve")  # asr serve m.pt --port 9000
STREAM_FLAGS = command_flags(Flags(positional=("file",), switches={"--mic": "mic"},
                                   options={"--url": "url", "--speed": "speed", "--device": "mic_device"}),
                             "stream")  # asr stream a.wav --speed 2; asr stream --mic


def _serve(c: ServeConfig) -> int:
    from asr.inference.serve import OfflineRecognizer, Server
    from asr.inference.streaming import StreamingRecognizer
    from asr.models.checkpoint import load_model
    from asr.runtime import setup_threads

    threads = setup_threads(c.threads)
    model, tokenizer, _ = load_model(c.model)
    if getattr(model.acoustic, "streamable", False):
        if c.endpoint_silence_s:
            raise ValueError(f"endpoint_silence_s={c.endpoint_silence_s:g} is for full-context models, and {c.model} "
                             "streams: its endpointer is the model's own blank output (endpoint_blank_s)")
        recognizer = StreamingRecognizer(model, tokenizer, step_s=c.step_s, endpoint_blank_s=c.endpoint_blank_s)
    else:  # full context: uploads as usual, and a stream's segments are recognised whole when they end
        if c.endpoint_blank_s:
            raise ValueError(f"endpoint_blank_s={c.endpoint_blank_s:g}: {c.model} is a full-context bidirectional "
                             "model, which has no blank output until a segment has ended; use endpoint_silence_s "
                             "(an energy endpointer), or serve a streaming model (model.bidirectional=false or "
                             "model.chunk_s > 0)")
        recognizer = OfflineRecognizer(model, tokenizer, endpoint_silence_s=c.endpoint_silence_s,
                                       max_segment_s=c.max_segment_s)
    server = Server(recognizer, c.limits, name=Path(c.model).name)
    asyncio.run(_run(server, c, threads))
    return 0


async def _run(server, c: ServeConfig, threads: int) -> None:
    from asr.inference.serve import serve

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):  # finish open streams, then exit 0
        loop.add_signal_handler(sig, stop.set)

    def ready(port: int) -> None:
        info = server.model_info
        if info["streaming"]:
            model = (f"chunk {info['chunk_s']:g} s + look-ahead {info['right_context_s']:g} s, algorithmic latency "
                     f"{info['algorithmic_latency_s']:g} s")
        else:
            model = ("full-context bidirectional: a stream gets no partial results, a final result after its "
                     "audio ends" + (f" and after each pause of {c.endpoint_silence_s:g} s" if c.endpoint_silence_s
                                     else ""))
        print(f"asr serve: listening on http://{c.host}:{port} (WebSocket /stream, POST /transcribe, GET /health); "
              f"{c.model}: {model}; {threads} thread(s)", flush=True)

    await serve(server, c.host, c.port, stop=stop, on_ready=ready)
    print("asr serve: stopped", flush=True)


class LivePrinter:
    """Partial results overwrite one line on a terminal (a line each otherwise); finals stay."""

    def __init__(self, events: bool = False, out=None):
        self.events, self.out = events, out or sys.stdout  # looked up now: a caller may have replaced sys.stdout
        self.tty = self.out.isatty()
        self.last = None

    def __call__(self, event: dict) -> None:
        if self.events:
            print(json.dumps(event, ensure_ascii=False), file=self.out, flush=True)
            return
        kind, text = event.get("type"), event.get("text", "")
        if kind == "partial" and text != self.last:
            print(f"\r\033[K{text}" if self.tty else f"partial: {text}", end="" if self.tty else "\n",
                  file=self.out, flush=True)
        elif kind == "final":
            conf = f" (confidence {event['confidence']:.2f})" if event.get("confidence") is not None else ""
            print(f"\r\033[K{text}{conf}" if self.tty else f"final: {text}{conf}", file=self.out, flush=True)
        self.last = text


def _stream(c: StreamConfig) -> int:
    import aiohttp

    from asr.inference.stream_client import stream_audio

    printer = LivePrinter(c.events)
    try:
        if c.mic:
            result = asyncio.run(_stream_microphone(c, printer))
        else:
            from asr.data.audio import load_audio

            samples = load_audio(c.file, c.sample_rate_hz)
            result = asyncio.run(stream_audio(c.url, samples, c.sample_rate_hz, speed=c.speed, piece_s=c.piece_s,
                                              timeout_s=c.timeout_s, on_event=printer))
    except aiohttp.ClientError as err:
        raise RuntimeError(f"cannot stream to {c.url}: {err} (is asr serve running there?)") from None
    except asyncio.TimeoutError:
        raise RuntimeError(f"{c.url}: no final result within {c.timeout_s:g} s after the audio") from None
    if result.error:
        print(f"error: the server refused the stream: {result.error['message']}", file=sys.stderr)
        return 1
    return 0 if result.final is not None else 1


async def _stream_microphone(c: StreamConfig, printer, sounddevice=None):
    """The microphone to ``c.url`` until Ctrl-C (or ``c.max_duration_s``); then the stream ends and its final
    result is waited for."""
    from asr.inference.stream_client import Microphone, stream_pieces

    mic = Microphone(c.sample_rate_hz, piece_s=c.piece_s, device=c.device, sounddevice=sounddevice)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print(f"asr stream: recording from {mic.name} at {mic.rate} Hz; Ctrl-C ends the stream", file=sys.stderr,
          flush=True)
    interrupted = asyncio.ensure_future(stop.wait())
    try:
        pieces = mic.pieces(max_duration_s=c.max_duration_s, stop=stop)
        sending = asyncio.ensure_future(stream_pieces(c.url, pieces, c.sample_rate_hz, on_event=printer))
        await asyncio.wait({sending, interrupted}, return_when=asyncio.FIRST_COMPLETED)
        # after Ctrl-C the recording stops, the stream ends, and the final result has timeout_s to come
        return await asyncio.wait_for(sending, c.timeout_s if stop.is_set() else None)
    finally:
        interrupted.cancel()
        loop.remove_signal_handler(signal.SIGINT)


def serve_main(argv: list[str] | None = None) -> int:
    """``asr serve model=<model.pt> [port=8000] [limits.max_streams=16]``; returns the exit status."""
    return tool("serve", _serve, argv, SERVE_FLAGS)


def stream_main(argv: list[str] | None = None) -> int:
    """``asr stream file=<audio> [url=ws://127.0.0.1:8000/stream] [speed=1]`` or ``asr stream --mic``; returns the
    exit status."""
    return tool("stream", _stream, argv, STREAM_FLAGS)
