"""Typed settings of every command besides ``asr train`` (whose settings are :class:`asr.config.schema.Settings`).

Each command's dataclass is the one source of its defaults: the CLI registers it in Hydra's
ConfigStore (:func:`asr.config.schema.defaults_dict`), ``conf/<command>.yaml`` adds only the
``hydra:`` block and the defaults list, and :func:`asr.config.schema.from_dict` validates the
composed config, naming the key of any problem. A field without a default is required
(``asr evaluate model=...``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from asr.config.schema import DataConfig, DecoderConfig
from asr.frontend.config import FeatureConfig
from asr.inference.limits import Limits
from asr.inference.outputs import SubtitleConfig
from asr.inference.segment import WindowConfig


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


# what runs a model in asr transcribe / evaluate (asr.inference.backends): torch on model.pt as trained,
# torch-int8 (the same file with torch's dynamic int8 layers, CPU), onnx (an asr export file in onnxruntime, CPU)
RUNTIMES = ("torch", "torch-int8", "onnx")


def _check_runtime(runtime: str) -> None:
    _check(runtime in RUNTIMES, f"runtime: {runtime!r} is not one of {', '.join(RUNTIMES)}")


@dataclass(frozen=True)
class EvaluateData:
    manifest: str  # JSONL manifest with audio_filepath, duration, text
    max_batch_duration_s: float = 300.0  # padded audio seconds per inference batch
    num_workers: int = 0  # parallel audio decoding processes

    def __post_init__(self):
        _check(self.max_batch_duration_s > 0, f"data.max_batch_duration_s must be > 0, got {self.max_batch_duration_s}")
        _check(self.num_workers >= 0, f"data.num_workers must be >= 0, got {self.num_workers}")


@dataclass(frozen=True)
class EvaluateConfig:
    """``asr evaluate``: score a model file on a manifest (WER, CER, report, summary.json)."""

    model: str  # a model file (model.pt from a training run), or an asr export .onnx with runtime=onnx
    data: EvaluateData
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    runtime: str = "torch"  # torch | torch-int8 (model.pt, int8 on the CPU) | onnx (an asr export file, CPU)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int = 0  # CPU threads (torch's or onnxruntime's); 0: the cores that are free right now
    overwrite: bool = False  # replace report.txt, summary.json, hyps.jsonl from another model or manifest

    def __post_init__(self):
        _check(self.threads >= 0, f"threads must be >= 0 (0: the free cores), got {self.threads}")
        _check_runtime(self.runtime)


@dataclass(frozen=True)
class TranscribeBatch:
    # padded audio seconds per batch; bounds memory. 60-120 s was fastest on 2 CPU cores: larger batches
    # spill the cache, smaller ones starve the LSTM's per-step matrix products
    max_duration_s: float = 120.0
    num_workers: int | None = None  # audio-decoding processes; None: one if a core is free beside torch's threads

    def __post_init__(self):
        _check(self.max_duration_s > 0, f"batch.max_duration_s must be > 0, got {self.max_duration_s}")
        _check(self.num_workers is None or self.num_workers >= 0,
               f"batch.num_workers must be >= 0 (or null: automatic), got {self.num_workers}")


@dataclass(frozen=True)
class TranscribeConfig:
    """``asr transcribe``: a folder, file or manifest to JSONL (and txt/csv/srt/vtt), resumable."""

    model: str  # a model file (model.pt from a training run), or an asr export .onnx with runtime=onnx
    input: str  # a folder (searched recursively), one audio file, or a JSONL manifest (with text: also scored)
    output: str  # the JSONL record, one line per file; other formats and <output>.summary.json go next to it
    format: str | list[str] = field(default_factory=lambda: ["jsonl"])  # jsonl, txt, csv, srt, vtt
    include: str = "*"  # shell pattern on the path inside the folder ("*" crosses "/"), e.g. "*.flac"
    extensions: str | list[str] = field(  # what counts as audio in a folder ("wav,flac" or a list)
        default_factory=lambda: ["wav", "flac", "ogg", "opus", "mp3", "m4a", "aiff", "aif", "sph"])
    resume: bool = True  # skip files already in output (a killed run continues where it stopped)
    overwrite: bool = False  # replace an output that is not ours (otherwise refused), or start afresh
    min_duration_s: float = 0.1  # shorter files are reported as too short, not transcribed
    batch: TranscribeBatch = field(default_factory=TranscribeBatch)
    long_audio: WindowConfig = field(default_factory=WindowConfig)  # longer files go in overlapping windows
    subtitles: SubtitleConfig = field(default_factory=SubtitleConfig)  # SRT/VTT cues
    decoder: DecoderConfig = field(default_factory=DecoderConfig)  # greedy only: timestamps come from its path
    runtime: str = "torch"  # torch | torch-int8 (model.pt, int8 on the CPU) | onnx (an asr export file, CPU)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int = 0  # CPU threads (torch's or onnxruntime's); 0: the cores that are free right now
    progress: bool | None = None  # None: a bar on a terminal, log lines otherwise

    def __post_init__(self):
        _check(self.threads >= 0, f"threads must be >= 0 (0: the free cores), got {self.threads}")
        _check_runtime(self.runtime)
        _check(self.min_duration_s >= 0, f"min_duration_s must be >= 0, got {self.min_duration_s}")
        _check(self.decoder.name == "greedy", "asr-transcribe decodes greedily (its word timestamps come from the "
               f"greedy CTC path); decoder={self.decoder.name} is available in asr-evaluate")

    @property
    def extension_list(self) -> list[str]:
        return self.extensions.split(",") if isinstance(self.extensions, str) else list(self.extensions)


@dataclass(frozen=True)
class ValidateData:
    manifest: str | list[str]  # one JSONL manifest or a list of them
    vocab: str | None = None  # vocab.json: also check transcripts against it; None: no vocabulary check


@dataclass(frozen=True)
class ValidateConfig:
    """``asr validate``: every manifest line checked, every problem named with its line and path."""

    data: ValidateData
    features: FeatureConfig = field(default_factory=FeatureConfig)  # every transcript must fit its frames
    require_text: bool = True  # false for manifests without transcripts (transcription input)
    audio: str = "decode"  # exists (stat only) | header (format, duration) | decode (every sample)
    duration_tolerance_s: float = 0.1  # manifests often round durations to 0.1 s
    report: str | None = None  # None: <hydra.run.dir>/validation.json
    overwrite: bool = False  # replace a report file that is not asr validate's report on these manifests

    def __post_init__(self):
        from asr.data.validate import AUDIO_CHECKS

        _check(self.audio in AUDIO_CHECKS, f"audio: {self.audio!r} is not one of {', '.join(AUDIO_CHECKS)}")
        _check(self.duration_tolerance_s >= 0,
               f"duration_tolerance_s: expected a number >= 0, got {self.duration_tolerance_s!r}")

    @property
    def manifests(self) -> list[str]:
        m = self.data.manifest
        return [m] if isinstance(m, str) else list(m)


@dataclass(frozen=True)
class StatsConfig:
    """``asr stats``: vocabulary and normalisation statistics of a training set (recipe stage 2)."""

    output_dir: str  # writes vocab.json and stats.pt here
    data: DataConfig = field(default_factory=DataConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    overwrite: bool = False  # replace vocab.json and stats.pt already in output_dir


@dataclass(frozen=True)
class InspectConfig:
    """``asr inspect``: figures of one utterance's recurrent gates and posteriors."""

    model: str  # a model file (model.pt from a training run)
    audio: str  # one audio file, any format and rate asr reads (resampled to the model's rate)
    output: str  # folder for the PNG figures and inspect.json
    layer: int = -1  # recurrent layer whose gates are shown: 0 is the first, -1 the top
    direction: str = "forward"  # forward | backward (the right-to-left half of a bidirectional layer)
    top_k: int = 12  # units shown: those whose hidden output varies most over the utterance
    dpi: int = 100  # figure resolution; 100 keeps each PNG around 100-200 KB
    threads: int = 0  # torch CPU threads; 0: the cores that are free right now
    overwrite: bool = False  # replace the figures and inspect.json already in output

    def __post_init__(self):
        _check(self.direction in ("forward", "backward"),
               f"direction: {self.direction!r} is not one of forward, backward")


@dataclass(frozen=True)
class PlotConfig:
    """``asr plot``: PNG curves of a training run's train_log.jsonl (loss, dev WER/CER, learning rate)."""

    run: str  # an asr-train run directory (holds train_log.jsonl)
    output: str | None = None  # folder for the PNGs; None: <run>/plots
    dpi: int = 100


@dataclass(frozen=True)
class SweepTableConfig:
    """``asr sweep-table``: one table and figure of an ``asr train -m`` sweep."""

    dir: str  # the sweep directory (hydra.sweep.dir)
    output: str | None = None  # where the table and figure go; None: the sweep directory


@dataclass(frozen=True)
class EvalTableConfig:
    """``asr eval-table``: one table of an ``asr evaluate -m`` multirun, and its best job."""

    dir: str  # the multirun directory (hydra.sweep.dir)
    output: str | None = None  # where the tables and best.json go; None: the multirun directory


@dataclass(frozen=True)
class AverageConfig:
    """``asr average``: a model file whose weights average a run's last epoch checkpoints."""

    run: str  # an asr-train run directory (with checkpoints/ and model.pt)
    last: int = 5  # how many of the last epochs
    output: str | None = None  # the model file to write; None: <run>/model_avg.pt

    def __post_init__(self):
        _check(self.last >= 1, f"last must be >= 1, got {self.last}")


@dataclass(frozen=True)
class ExportConfig:
    """``asr export``: a model file to one ONNX file (front end included, vocabulary in its metadata) + model card."""

    model: str  # a model file (model.pt from a training run)
    out: str  # the .onnx file to write; its model card goes beside it as <stem>.card.md
    format: str = "onnx"  # onnx (the only format so far)
    int8: bool = False  # onnxruntime dynamic quantization: int8 weights in LSTM and dense layers (not GRU's)
    card: bool = True  # write the model card beside the export
    test: str | None = None  # a manifest to score the export on (greedy WER/CER) for its model card
    overwrite: bool = False  # replace an existing out (and its card)

    def __post_init__(self):
        _check(self.format == "onnx", f"format: {self.format!r} is not supported (onnx)")
        _check(self.out.endswith(".onnx"), f"out: {self.out!r} must end in .onnx (its card is <stem>.card.md)")


@dataclass(frozen=True)
class BuildLmConfig:
    """``asr build-lm``: lexicon + KenLM n-gram (ARPA and binary) from a training manifest."""

    train: str  # training manifest (JSONL with text)
    vocab: str  # vocab.json of the acoustic model (asr stats)
    out: str  # output folder (the recipe's lang/)
    order: int = 3  # n-gram order

    def __post_init__(self):
        _check(self.order >= 1, f"order must be >= 1, got {self.order}")


@dataclass(frozen=True)
class DownloadAn4Config:
    """``asr download-an4``: download and extract CMU's AN4 sphere archive."""

    dir: str  # folder that receives an4/
    url: str | None = None  # None: CMU's archive (asr.corpora.an4.AN4_URL)


@dataclass(frozen=True)
class PrepareAn4Config:
    """``asr prepare-an4``: train/dev/test/train_full JSONL manifests (and FLAC audio) from an AN4 copy."""

    src: str  # the extracted an4/ folder (or its parent), or a folder with manifests
    out: str  # output folder for manifests (and FLAC audio)


@dataclass(frozen=True)
class SynthesizeConfig:
    """``asr synthesize``: the embedded corpus, synthesized offline with eSpeak NG."""

    out: str  # output directory
    num_train: int = 3000
    num_dev: int = 200
    num_test: int = 300
    seed: int = 0
    sample_rate_hz: int = 16000
    workers: int = 2  # synthesis processes
    overwrite: bool = False  # replace a corpus made with other parameters


@dataclass(frozen=True)
class ImportKaldiConfig:
    """``asr import-kaldi``: a Kaldi data directory (text, wav.scp, utt2spk; segments, spk2gender) to a manifest."""

    data_dir: str  # the folder holding text, wav.scp, utt2spk
    out: str  # the JSONL manifest to write
    root: str | None = None  # what relative wav.scp paths are relative to; None: data_dir
    allow_pipes: bool = False  # run wav.scp commands ("... |") once each and store their audio as FLAC
    audio_dir: str | None = None  # where piped audio is stored; None: <data_dir>/audio_from_pipes
    normalize: bool = True  # lowercase, a-z ' and spaces only (as the other corpora are prepared)


@dataclass(frozen=True)
class PrepareSpeechocean762Config:
    """``asr prepare-speechocean762``: its 99 speakers who read no digit string to train on, the other 26's digits."""

    src: str  # the speechocean762 directory holding train/ (wav.scp paths are relative to it)
    out: str  # all / train / held_out / digits .jsonl go here
    apostrophes: bool = True  # false: "it's" -> "its", for a model whose alphabet has no apostrophe (AN4's)


@dataclass(frozen=True)
class SplitSpeakersConfig:
    """``asr split-speakers``: hold whole speakers out of a manifest (seeded), for a dev set of unseen voices."""

    manifest: str  # input JSONL; every line needs a speaker field
    train_out: str  # the manifest of the speakers kept
    dev_out: str  # the manifest of the speakers held out
    dev_fraction: float = 0.1  # share of the utterances held out (whole speakers, so about this share)
    seed: int = 0

    def __post_init__(self):
        _check(0 < self.dev_fraction < 1, f"dev_fraction must be in (0, 1), got {self.dev_fraction}")


@dataclass(frozen=True)
class ShardConfig:
    """``asr shard``: pack a manifest's audio into WebDataset tar shards plus a manifest that points into them."""

    manifest: str  # input JSONL (or a glob / list of them)
    out: str  # the shard folder: <out>/shard-000000.tar ... and <out>/manifest.jsonl
    # audio bytes per shard: large enough that a networked filesystem serves few big files, small enough
    # that ranks and workers spread over many (WebDataset's own examples use 100 MB - 1 GB)
    shard_size_mb: float = 256.0
    overwrite: bool = False  # replace an existing shard folder (only one that asr shard wrote)

    def __post_init__(self):
        _check(self.shard_size_mb > 0, f"shard_size_mb must be > 0, got {self.shard_size_mb}")


@dataclass(frozen=True)
class DownloadLibrispeechConfig:
    """``asr download-librispeech``: OpenSLR's LibriSpeech archives, checksum-verified, into <dir>/LibriSpeech."""

    dir: str  # folder that receives LibriSpeech/<subset>/
    subsets: str | list[str]  # e.g. [dev-clean,test-clean]; train-clean-100/360, train-other-500, dev/test-clean/other
    base_url: str | None = None  # None: OpenSLR (asr.corpora.librispeech.OPENSLR_URL); a mirror serving <subset>.tar.gz
    checksums: str | None = None  # sha256sum-style file of other archives' sums; None: the official archives' table


@dataclass(frozen=True)
class PrepareLibrispeechConfig:
    """``asr prepare-librispeech``: one JSONL manifest per subset of a LibriSpeech tree (audio left in place)."""

    src: str  # the LibriSpeech/ folder or the folder holding it
    out: str  # output folder: <out>/<subset>.jsonl
    subsets: str | list[str] | None = None  # None: every standard subset present


@dataclass(frozen=True)
class PrepareCommonvoiceConfig:
    """``asr prepare-commonvoice``: one JSONL manifest per .tsv of a Common Voice language folder."""

    src: str  # the language folder: train.tsv, dev.tsv, test.tsv, clips/
    out: str  # output folder: <out>/<split>.jsonl
    splits: str | list[str] = field(default_factory=lambda: ["train", "dev", "test"])  # tsv stems
    normalize: bool = True  # lowercase, a-z ' and spaces only; false keeps the sentence (non-Latin scripts)


@dataclass(frozen=True)
class ServeConfig:
    """``asr serve``: live recognition over WebSocket (/stream), file uploads (POST /transcribe), GET /health."""

    model: str  # a model file; streaming (model.bidirectional=false or model.chunk_s > 0) gives partial results
    host: str = "127.0.0.1"  # 0.0.0.0: every interface (in a container)
    port: int = 8000  # 0: any free port (printed)
    threads: int = 0  # torch CPU threads; 0: the cores that are free right now
    step_s: float = 0.09  # unidirectional models: audio per model call (shorter: sooner partials, more calls)
    endpoint_blank_s: float = 0.0  # streaming models: > 0: a final result after this much blank model output
    endpoint_silence_s: float = 0.0  # full-context models: > 0: a final result after each pause this long
    max_segment_s: float = 30.0  # full-context models with endpoint_silence_s: a segment ends after this long
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self):
        _check(0 <= self.port <= 65535, f"port must be in 0..65535, got {self.port}")
        _check(self.threads >= 0, f"threads must be >= 0 (0: the free cores), got {self.threads}")
        _check(self.step_s > 0 and self.endpoint_blank_s >= 0,
               f"step_s must be > 0 and endpoint_blank_s >= 0, got {self.step_s}, {self.endpoint_blank_s}")
        _check(self.endpoint_silence_s >= 0 and 0 < self.max_segment_s <= self.limits.max_stream_s and
               (not self.endpoint_silence_s or self.endpoint_silence_s < self.max_segment_s),
               f"endpoint_silence_s must be >= 0 and below max_segment_s, and max_segment_s in (0, "
               f"limits.max_stream_s], got {self.endpoint_silence_s}, {self.max_segment_s}")


@dataclass(frozen=True)
class StreamConfig:
    """``asr stream``: send an audio file (or the microphone) to asr serve at real speed and print partial results."""

    file: str | None = None  # any audio file asr reads; resampled to sample_rate_hz
    mic: bool = False  # record from the microphone instead (needs pip install 'asr[mic]'); Ctrl-C ends the stream
    mic_device: int | str | None = None  # a PortAudio input device index or name; None: the system's default input
    max_duration_s: float = 600.0  # the microphone stream ends after this much audio
    url: str = "ws://127.0.0.1:8000/stream"
    sample_rate_hz: int = 16000  # the server's model rate (its /stream refuses others)
    speed: float = 1.0  # 1: real time, 4: four times faster, 0: as fast as the server takes it (files only)
    piece_s: float = 0.1  # audio per message
    timeout_s: float = 30.0  # wait this long past the audio's end for the final result
    events: bool = False  # print every server message as a JSON line instead of text

    def __post_init__(self):
        _check((self.file is not None) != self.mic, "give an audio file (asr stream a.wav, or file=a.wav) or "
               "mic=true (--mic), not both" if self.mic else "give an audio file (asr stream a.wav, or file=a.wav) "
               "or --mic to stream the microphone")
        _check(self.speed >= 0, f"speed must be >= 0 (0: no pacing), got {self.speed}")
        _check(0 < self.piece_s <= 1.0, f"piece_s must be in (0, 1] s, got {self.piece_s}")
        _check(self.timeout_s > 0 and self.sample_rate_hz > 0, "timeout_s and sample_rate_hz must be > 0")
        _check(self.max_duration_s > 0, f"max_duration_s must be > 0, got {self.max_duration_s}")

    @property
    def device(self) -> int | str | None:
        """``mic_device`` as PortAudio takes it: an index when it is a number (``2`` or ``"2"``), else a name."""
        d = self.mic_device
        return int(d) if isinstance(d, int) or (d is not None and d.isdigit()) else d


# conf/<name>.yaml (hydra block and defaults list) composes on top of these
COMMAND_CONFIGS: dict[str, type] = {
    "evaluate": EvaluateConfig, "transcribe": TranscribeConfig, "validate": ValidateConfig, "stats": StatsConfig,
    "inspect": InspectConfig, "plot": PlotConfig,
}
# no YAML of their own: they write nothing into a run directory, so they need no hydra block
TOOL_CONFIGS: dict[str, type] = {
    "sweep-table": SweepTableConfig, "eval-table": EvalTableConfig, "average": AverageConfig,
    "export": ExportConfig, "build-lm": BuildLmConfig, "download-an4": DownloadAn4Config,
    "prepare-an4": PrepareAn4Config,
    "synthesize": SynthesizeConfig, "import-kaldi": ImportKaldiConfig, "split-speakers": SplitSpeakersConfig,
    "prepare-speechocean762": PrepareSpeechocean762Config,
    "download-librispeech": DownloadLibrispeechConfig, "prepare-librispeech": PrepareLibrispeechConfig,
    "prepare-commonvoice": PrepareCommonvoiceConfig, "serve": ServeConfig, "stream": StreamConfig,
    "shard": ShardConfig,
}
