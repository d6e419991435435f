"""``asr serve``: live recognition over WebSocket, file transcription over HTTP, and a health endpoint.

Built on aiohttp, which serves WebSocket, HTTP uploads (a POST body, streamed with a size limit) and plain GET
on one port, and also gives the client (``asr stream``, the tests, ``benchmarks/serve_load.py``). The
``websockets`` library speaks only the GET handshake (its HTTP parser refuses other methods before any hook
runs), so an upload endpoint would need a second server beside it.

Endpoints (one port):

* ``GET /stream`` (WebSocket). The client's first message is JSON text ``{"sample_rate": 16000}`` (the
  model's rate: other rates are refused, resample on the client). The server answers ``{"type": "ready",
  ...}`` with the model's chunk and latency; then the client sends binary messages of raw 16-bit little-
  endian mono PCM, and the server sends ``{"type": "partial", "segment", "text"}`` as chunks are decoded
  and ``{"type": "final", "segment", "text", "words", "start", "end", "confidence", "end_of_stream"}`` at
  an endpoint and at the end. The client ends its audio with the text ``{"type": "end"}``; the server sends
  the last final result and closes (1000).
* ``POST /transcribe?name=a.flac``: the body is one audio file; the answer is the JSON record ``asr
  transcribe`` writes for it (``id`` and ``path`` are ``name``), 200, or 422 when the audio is unusable.
* ``GET /health``: 200 ``{"status": "ready", ...}`` while accepting work; 503 once shutting down (a
  readiness probe takes the replica out of a load balancer).

A full-context model (:class:`OfflineRecognizer`) speaks the same protocol without partial results: its
stream's audio is kept, and recognised whole when the stream ends.

Every limit (:class:`Limits`) is answered with ``{"type": "error", "code", "message"}`` and a clean close
(WebSocket close codes 1003 bad data, 1008 policy, 1009 too big, 1013 busy, 1001 shutting down) or an HTTP
status with a JSON body. The model runs in one worker thread (:class:`Engine`), never on the event loop; it
takes the audio of every stream that has some waiting and runs their chunks as one batched forward pass.
Nothing is kept between streams, so replicas scale out behind any load balancer (docs/streaming.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from aiohttp import WSMsgType, web

from asr.data.discover import AUDIO_EXTENSIONS, probe_durations
from asr.data.manifest import Utterance
from asr.inference.endpoint import EnergyEndpointer
from asr.inference.limits import Limits
from asr.inference.outputs import make_record
from asr.inference.streaming import Stream, StreamingRecognizer, final_event, run_blocks
from asr.inference.transcribe import transcribe_utterances

log = logging.getLogger(__name__)
ENGINE_TIMEOUT_S = 60.0  # longest wait for the model thread's answer to one message


class ClientError(Exception):
    """A client broke the protocol or a limit: ``code`` for programs, ``message`` for people."""

    def __init__(self, code: str, message: str, close_code: int = 1008):
        super().__init__(message)
        self.code, self.message, self.close_code = code, message, close_code


def error_body(code: str, message: str) -> dict:
    return {"type": "error", "code": code, "message": message}


def _resolve(loop: asyncio.AbstractEventLoop, fut: asyncio.Future, result=None, error: BaseException | None = None):
    """Hand a result to the event loop's future (it may have been cancelled when its client left)."""
    def done() -> None:
        if not fut.done():
            fut.set_exception(error) if error is not None else fut.set_result(result)
    loop.call_soon_threadsafe(done)


class Engine:
    """The model's one thread: it takes every stream job that is waiting and decodes their chunks together.

    Jobs of different streams that arrive while a pass runs are batched into the next (up to
    ``max_batch``); :attr:`passes` and :attr:`blocks` count what it did (blocks per pass is the batching).
    """

    def __init__(self, recognizer: StreamingRecognizer, max_batch: int = 16):
        self.rec, self.max_batch = recognizer, max_batch
        self.jobs: queue.Queue = queue.Queue()
        self.passes = self.blocks = self.jobs_done = 0
        self.thread = threading.Thread(target=self._run, name="asr-model", daemon=True)
        self.thread.start()

    def submit(self, stream: Stream, samples: torch.Tensor | None) -> asyncio.Future:
        """Feed ``samples`` (None: the end of the audio) and decode; the future's result is the new events."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self.jobs.put((stream, samples, fut, loop))
        return fut

    def close(self) -> None:
        self.jobs.put(None)
        self.thread.join(timeout=30)

    def _run(self) -> None:
        torch.set_grad_enabled(False)
        while True:
            job = self.jobs.get()
            if job is None:
                return
            batch = [job]
            while len(batch) < self.max_batch:
                try:
                    job = self.jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    self.jobs.put(None)  # stop after this batch
                    break
                batch.append(job)
            try:
                self._process(batch)
            except BaseException as err:  # noqa: BLE001 - the thread must outlive any one batch
                log.exception("model thread: batch failed")
                for _, _, fut, loop in batch:
                    _resolve(loop, fut, error=RuntimeError(f"the model thread failed: {err}"))

    def _process(self, batch: list) -> None:
        ready = []
        for stream, samples, fut, loop in batch:
            try:  # one stream's bad state never stops the others
                stream.feed(samples) if samples is not None else stream.feed_end()
                ready.append((stream, stream.blocks(), fut, loop))
            except Exception as err:  # noqa: BLE001 - reported to that stream's client
                _resolve(loop, fut, error=err)
        try:
            self.passes += run_blocks([(s, blocks) for s, blocks, _, _ in ready])
        except Exception as err:  # noqa: BLE001 - the streams of a failed pass get the error, the server goes on
            log.exception("model pass failed")
            for _, _, fut, loop in ready:
                _resolve(loop, fut, error=err)
            return
        self.blocks += sum(len(blocks) for _, blocks, _, _ in ready)
        self.jobs_done += len(ready)
        for stream, _, fut, loop in ready:
            try:
                _resolve(loop, fut, result=stream.take_events())
            except Exception as err:  # noqa: BLE001 - reported to that stream's client
                _resolve(loop, fut, error=err)


def pcm16(data: bytes, limits: Limits) -> torch.Tensor:
    """A binary message → ``(S,)`` float32 samples; :class:`ClientError` for a message too big or odd-sized."""
    if len(data) > limits.max_message_bytes:
        raise ClientError("message_too_big", f"a binary message may hold at most {limits.max_message_bytes} bytes, "
                          f"got {len(data)}; send the audio in smaller pieces", 1009)
    if len(data) % 2:
        raise ClientError("bad_audio", f"binary messages hold 16-bit samples: {len(data)} bytes is not a whole "
                          "number of samples", 1003)
    return torch.from_numpy(np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0)


def parse_start(text: str, sample_rate_hz: int) -> int:
    """The first message, ``{"sample_rate": N}``: the rate, which must be the model's."""
    try:
        start = json.loads(text)
    except ValueError:
        start = None
    example = f'{{"sample_rate": {sample_rate_hz}}}'
    if not isinstance(start, dict) or "sample_rate" not in start:
        raise ClientError("bad_start", f"the first message must be JSON such as {example}", 1008)
    rate = start["sample_rate"]
    if isinstance(rate, bool) or not isinstance(rate, int):
        raise ClientError("bad_start", f"sample_rate must be an integer in Hz, got {rate!r}", 1008)
    if rate != sample_rate_hz:
        raise ClientError("bad_sample_rate", f"sample_rate {rate} Hz is not supported: this model listens at "
                          f"{sample_rate_hz} Hz; resample on the client and send {example}", 1003)
    return rate


class OfflineRecognizer:
    """A full-context model behind ``/stream``: the audio is kept, and recognised whole when a segment ends.

    Every output frame of a full bidirectional model depends on the whole utterance, so it cannot give results
    while the audio comes in. Served this way, a client speaks the same protocol and gets no partials: one
    final result after its ``{"type": "end"}`` (or at ``limits.max_stream_s``), the record ``asr transcribe``
    and ``POST /transcribe`` give for the same audio. With ``endpoint_silence_s > 0`` an energy endpointer
    (:class:`asr.inference.endpoint.EnergyEndpointer`) also ends a segment at each pause of that length after
    speech, or after ``max_segment_s``, and each segment gets its own final result as soon as it ends.
    """

    streaming = False  # no partial results: a segment is recognised when it has ended

    def __init__(self, model, tokenizer, *, endpoint_silence_s: float = 0.0, max_segment_s: float = 30.0):
        if endpoint_silence_s < 0 or (endpoint_silence_s and max_segment_s <= endpoint_silence_s):
            raise ValueError(f"endpoint_silence_s must be >= 0 and below max_segment_s, got {endpoint_silence_s}, "
                             f"{max_segment_s}")
        self.model, self.tokenizer = model.eval(), tokenizer
        self.config = model.features.config
        self.frame_shift_s = self.config.output_frame_shift_s
        self.endpoint_silence_s, self.max_segment_s = endpoint_silence_s, max_segment_s

    @property
    def sample_rate_hz(self) -> int:
        return self.config.sample_rate_hz

    def open(self) -> OfflineStream:
        return OfflineStream(self)


class OfflineStream:
    """One stream of an :class:`OfflineRecognizer`: the engine's stream interface, with no blocks to run."""

    def __init__(self, recognizer: OfflineRecognizer):
        self.rec = recognizer
        self.pieces: list[np.ndarray] = []  # the current segment's audio
        self.audio_samples = 0
        self.segment_start = 0  # stream sample where the current segment starts
        self.ended: list[tuple[int, np.ndarray]] = []  # segments cut by the endpointer, not yet recognised
        self.segment = 0
        self.finished = False
        self._done = False
        self.endpointer = EnergyEndpointer(recognizer.sample_rate_hz, silence_s=recognizer.endpoint_silence_s,
                                           max_segment_s=recognizer.max_segment_s) \
            if recognizer.endpoint_silence_s else None

    @property
    def duration_s(self) -> float:
        return self.audio_samples / self.rec.sample_rate_hz

    def feed(self, samples: torch.Tensor) -> None:
        if self.finished:
            raise ClientError("bad_message", "the stream has ended; open a new one", 1008)
        piece = torch.as_tensor(samples, dtype=torch.float32).flatten().numpy()
        self.pieces.append(piece)
        self.audio_samples += len(piece)
        for cut in self.endpointer.push(piece) if self.endpointer else ():
            held = np.concatenate(self.pieces)
            n = cut - self.segment_start
            self.ended.append((self.segment_start, held[:n]))
            self.pieces, self.segment_start = [held[n:]], cut

    def feed_end(self) -> None:
        self.finished = True

    def blocks(self) -> list:
        return []

    def take_events(self) -> list[dict]:
        """The final results of the segments that ended (recognised here, in the model thread); at the end of
        the stream, the last one's."""
        events = [e for e in (self._final(start, audio, False) for start, audio in self.ended) if e is not None]
        self.ended = []
        if self.finished and not self._done:
            self._done = True
            rest = np.concatenate(self.pieces) if self.pieces else np.zeros(0, dtype=np.float32)
            self.pieces = []
            events.append(self._final(self.segment_start, rest, True))
        return events

    def _final(self, start: int, samples: np.ndarray, end_of_stream: bool) -> dict | None:
        """A segment's final result (None for an endpointed segment with no words: nothing was said)."""
        rate = self.rec.sample_rate_hz
        offset, duration = start / rate, len(samples) / rate
        words = recognize_samples(self.rec, samples) if duration >= MIN_OFFLINE_S else []
        if not words and not end_of_stream:
            return None
        words = [{**w, "start": round(w["start"] + offset, 3), "end": round(w["end"] + offset, 3)} for w in words]
        event = final_event(self.segment, words, start_s=offset, end_s=offset + duration,
                            confidence=sum(w["confidence"] for w in words) / len(words) if words else None,
                            end_of_stream=end_of_stream)
        self.segment += 1
        return event


MIN_OFFLINE_S = 0.1  # shorter streams get an empty final result (an upload that short gets an error)


def transcribe_one(rec, utt: Utterance) -> dict:
    """``asr transcribe``'s record of one file (duration known), by ``rec``'s model, in this thread."""
    with torch.inference_mode():
        (record,) = [r for batch in transcribe_utterances(rec.model, rec.tokenizer, [utt], num_workers=0)
                     for r in batch]
    return record


def recognize_samples(rec, samples: np.ndarray) -> list[dict]:
    """``asr transcribe``'s words for ``samples`` (through a temporary file: the same windows, the same record)."""
    import soundfile as sf

    with tempfile.TemporaryDirectory(prefix="asr-stream-") as tmp:
        path = Path(tmp) / "stream.wav"
        sf.write(path, samples, rec.sample_rate_hz, subtype="FLOAT")
        record = transcribe_one(rec, Utterance("stream", str(path), len(samples) / rec.sample_rate_hz))
    if record["error"]:
        raise RuntimeError(record["error"])
    return record["words"]


class Connection:
    """One WebSocket client: the protocol of the module docstring, over its own :class:`Stream`."""

    def __init__(self, server: Server, ws: web.WebSocketResponse):
        self.server, self.ws = server, ws
        self.stream: Stream | None = None
        self.lock = asyncio.Lock()  # the client's messages and a shutdown never work on the stream at once

    async def run(self) -> None:
        """Serve until the client ends its audio, leaves, or breaks a rule (answered, then closed)."""
        try:
            await self._serve()
        except ClientError as err:
            await self.close_with(err)
        except ConnectionResetError:
            pass  # the client left: its stream is dropped with this object
        except Exception as err:  # noqa: BLE001 - this client gets a clear error; the server goes on
            log.exception("stream failed")
            await self.close_with(ClientError("internal", f"the server could not decode this stream: {err}", 1011))

    async def _serve(self) -> None:
        limits, rec = self.server.limits, self.server.rec
        first = await self._receive()
        if first is None:
            return
        if first.type != WSMsgType.TEXT:
            raise ClientError("bad_start", f'the first message must be JSON text such as {{"sample_rate": '
                              f'{rec.sample_rate_hz}}}, got binary data', 1008)
        parse_start(first.data, rec.sample_rate_hz)
        self.stream = rec.open()
        await self.ws.send_json({"type": "ready", "sample_rate": rec.sample_rate_hz, **self.server.model_info})
        while True:
            msg = await self._receive()
            if msg is None:
                return
            if msg.type == WSMsgType.TEXT:
                if _is_end(msg.data):
                    await self._decode(None)
                    await self.ws.close(code=1000)
                    return
                raise ClientError("bad_message", 'text messages after the first may only be {"type": "end"}; '
                                  "audio goes in binary messages", 1003)
            samples = pcm16(msg.data, limits)
            if self.stream.duration_s + len(samples) / rec.sample_rate_hz > limits.max_stream_s:
                await self._decode(None)  # what was heard so far still gets its final result
                raise ClientError("stream_too_long", f"a stream may carry at most {limits.max_stream_s:g} s of audio; "
                                  "open a new stream to go on", 1008)
            await self._decode(samples)

    async def _receive(self):
        """The next data message; None when the client closed; :class:`ClientError` when it fell silent."""
        try:
            msg = await self.ws.receive(timeout=self.server.limits.idle_timeout_s)
        except asyncio.TimeoutError:
            raise ClientError("idle", f"no message for {self.server.limits.idle_timeout_s:g} s", 1008) from None
        if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
            return msg
        if msg.type == WSMsgType.ERROR and self.ws.close_code == 1009:  # over the hard cap: aiohttp closed it
            log.info("closed a stream whose message exceeded the hard cap")
        return None

    async def _decode(self, samples: torch.Tensor | None) -> None:
        async with self.lock:
            if self.stream is None or self.stream.finished:
                return
            try:  # the model thread answers in milliseconds; a minute means it is stuck, not busy
                events = await asyncio.wait_for(self.server.engine.submit(self.stream, samples), ENGINE_TIMEOUT_S)
            except asyncio.TimeoutError:
                raise ClientError("internal", f"the model did not answer within {ENGINE_TIMEOUT_S:g} s", 1011) from None
            for event in events:
                await self.ws.send_json(event)

    async def close_with(self, err: ClientError) -> None:
        """Send the error as JSON and close with its code (the client may already be gone)."""
        try:
            if not self.ws.closed:
                await self.ws.send_json(error_body(err.code, err.message))
                await self.ws.close(code=err.close_code, message=err.code.encode()[:120])
        except (ConnectionResetError, RuntimeError):
            pass

    async def shutdown(self) -> None:
        """Server shutting down: the audio received gets its final result, then the stream is closed (1001)."""
        try:
            await self._decode(None)
        except (ConnectionResetError, RuntimeError):
            pass
        await self.close_with(ClientError("shutting_down", "the server is shutting down; reconnect to another "
                                          "replica", 1001))


def _is_end(text: str) -> bool:
    try:
        return json.loads(text) == {"type": "end"}
    except ValueError:
        return False


class Server:
    """The state one ``asr serve`` process shares between requests: model, limits, open streams.

    Args:
        recognizer: the streaming model (its ``model`` and ``tokenizer`` also transcribe uploads), or a
            full-context one wrapped in :class:`OfflineRecognizer` (one final result per stream, no partials).
        limits: see :class:`Limits`.
        name: how ``/health`` names the model (e.g. its file name).
    """

    def __init__(self, recognizer: StreamingRecognizer | OfflineRecognizer, limits: Limits = Limits(),
                 name: str = "model"):
        self.rec, self.limits, self.name = recognizer, limits, name
        self.engine = Engine(recognizer, limits.max_batch)
        self.uploads_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="asr-upload")
        self.connections: set[Connection] = set()
        self.uploads = 0
        self.closing = False
        self.model_info = {"streaming": recognizer.streaming, "frame_shift_s": rec_round(recognizer.frame_shift_s),
                           "chunk_s": None, "right_context_s": None, "algorithmic_latency_s": None}
        if recognizer.streaming:
            self.model_info.update(chunk_s=rec_round(recognizer.chunk_frames * recognizer.frame_shift_s),
                                   right_context_s=rec_round(recognizer.right_frames * recognizer.frame_shift_s),
                                   algorithmic_latency_s=rec_round(recognizer.algorithmic_latency_s))

    def app(self) -> web.Application:
        """The aiohttp application: routes, and closing open streams on shutdown."""
        app = web.Application(client_max_size=self.limits.max_upload_bytes + 1)
        app.router.add_get("/stream", self.stream_handler)
        app.router.add_post("/transcribe", self.transcribe_handler)
        app.router.add_get("/health", self.health_handler)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def health_handler(self, request: web.Request) -> web.Response:
        body = {"status": "shutting_down" if self.closing else "ready", "model": self.name,
                "sample_rate": self.rec.sample_rate_hz,
                "streams": len(self.connections), "max_streams": self.limits.max_streams, "uploads": self.uploads,
                **self.model_info, "engine": {"passes": self.engine.passes, "blocks": self.engine.blocks,
                                              "jobs": self.engine.jobs_done}}
        return web.json_response(body, status=503 if self.closing else 200)

    async def stream_handler(self, request: web.Request) -> web.StreamResponse:
        if self.closing:
            return web.json_response(error_body("shutting_down", "the server is shutting down"), status=503)
        if len(self.connections) >= self.limits.max_streams:
            return web.json_response(error_body("too_many_streams", f"this server takes {self.limits.max_streams} "
                                                "streams at once; try again later or another replica"), status=503)
        # the library's own cap is a backstop at twice the limit; up to it, an oversize message gets a JSON error
        ws = web.WebSocketResponse(max_msg_size=2 * self.limits.max_message_bytes, heartbeat=None)
        conn = Connection(self, ws)
        self.connections.add(conn)  # counted before the first await, so the limit holds under a burst
        try:
            await ws.prepare(request)
            await conn.run()
        finally:
            self.connections.discard(conn)
        return ws

    async def transcribe_handler(self, request: web.Request) -> web.Response:
        limits = self.limits
        if self.closing or self.uploads >= limits.max_uploads:
            return web.json_response(error_body("busy", f"{limits.max_uploads} uploads are being transcribed (or "
                                                "the server is shutting down); try again later"), status=503)
        too_big = error_body("upload_too_big", f"an upload may hold at most {limits.max_upload_bytes} bytes")
        if (request.content_length or 0) > limits.max_upload_bytes:
            return web.json_response(too_big, status=413)
        self.uploads += 1
        try:
            body = bytearray()
            while True:  # a body that trickles in must not hold an upload slot for ever
                try:
                    piece = await asyncio.wait_for(request.content.readany(), limits.idle_timeout_s)
                except asyncio.TimeoutError:
                    return web.json_response(error_body("idle", f"no upload data for {limits.idle_timeout_s:g} s"),
                                             status=408)
                if not piece:
                    break
                body += piece
                if len(body) > limits.max_upload_bytes:
                    return web.json_response(too_big, status=413)
            if not body:
                return web.json_response(error_body("empty_upload", "the request body is empty: POST the audio "
                                                    "file as the body"), status=400)
            name = upload_name(request.query.get("name", "upload"))
            record = await asyncio.get_running_loop().run_in_executor(self.uploads_pool, self._transcribe,
                                                                      bytes(body), name)
        finally:
            self.uploads -= 1
        return web.json_response(record, status=200 if record["text"] is not None else 422,
                                 dumps=lambda r: json.dumps(r, ensure_ascii=False))

    def _transcribe(self, data: bytes, name: str) -> dict:
        """``asr transcribe``'s record of one uploaded file (in the upload thread, beside the stream engine)."""
        rate = self.rec.sample_rate_hz
        with tempfile.TemporaryDirectory(prefix="asr-upload-") as tmp:
            suffix = Path(name).suffix.lower()
            path = Path(tmp) / ("audio" + (suffix if suffix.lstrip(".") in AUDIO_EXTENSIONS else ""))
            path.write_bytes(data)
            usable, failed = probe_durations([Utterance(name, str(path), 0.0)], sample_rate_hz=rate,
                                             min_duration_s=0.1)
            if failed:
                return make_record(name, name, None, None, error=failed[0][1])
            record = transcribe_one(self.rec, usable[0])
        return {**record, "path": name}

    async def _on_shutdown(self, app: web.Application) -> None:
        self.closing = True
        if self.connections:
            log.info("shutting down: finishing %d open stream(s)", len(self.connections))
            await asyncio.wait([asyncio.ensure_future(c.shutdown()) for c in list(self.connections)],
                               timeout=self.limits.shutdown_timeout_s)

    def close(self) -> None:
        self.engine.close()
        self.uploads_pool.shutdown(wait=False, cancel_futures=True)


def rec_round(x: float) -> float:
    return round(x, 4)


def upload_name(name: str) -> str:
    """The client's file name as a record id: its last path part, printable, at most 200 characters."""
    base = Path(name.replace("\\", "/")).name
    clean = "".join(ch for ch in base if ch.isprintable())[:200]
    return clean or "upload"


async def serve(server: Server, host: str = "127.0.0.1", port: int = 8000, *, stop: asyncio.Event | None = None,
                on_ready=None) -> None:
    """Serve until ``stop`` is set (``asr serve`` sets it on SIGTERM / SIGINT), then shut down gracefully.

    ``on_ready(port)`` is called once the port listens (``port=0``: the system picks a free one).
    """
    stop = stop or asyncio.Event()
    runner = web.AppRunner(server.app(), shutdown_timeout=server.limits.shutdown_timeout_s, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1] if site._server and site._server.sockets else port
    if on_ready is not None:
        on_ready(bound)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()  # stops listening, finishes open streams (on_shutdown), waits for handlers
        server.close()
