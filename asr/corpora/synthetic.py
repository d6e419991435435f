"""An offline synthetic speech corpus in the domain of CMU AN4, spoken by eSpeak NG.

No download and no audio in git: the word lists in ``data/synthetic/an4_domain.json`` are
turned into AN4-style prompts (digit strings, spelled names, numbers, dates, control words
such as "rubout" and "enter") and spoken in-process by eSpeak NG from the PyPI wheel
``espeakng-loader``, driven through ctypes. Example::

    >>> paths = generate_corpus("data/synthetic_an4")       # doctest: +SKIP
    synthetic corpus: 3500 utterances (train 3000, dev 200, test 300), 2.28 h of audio in 64.2 s -> data/synthetic_an4
    >>> paths["train"]                                       # doctest: +SKIP
    PosixPath('data/synthetic_an4/train.jsonl')

or ``asr synthesize out=data/synthetic_an4``. The result is
``out_dir/audio/<split>/<utt_id>.flac`` plus ``out_dir/{train,dev,test}.jsonl``, whose records
carry ``speaker`` (the eSpeak voice, e.g. ``"en-gb-scotland+m3"``) and ``kind`` (the prompt
type) next to ``audio_filepath``, ``duration`` and ``text``.

Design notes:

* Letters are spoken as letter NAMES: every run of single-letter words is wrapped in SSML
  ``<say-as interpret-as="characters">``, eSpeak's spelling mode. Plain text would not do:
  eSpeak reads "a b c" as the article /@/ followed by "bee see".
* Voices are an accent (en-us, en-gb-scotland, en-029, ...) plus a voice variant (+m3, +f2,
  +klatt4, +croak, ...). The variants are partitioned between the splits in the JSON file, so
  no test (or dev) voice ever occurs in train; dev has its own held-out variants so that dev
  scores estimate what test measures (unseen voices). Accents are shared by all splits.
* Determinism: eSpeak keeps synthesis state in function-level statics (pitch-flutter phase,
  automatic gain control, ...) that no API call resets, so an utterance's audio would depend
  on what the same process spoke before it. Each utterance is therefore spoken by a freshly
  loaded copy of the library (dlopen, synthesize, dlclose: about 5 ms), and its noise generators
  (clock-seeded by default) are seeded per utterance. All random choices come from an RNG
  seeded with (seed, split, index), so the output does not depend on the number of workers.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import importlib.resources
import json
import multiprocessing
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import soundfile as sf

from asr.data.audio import resample
from asr.data.manifest import write_manifest
from asr.data.text import normalize_text
from asr.fileio import atomic_write_text

# data/ ships inside the package as asr.assets (see pyproject.toml), so wheels find it too
DOMAIN_FILE = Path(str(importlib.resources.files("asr.assets"))) / "synthetic" / "an4_domain.json"
SPLITS = ("train", "dev", "test")
FORMAT_VERSION = 1  # bump when a code change alters the audio or text of a given seed
ESPEAK_INSTALL_HINT = "install it with `pip install espeakng-loader` (a wheel that bundles libespeak-ng and its data)"

_SPLIT_CODE = {"train": 0, "dev": 1, "test": 2}  # part of every utterance's RNG seed
_DONE = ".done"


# ---------------------------------------------------------------------------------------------
# eSpeak NG through ctypes
# ---------------------------------------------------------------------------------------------

class _Event(ctypes.Structure):
    """``espeak_EVENT`` from speak_lib.h; the layout must match even though few fields are read."""

    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))

# Constants from speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_RATE, _VOLUME, _PITCH, _RANGE, _WORDGAP = 1, 2, 3, 4, 7
_POS_CHARACTER = 1
_CHARS_UTF8, _SSML = 0x1, 0x10
_EVENT_LIST_TERMINATED, _EVENT_PHONEME = 0, 7

_unload_checked = False  # whether dlclose was seen to really unload the library in this process


@dataclass(frozen=True)
class Speech:
    """eSpeak output: ``samples`` ``(num_samples,)`` int16 at ``sample_rate_hz`` (22050), and the
    phoneme mnemonics eSpeak reported (empty unless asked for)."""

    samples: np.ndarray
    sample_rate_hz: int
    phonemes: tuple[str, ...] = ()


def _espeak_paths() -> tuple[str, str]:
    try:
        import espeakng_loader
    except ImportError:
        raise RuntimeError(f"eSpeak NG is not available: the package espeakng-loader is missing; "
                           f"{ESPEAK_INSTALL_HINT}") from None
    try:
        return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()
    except RuntimeError as err:
        raise RuntimeError(f"eSpeak NG data not found ({err}); reinstall: {ESPEAK_INSTALL_HINT}") from None


def espeak_version() -> str:
    """The version of the bundled libespeak-ng, e.g. ``"1.52.0"``."""
    lib_path, _ = _espeak_paths()
    lib = _load(lib_path)
    try:
        lib.espeak_Info.restype = ctypes.c_char_p
        return lib.espeak_Info(None).decode()
    finally:
        _unload(lib, lib_path)


def _load(lib_path: str) -> ctypes.CDLL:
    try:
        return ctypes.CDLL(lib_path)
    except OSError as err:
        raise RuntimeError(f"cannot load eSpeak NG from {lib_path} ({err}); {ESPEAK_INSTALL_HINT}") from None


def _unload(lib: ctypes.CDLL, lib_path: str, *, check_unloaded: bool = False) -> None:
    """dlclose ``lib`` so that the next load starts from the library's initial static state."""
    global _unload_checked
    import _ctypes

    (_ctypes.dlclose if hasattr(_ctypes, "dlclose") else _ctypes.FreeLibrary)(lib._handle)
    if not check_unloaded or _unload_checked or not os.path.exists("/proc/self/maps"):
        return
    # If something else in this process holds the same library (e.g. a phonemizer), dlclose only
    # drops a reference and eSpeak's state would leak between utterances: refuse rather than
    # produce a corpus that silently differs from run to run.
    with open("/proc/self/maps") as f:
        if os.path.realpath(lib_path) in f.read():
            raise RuntimeError(f"{lib_path} stays loaded in this process (another module holds it), so eSpeak's "
                               "internal state would carry over between utterances and the corpus would not be "
                               "reproducible; generate the corpus in a fresh process or with num_workers >= 2")
    _unload_checked = True


def synthesize(text: str, *, voice: str = "en-us", rate_wpm: int = 175, pitch: int = 50, pitch_range: int = 50,
               word_gap_10ms: int = 0, volume: int = 20, ssml: bool = False, noise_seed: int = 0,
               with_phonemes: bool = False) -> Speech:
    """Speak ``text`` with eSpeak NG in this process, from a freshly loaded library.

    Args:
        text: plain text, or an SSML document (``<speak>...</speak>``) when ``ssml=True``.
        voice: eSpeak voice name, an accent optionally with a variant: ``"en-gb-x-rp+f2"``.
        rate_wpm: speaking rate in words per minute (eSpeak: 80-450, default 175).
        pitch, pitch_range: base pitch and pitch range, 0-100 (default 50 each).
        word_gap_10ms: extra pause between words, in units of 10 ms at the default rate.
        volume: eSpeak amplitude 0-200 (its default is 100); at 20 even the loudest variants
            (+iven, +antonio) peak below full scale, where eSpeak's limiter would compress them.
        noise_seed: seeds eSpeak's noise generators (breath and Klatt noise), so the output is
            reproducible; note that it also reseeds libc ``rand()`` of this process.
        with_phonemes: also return the phonemes eSpeak spoke (for checking pronunciations).

    Returns:
        :class:`Speech` with int16 samples at 22050 Hz.

    Raises:
        RuntimeError: eSpeak NG cannot be loaded or fails; ValueError: unknown voice.
    """
    lib_path, data_path = _espeak_paths()
    lib = _load(lib_path)
    chunks: list[np.ndarray] = []
    phonemes: list[str] = []
    callback = _SynthCallback(_collector(chunks, phonemes))  # must outlive espeak_Synth
    initialized = False
    try:
        sample_rate_hz = _initialize(lib, data_path)
        initialized = True
        lib.espeak_SetSynthCallback(callback)
        if with_phonemes:
            lib.espeak_ng_SetPhonemeEvents(1, 0)
        _set_voice(lib, voice, ((_RATE, rate_wpm), (_PITCH, pitch), (_RANGE, pitch_range),
                                (_WORDGAP, word_gap_10ms), (_VOLUME, volume)))
        _seed_noise(lib, lib_path, noise_seed)
        _speak(lib, text, ssml)
    finally:
        if initialized:
            lib.espeak_Terminate()
        _unload(lib, lib_path, check_unloaded=True)
    samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    return Speech(samples.astype(np.int16, copy=False), int(sample_rate_hz), tuple(phonemes))


def _collector(chunks: list[np.ndarray], phonemes: list[str]):
    """The synth callback: append each block of samples to ``chunks`` and phoneme names to ``phonemes``."""
    def collect(wav, num_samples, events):
        if num_samples > 0:
            chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            if events[i].type == _EVENT_PHONEME:
                phonemes.append(events[i].id.decode("utf-8", "replace"))
            i += 1
        return 0  # 0 = continue synthesis

    return collect


def _initialize(lib: ctypes.CDLL, data_path: str) -> int:
    """Start eSpeak with synchronous output (samples go to the callback); return its sample rate in Hz."""
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    sample_rate_hz = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(), _INITIALIZE_DONT_EXIT)
    if sample_rate_hz <= 0:
        raise RuntimeError(f"espeak_Initialize failed with data {data_path}; {ESPEAK_INSTALL_HINT}")
    return sample_rate_hz


def _set_voice(lib: ctypes.CDLL, voice: str, params: tuple[tuple[int, int], ...]) -> None:
    """Select ``voice``, then set ``(parameter, value)`` pairs: selecting a voice resets them."""
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    if lib.espeak_SetVoiceByName(voice.encode()) != 0:
        raise ValueError(f"eSpeak has no voice {voice!r}")
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    for param, value in params:
        lib.espeak_SetParameter(param, int(value), 0)


def _seed_noise(lib: ctypes.CDLL, lib_path: str, noise_seed: int) -> None:
    """Seed both noise sources: eSpeak's own generator (breath; seeded from the clock at
    initialization) and libc rand() (the Klatt 6 voices); otherwise the audio changes every second."""
    if not hasattr(lib, "espeak_ng_SetRandSeed"):
        raise RuntimeError(f"{lib_path} is older than eSpeak NG 1.52 and cannot seed its noise, so its audio is "
                           "not reproducible; upgrade it with `pip install -U espeakng-loader`")
    lib.espeak_ng_SetRandSeed(ctypes.c_long(noise_seed))
    ctypes.CDLL(None).srand(ctypes.c_uint(noise_seed & 0xFFFFFFFF))


def _speak(lib: ctypes.CDLL, text: str, ssml: bool) -> None:
    """Synthesize ``text`` (UTF-8, SSML if ``ssml``); returns when every sample went to the callback."""
    data = text.encode("utf-8")
    lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                 ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    flags = _CHARS_UTF8 | (_SSML if ssml else 0)
    status = lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, flags, None, None)
    if status != 0:
        raise RuntimeError(f"espeak_Synth failed (status {status}) on {text!r}")


# ---------------------------------------------------------------------------------------------
# Prompts: AN4-style word sequences
# ---------------------------------------------------------------------------------------------

def load_domain(path: str | os.PathLike = DOMAIN_FILE) -> dict:
    """Read the word lists, prompt kinds and voice split (see ``data/synthetic/an4_domain.json``)."""
    path = Path(path)
    try:
        domain = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: the synthetic corpus word lists are missing from this checkout") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    variants = domain["voices"]["variants"]
    for a, b in (("train", "dev"), ("train", "test"), ("dev", "test")):
        if shared := set(variants[a]) & set(variants[b]):
            raise ValueError(f"{path}: voice variants {sorted(shared)} are in both {a} and {b}")
    return domain


def number_words(n: int, domain: dict) -> list[str]:
    """Spell ``0 <= n < 10000`` the AN4 way, without "and": 2405 -> two thousand four hundred five."""
    if not 0 <= n < 10000:
        raise ValueError(f"number out of range: {n}")
    digits, teens, tens = domain["digits"], domain["teens"], domain["tens"]
    if n == 0:
        return [digits[0]]
    words: list[str] = []
    if n >= 1000:
        words += [digits[n // 1000], "thousand"]
    if n % 1000 >= 100:
        words += [digits[n % 1000 // 100], "hundred"]
    n %= 100
    if n >= 20:
        words.append(tens[n // 10])
        if n % 10:
            words.append(digits[n % 10])
    elif n >= 10:
        words.append(teens[n - 10])
    elif n:
        words.append(digits[n])
    return words


def _year_words(year: int, domain: dict) -> list[str]:
    if year >= 2000:
        return number_words(year, domain)  # two thousand five
    century, rest = divmod(year, 100)  # nineteen sixty five / nineteen oh five / nineteen hundred
    tail = ["hundred"] if rest == 0 else ["oh", domain["digits"][rest]] if rest < 10 else number_words(rest, domain)
    return number_words(century, domain) + tail


def _digit_string(rng: np.random.Generator, domain: dict, length: int) -> list[str]:
    zero = "oh" if rng.random() < 0.5 else "zero"  # speakers say one or the other, consistently
    return [zero if d == 0 else domain["digits"][d] for d in rng.integers(0, 10, size=length)]


def _letters(rng: np.random.Generator, domain: dict) -> list[str]:
    if rng.random() < 0.7:
        return list(domain["spell_words"][rng.integers(len(domain["spell_words"]))])
    return [chr(ord("a") + int(i)) for i in rng.integers(0, 26, size=rng.integers(2, 8))]


def _number_prompt(rng: np.random.Generator, domain: dict) -> list[str]:
    if rng.random() < 0.5:  # read in pairs, as AN4 speakers read numbers: "seventy nine fifty nine"
        return sum((number_words(int(rng.integers(10, 100)), domain) for _ in range(rng.integers(1, 4))), [])
    upper = [100, 1000, 10000][rng.integers(3)]
    return number_words(int(rng.integers(0, upper)), domain)


def sample_prompt(rng: np.random.Generator, domain: dict) -> tuple[str, list[str]]:
    """Draw one prompt: its kind (a key of ``domain["kinds"]``) and its words."""
    kinds = list(domain["kinds"])
    weights = np.array([domain["kinds"][k] for k in kinds], dtype=float)
    kind = kinds[rng.choice(len(kinds), p=weights / weights.sum())]
    if kind == "digits":  # phone numbers, zip codes
        words = _digit_string(rng, domain, int(rng.choice([3, 4, 5, 7, 9, 10])))
    elif kind == "spelled":
        words = _letters(rng, domain)
    elif kind == "number":
        words = _number_prompt(rng, domain)
    elif kind == "date":
        month = int(rng.integers(12))
        days_in_month = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[month]
        words = [domain["months"][month]] + domain["ordinals"][rng.integers(days_in_month)].split()
        if rng.random() < 0.7:
            words += _year_words(int(rng.integers(1920, 2010)), domain)
    elif kind == "alphanumeric":  # "rubout t g j w b seventy nine", "c z d z w eight"
        words = [domain["command_words"][rng.integers(len(domain["command_words"]))]] if rng.random() < 0.5 else []
        words += [chr(ord("a") + int(i)) for i in rng.integers(0, 26, size=rng.integers(1, 6))]
        words += _digit_string(rng, domain, int(rng.integers(1, 4))) if rng.random() < 0.6 \
            else _number_prompt(rng, domain)
    elif kind == "control":
        words = [domain["control_words"][rng.integers(len(domain["control_words"]))]]
    else:
        raise ValueError(f"unknown prompt kind {kind!r} in the domain file")
    return kind, words


def to_ssml(words: list[str], domain: dict, *, spaced_letters: bool = False) -> str:
    """The SSML eSpeak is given for ``words``: letter runs are spelled, other words respelled if needed.

    ``spaced_letters`` spells "h i" with a short pause after each letter, otherwise as a
    fluent run; both occur when people spell.

    Example:
        >>> to_ssml(["rubout", "a", "b", "two"], {"spoken_forms": {"rubout": "rub out"}})
        '<speak>rub out <say-as interpret-as="characters">ab</say-as> two</speak>'
    """
    parts: list[str] = []
    letters: list[str] = []
    for word in [*words, ""]:  # "" flushes a trailing letter run
        if len(word) == 1:
            letters.append(word)
            continue
        if letters:
            run = (" " if spaced_letters else "").join(letters)
            parts.append(f'<say-as interpret-as="characters">{escape(run)}</say-as>')
            letters = []
        if word:
            parts.append(escape(domain["spoken_forms"].get(word, word)))
    return "<speak>" + " ".join(parts) + "</speak>"


# ---------------------------------------------------------------------------------------------
# Utterances: everything random is drawn here, from one RNG per (seed, split, index)
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class UtteranceSpec:
    """Everything needed to render one utterance; a pure function of (seed, split, index)."""

    utt_id: str
    split: str
    kind: str
    words: tuple[str, ...]
    voice: str
    rate_wpm: int
    pitch: int
    pitch_range: int
    word_gap_10ms: int
    spaced_letters: bool
    lead_s: float  # silence (with noise) before and after the speech
    trail_s: float
    snr_db: float
    noise_color: str  # "white" or "pink"
    level_dbfs: float  # RMS level of the speech
    noise_seed: int

    @property
    def text(self) -> str:
        """The manifest transcript: the words, normalised as every transcript is."""
        return normalize_text(" ".join(self.words))


def make_spec(seed: int, split: str, index: int, domain: dict) -> UtteranceSpec:
    """Draw utterance ``index`` of ``split``; independent of every other utterance."""
    rng = np.random.default_rng([seed, _SPLIT_CODE[split], index])
    kind, words = sample_prompt(rng, domain)
    accents, variants = domain["voices"]["accents"], domain["voices"]["variants"][split]
    voice = f"{accents[rng.integers(len(accents))]}+{variants[rng.integers(len(variants))]}"
    return UtteranceSpec(
        utt_id=f"synth-{split}-{index:06d}", split=split, kind=kind, words=tuple(words), voice=voice,
        rate_wpm=int(rng.integers(120, 201)),  # AN4 speakers read slower than eSpeak's default 175
        pitch=int(rng.integers(25, 76)), pitch_range=int(rng.integers(20, 91)),
        word_gap_10ms=int(rng.integers(0, 4)), spaced_letters=bool(rng.random() < 0.5),
        lead_s=float(rng.uniform(0.1, 0.5)), trail_s=float(rng.uniform(0.1, 0.5)),
        snr_db=float(rng.uniform(15.0, 40.0)), noise_color=("white", "pink")[rng.integers(2)],
        level_dbfs=float(rng.uniform(-32.0, -18.0)), noise_seed=int(rng.integers(2**31)))


def _noise(rng: np.random.Generator, num_samples: int, color: str) -> np.ndarray:
    """Unit-RMS white or pink (1/f power) noise."""
    if color == "pink":
        n_fft = 1 << max(num_samples - 1, 1).bit_length()  # a power of two: FFTs of odd lengths are ~10x slower
        spectrum = np.fft.rfft(rng.standard_normal(n_fft))
        spectrum[1:] /= np.sqrt(np.arange(1, spectrum.size))  # 1/f power = 1/sqrt(f) amplitude
        spectrum[0] = 0.0
        noise = np.fft.irfft(spectrum, n=n_fft)[:num_samples]
    else:
        noise = rng.standard_normal(num_samples)
    return noise / max(float(np.sqrt(np.mean(noise**2))), 1e-12)


def render(spec: UtteranceSpec, domain: dict, sample_rate_hz: int) -> np.ndarray:
    """Speak ``spec`` and apply its silence, noise and gain: ``(num_samples,)`` int16 at ``sample_rate_hz``."""
    speech = synthesize(to_ssml(list(spec.words), domain, spaced_letters=spec.spaced_letters), voice=spec.voice,
                        rate_wpm=spec.rate_wpm, pitch=spec.pitch, pitch_range=spec.pitch_range,
                        word_gap_10ms=spec.word_gap_10ms, ssml=True, noise_seed=spec.noise_seed)
    voiced = np.flatnonzero(np.abs(speech.samples) > 2)  # trim eSpeak's own silences; ours replace them
    if voiced.size == 0:
        raise RuntimeError(f"{spec.utt_id}: eSpeak produced silence for {spec.text!r} ({spec.voice})")
    x = speech.samples[voiced[0]:voiced[-1] + 1].astype(np.float32) / 32768.0
    x = resample(x, speech.sample_rate_hz, sample_rate_hz).astype(np.float64)
    x *= 10 ** (spec.level_dbfs / 20) / max(float(np.sqrt(np.mean(x**2))), 1e-9)
    lead, trail = round(spec.lead_s * sample_rate_hz), round(spec.trail_s * sample_rate_hz)
    x = np.concatenate([np.zeros(lead), x, np.zeros(trail)])
    rng = np.random.default_rng(spec.noise_seed)
    x += _noise(rng, x.size, spec.noise_color) * 10 ** ((spec.level_dbfs - spec.snr_db) / 20)
    x /= max(1.0, float(np.abs(x).max()) / 0.98)  # keep the peak below full scale instead of clipping
    return np.round(x * 32767).astype(np.int16)


# ---------------------------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------------------------

def _audio_relpath(spec: UtteranceSpec) -> str:
    return f"audio/{spec.split}/{spec.utt_id}.flac"


def _render_to_file(spec: UtteranceSpec, domain: dict, sample_rate_hz: int, out_dir: str) -> int:
    """Pool worker: render one utterance to FLAC, return its number of samples."""
    pcm = render(spec, domain, sample_rate_hz)
    sf.write(os.path.join(out_dir, _audio_relpath(spec)), pcm, sample_rate_hz, format="FLAC", subtype="PCM_16")
    return int(pcm.size)


def _is_generated(out_dir: Path, params: dict, overwrite: bool) -> bool:
    """True when ``out_dir`` already holds this corpus; False when it may be (re)written.

    Raises FileExistsError, unless ``overwrite``, when it holds a corpus made with other
    parameters or files that are not ours.
    """
    marker = out_dir / _DONE
    if marker.exists():
        try:
            done = json.loads(marker.read_text(encoding="utf-8")).get("params") or {}
        except (json.JSONDecodeError, AttributeError):
            done = {}
        if done == params:
            # A missing manifest means our own corpus was damaged: regenerating gives the same bytes.
            return all((out_dir / f"{s}.jsonl").is_file() for s in SPLITS)
        if not overwrite:
            diff = ", ".join(f"{k}={done.get(k)!r} there vs {v!r} asked" for k, v in params.items() if done.get(k) != v)
            raise FileExistsError(f"{out_dir} already holds a synthetic corpus generated with other parameters "
                                  f"({diff}); use another directory or pass overwrite=True (--overwrite)")
    elif out_dir.is_dir() and not overwrite:
        # Without a marker, accept only what an interrupted run of ours leaves behind.
        ours = {"audio", *(f"{s}.jsonl" for s in SPLITS)}
        foreign = sorted(p.name for p in out_dir.iterdir() if p.name not in ours and not p.name.startswith("."))
        if foreign:
            raise FileExistsError(f"{out_dir} is not empty ({', '.join(foreign[:5])}) and holds no synthetic corpus; "
                                  "use another directory or pass overwrite=True (--overwrite)")
    return False


def _remove_generated(out_dir: Path) -> None:
    """Delete what this generator writes (and nothing else), so no file of an earlier corpus lingers."""
    (out_dir / _DONE).unlink(missing_ok=True)
    for split in SPLITS:
        (out_dir / f"{split}.jsonl").unlink(missing_ok=True)
    shutil.rmtree(out_dir / "audio", ignore_errors=True)


def generate_corpus(out_dir: str | os.PathLike, *, num_train: int = 3000, num_dev: int = 200, num_test: int = 300,
                    seed: int = 0, sample_rate_hz: int = 16000, num_workers: int = 2,
                    overwrite: bool = False) -> dict[str, Path]:
    """Synthesize the corpus into ``out_dir`` and return the manifest paths by split.

    Args:
        out_dir: created if missing. Gets ``audio/<split>/*.flac``, ``{train,dev,test}.jsonl``
            (written last) and a ``.done`` marker holding the generation parameters.
        num_train, num_dev, num_test: utterances per split (each at least 1).
        seed: the same seed and sizes give byte-identical manifests and audio, whatever ``num_workers``.
        sample_rate_hz: output rate (eSpeak speaks at 22050 Hz; audio is resampled).
        num_workers: synthesis processes; 1 synthesizes in this process.
        overwrite: replace a corpus generated with other parameters (otherwise that is an error).

    Returns:
        ``{"train": Path, "dev": Path, "test": Path}``, the manifest paths.

    Raises:
        FileExistsError: ``out_dir`` holds a different corpus or unrelated files, and not ``overwrite``.
        RuntimeError: eSpeak NG is not installed or fails.
        ValueError: a size or ``sample_rate_hz`` is not a positive integer.
    """
    sizes = {"train": num_train, "dev": num_dev, "test": num_test}
    _check_sizes(sizes, sample_rate_hz)
    out_dir = Path(out_dir)
    params = {"format_version": FORMAT_VERSION, "num_train": num_train, "num_dev": num_dev, "num_test": num_test,
              "seed": seed, "sample_rate_hz": sample_rate_hz,
              "domain_sha256": hashlib.sha256(DOMAIN_FILE.read_bytes()).hexdigest()}
    manifests = {split: out_dir / f"{split}.jsonl" for split in SPLITS}
    if _is_generated(out_dir, params, overwrite):
        print(f"synthetic corpus: {out_dir} already generated with these parameters, nothing to do")
        return manifests

    start = time.perf_counter()
    version = espeak_version()  # fails, with the install hint, before anything is deleted
    domain = load_domain()
    _remove_generated(out_dir)
    specs = [make_spec(seed, split, i, domain) for split in SPLITS for i in range(sizes[split])]
    lengths = _render_all(specs, domain, sample_rate_hz, out_dir, num_workers)
    hours = _write_manifests(manifests, specs, lengths, sample_rate_hz)
    seconds = time.perf_counter() - start
    _write_done_marker(out_dir, {"params": params, "espeak_ng": version, "utterances": len(specs),
                                 "hours": round(hours, 4), "seconds_taken": round(seconds, 1)})
    print(f"synthetic corpus: {len(specs)} utterances (train {num_train}, dev {num_dev}, test {num_test}), "
          f"{hours:.2f} h of audio in {seconds:.1f} s -> {out_dir}")
    return manifests


def _check_sizes(sizes: dict[str, int], sample_rate_hz: int) -> None:
    for split, n in sizes.items():
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"num_{split} must be a positive integer, got {n!r}")
    if sample_rate_hz <= 0:
        raise ValueError(f"sample_rate_hz must be positive, got {sample_rate_hz}")


def _render_all(specs: list[UtteranceSpec], domain: dict, sample_rate_hz: int, out_dir: Path,
                num_workers: int) -> list[int]:
    """Render every utterance to ``out_dir/audio/<split>/``; return their lengths in samples, in ``specs`` order."""
    for split in SPLITS:
        (out_dir / "audio" / split).mkdir(parents=True, exist_ok=True)
    work = functools.partial(_render_to_file, domain=domain, sample_rate_hz=sample_rate_hz, out_dir=str(out_dir))
    if num_workers <= 1:
        return [work(spec) for spec in specs]
    # spawn, not fork: the caller may hold torch/OpenMP threads, which a forked child can deadlock on.
    with multiprocessing.get_context("spawn").Pool(min(num_workers, len(specs))) as pool:
        return pool.map(work, specs, chunksize=8)


def _write_manifests(manifests: dict[str, Path], specs: list[UtteranceSpec], lengths: list[int],
                     sample_rate_hz: int) -> float:
    """Write each split's manifest; return the corpus's hours of audio."""
    for split in SPLITS:
        write_manifest(manifests[split], (
            {"audio_filepath": _audio_relpath(spec), "duration": round(n / sample_rate_hz, 4), "text": spec.text,
             "speaker": spec.voice, "kind": spec.kind}
            for spec, n in zip(specs, lengths, strict=True) if spec.split == split))
    return sum(lengths) / sample_rate_hz / 3600


def _write_done_marker(out_dir: Path, done: dict) -> None:
    """The marker, written last, that makes a rerun with the same parameters a no-op."""
    atomic_write_text(out_dir / _DONE, json.dumps(done, indent=2) + "\n")


if __name__ == "__main__":  # python -m asr.corpora.synthetic --out DIR: the same as asr synthesize
    from asr.cli.corpora import synthesize_main

    sys.exit(synthesize_main())
