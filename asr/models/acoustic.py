"""The acoustic model: stacked (bi)directional LSTM/GRU layers, a dense layer, log-softmax.

Why each piece:

* **Stacked recurrent layers.** Each LSTM layer reads the whole sequence of the layer
  below; depth lets later layers work on longer-range, more abstract patterns (phones →
  letters → words). 3–5 layers is the usual range for CTC character models (EESEN: 4 × 320).
* **Bidirectional.** A character's identity depends on what comes after it as much as
  before; a backward LSTM reads the utterance right to left and its output is
  concatenated with the forward one, so every frame sees the whole utterance.
* **Gates and the cell state.** An LSTM keeps a cell state ``c_t`` that is changed only
  through a forget gate (what to keep), an input gate (what to write) and read out through
  an output gate, which lets gradients flow over hundreds of frames. A GRU merges these into
  two gates and no separate cell: ~25 % fewer weights, yet PyTorch's CPU GRU kernels are
  slower than its LSTM's of the same size (``benchmarks/cell_speed.py``).
* **Dense layer + softmax.** A linear map from the top layer to the vocabulary (blank +
  characters), and a log-softmax, gives per-frame log-posteriors for CTC.

Padding never changes an utterance's output: the backward direction is run on each
utterance reversed *within its own length* (``reverse_padded``), so padding only ever
follows the real frames. This is exact like packed sequences but uses the padded
kernels, which train about 2× faster than packed ones on CPU (measured in
``benchmarks/``).
"""

from __future__ import annotations

import torch
from torch import nn

from asr.frontend.features import FeatureConfig, FeatureExtractor, SpecAugment
from asr.models.chunked import State, block_step, chunked_layer, look_ahead_inputs, reverse_padded

RNN_TYPES = {"lstm": nn.LSTM, "gru": nn.GRU}


def check_projection(rnn_type: str, hidden_size: int, proj_size: int) -> None:
    """The rule for ``model.proj_size``: 0 (no projection), or an LSTM with ``0 < proj_size < hidden_size``.

    A projection maps each LSTM direction's ``hidden_size`` outputs to fewer, so it must be
    smaller; GRUs have no projection in PyTorch.

    Raises:
        ValueError: the message names ``model.proj_size`` and what it needs.
    """
    if proj_size < 0 or (proj_size and rnn_type != "lstm"):
        raise ValueError(f"model.proj_size must be >= 0 and needs model.rnn_type=lstm, got {proj_size} "
                         f"with {rnn_type}")
    if proj_size and proj_size >= hidden_size:
        raise ValueError(f"model.proj_size ({proj_size}) must be smaller than model.hidden_size ({hidden_size})")


def init_forget_bias(lstm: nn.LSTM, value: float) -> None:
    """Start an LSTM's forget gates at ``sigmoid(value)``: ``b_if = value``, ``b_hf = 0`` (gate order i, f, g, o).

    PyTorch draws every bias from U(-1/sqrt(H), 1/sqrt(H)), so a forget gate starts near 0.5 and the cell state
    halves every frame; a bias of 1 (Gers et al. 2000; Jozefowicz et al. 2015) keeps about 73 % of it, which lets
    gradients reach further back at the start of training.
    """
    if not isinstance(lstm, nn.LSTM):
        raise ValueError(f"forget_bias is an LSTM setting; a {type(lstm).__name__} has no forget gate")
    h = lstm.hidden_size
    with torch.no_grad():
        for name, param in lstm.named_parameters():
            if name.startswith("bias_ih"):
                param[h:2 * h] = value
            elif name.startswith("bias_hh"):
                param[h:2 * h] = 0.0


class RecurrentLayer(nn.Module):
    """One (bi)directional recurrent layer over padded batches, exact for every utterance.

    ``proj_size > 0`` (LSTM only) projects each direction's output to that size (LSTMP).

    Shapes: ``forward(x: (B, T, input_size), lengths: (B,))`` → ``(B, T, out_size * num_directions)``
    with ``out_size = proj_size or hidden_size``.
    """

    def __init__(self, input_size: int, hidden_size: int, *, bidirectional: bool = True, rnn_type: str = "lstm",
                 proj_size: int = 0, forget_bias: float | None = None):
        super().__init__()
        rnn = RNN_TYPES[rnn_type]
        kwargs = {"proj_size": proj_size} if proj_size else {}
        self.forward_rnn = rnn(input_size, hidden_size, batch_first=True, **kwargs)
        self.backward_rnn = rnn(input_size, hidden_size, batch_first=True, **kwargs) if bidirectional else None
        if forget_bias is not None:
            for r in (self.forward_rnn, self.backward_rnn):
                if r is not None:
                    init_forget_bias(r, forget_bias)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``x: (B, T, input_size)``, ``lengths: (B,)`` → ``(B, T, out_size * num_directions)``."""
        out, _ = self.forward_rnn(x)
        if self.backward_rnn is None:
            return out
        back, _ = self.backward_rnn(reverse_padded(x, lengths))
        return torch.cat([out, reverse_padded(back, lengths)], dim=-1)


class AcousticModel(nn.Module):
    """Stacked recurrent encoder + dense output layer; returns CTC log-posteriors.

    Args:
        input_dim: feature size per frame.
        vocab_size: output classes, blank (index 0) included.
        hidden_size: units per direction in each layer.
        num_layers: recurrent layers stacked.
        bidirectional: add a right-to-left direction to every layer.
        rnn_type: ``"lstm"`` or ``"gru"``.
        dropout: dropout on every layer's output (between layers and before the dense layer).
        proj_size: LSTM only: project each direction's output to this size (0: none). Fewer
            weights in the next layer's input and in the LSTM's recurrence (Sak et al., 2014).
        chunk_frames: > 0: latency-controlled bidirectional layers (:mod:`asr.models.chunked`): the backward
            direction sees only chunks of this many frames plus ``right_context_frames`` of look-ahead.
            Training and inference chunk alike, so the model learns what it will see when streaming.
        right_context_frames: each chunk's look-ahead (needs ``chunk_frames``).

    Shapes: ``forward(feats: (B, T, input_dim), lengths: (B,))`` → ``(B, T, vocab_size)`` log-probs.
    """

    def __init__(self, input_dim: int, vocab_size: int, *, hidden_size: int = 320, num_layers: int = 4,
                 bidirectional: bool = True, rnn_type: str = "lstm", dropout: float = 0.2, proj_size: int = 0,
                 chunk_frames: int = 0, right_context_frames: int = 0, forget_bias: float | None = None):
        super().__init__()
        if chunk_frames < 0 or right_context_frames < 0 or (right_context_frames and not chunk_frames) or \
                (chunk_frames and not bidirectional):
            raise ValueError(f"chunk_frames={chunk_frames}, right_context_frames={right_context_frames}: need both "
                             ">= 0, a chunk for any look-ahead, and a bidirectional model for chunks")
        self.chunk_frames, self.right_context_frames = chunk_frames, right_context_frames
        if rnn_type not in RNN_TYPES:
            raise ValueError(f"model.rnn_type must be one of {sorted(RNN_TYPES)}, got {rnn_type!r}")
        check_projection(rnn_type, hidden_size, proj_size)
        if forget_bias is not None and rnn_type != "lstm":
            raise ValueError(f"model.forget_bias={forget_bias} is an LSTM setting; model.rnn_type={rnn_type} has no "
                             "forget gate (set model.forget_bias=null)")
        if hidden_size < 1 or num_layers < 1 or vocab_size < 2 or not 0 <= dropout < 1:
            raise ValueError(f"invalid model size: hidden_size={hidden_size}, num_layers={num_layers}, "
                             f"vocab_size={vocab_size}, dropout={dropout} (need ≥1, ≥1, ≥2, 0 ≤ dropout < 1)")
        out_size = (proj_size or hidden_size) * (2 if bidirectional else 1)  # each layer's output features
        self.layers = nn.ModuleList(
            RecurrentLayer(input_dim if i == 0 else out_size, hidden_size, bidirectional=bidirectional,
                           rnn_type=rnn_type, proj_size=proj_size, forget_bias=forget_bias)
            for i in range(num_layers))
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(out_size, vocab_size)

    @property
    def bidirectional(self) -> bool:
        return self.layers[0].backward_rnn is not None

    @property
    def streamable(self) -> bool:
        """Whether outputs need only bounded future context: unidirectional, or latency-controlled."""
        return not self.bidirectional or self.chunk_frames > 0

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``feats: (B, T, input_dim)``, ``lengths: (B,)`` → log-probs ``(B, T, vocab_size)``."""
        if self.chunk_frames:
            return self._forward_chunked(feats, lengths)
        x = feats
        for layer in self.layers:
            x = self.dropout(layer(x, lengths))
        return torch.log_softmax(self.output(x), dim=-1)

    def _forward_chunked(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Latency-controlled layers over whole utterances (:func:`asr.models.chunked.chunked_layer`)."""
        x, rc = feats, look_ahead_inputs(feats, self.chunk_frames, self.right_context_frames)  # (B, K, R, F)
        for layer in self.layers:
            x, rc = chunked_layer(layer, x, rc, lengths, self.chunk_frames)
            x, rc = self.dropout(x), self.dropout(rc)
        return torch.log_softmax(self.output(x), dim=-1)

    def step(self, feats: torch.Tensor, lengths: torch.Tensor, states: list[State | None]
             ) -> tuple[torch.Tensor, list[State]]:
        """One streaming block through every layer (:func:`asr.models.chunked.block_step`).

        Args:
            feats: ``(B, L, input_dim)``: for a latency-controlled model one chunk and its look-ahead
                (``L <= chunk_frames + right_context_frames``); for a unidirectional one any ``L`` frames.
            lengths: ``(B,)`` valid frames of each block.
            states: per layer, the forward state after the previous block (None at a stream's start).

        Returns:
            log-probs ``(B, C, vocab_size)`` of the block's chunk frames (``C = min(L, chunk_frames)``, or ``L``
            for a unidirectional model), and the per-layer states after the chunk.
        """
        if not self.streamable:
            raise ValueError("a full-context bidirectional model cannot stream")
        chunk = self.chunk_frames or feats.shape[1]
        x, new_states = feats, []
        for layer, state in zip(self.layers, states):
            x, state = block_step(layer, x, lengths, chunk, state)
            new_states.append(state)
        return torch.log_softmax(self.output(x[:, :chunk]), dim=-1), new_states


def add_edge_pad(wave: torch.Tensor, wave_lens: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``noise`` before and right after each utterance's own samples (not after the batch padding).

    Shapes: ``wave: (B, S)``, ``wave_lens: (B,)``, ``noise: (P,)`` → ``(B, S + 2P)``, ``(B,)``.
    """
    b, s = wave.shape
    p = noise.shape[0]
    t = torch.arange(s + 2 * p, device=wave.device)[None, :]  # (1, S + 2P)
    lens = wave_lens.to(wave.device)[:, None]  # (B, 1)
    body = wave.gather(1, (t - p).clamp(0, max(s - 1, 0)).expand(b, -1))  # sample t - P
    head = noise[t.clamp(max=p - 1)]  # (1, S + 2P)
    tail = noise[(t - p - lens).clamp(0, p - 1)]  # (B, S + 2P)
    zero = torch.zeros((), dtype=wave.dtype, device=wave.device)
    out = torch.where(t < p, head, torch.where(t < p + lens, body, torch.where(t < 2 * p + lens, tail, zero)))
    return out, wave_lens + 2 * p


class Recognizer(nn.Module):
    """Front end + acoustic model: waveforms in, CTC log-posteriors out.

    ``edge_pad_s`` > 0: at inference (eval mode) each utterance is heard with that much quiet background
    (Gaussian, 60 dB below full scale, fixed) added at both ends. A recognizer learns from recordings
    that start and end in silence; audio trimmed to the speech (an endpointer, an editor) loses the
    context of its first and last words without it (recipes/an4/RESULTS.md). The output keeps the added
    frames (CTC often emits an utterance's last letter after its audio ends; cutting them off lost
    words), so frame 0 lies :attr:`time_offset_s` (``-edge_pad_s``) from the start of the audio.

    Shapes: ``forward(wave: (B, S), wave_lens: (B,))`` → ``log_probs: (B, T, V)``, ``lengths: (B,)``.
    """

    def __init__(self, features: FeatureExtractor, acoustic: AcousticModel, spec_augment: SpecAugment | None = None,
                 edge_pad_s: float = 0.0):
        super().__init__()
        self.features = features
        self.acoustic = acoustic
        self.spec_augment = spec_augment  # holds no weights; active in training mode only
        self.set_edge_pad(edge_pad_s)

    def set_edge_pad(self, edge_pad_s: float) -> None:
        """Pad by ``edge_pad_s`` seconds, rounded to whole output frames (0: none)."""
        if not 0 <= edge_pad_s <= 5:
            raise ValueError(f"model.edge_pad_s must be in [0, 5] s, got {edge_pad_s}")
        cfg = self.features.config
        self.edge_pad_frames = int(round(edge_pad_s / cfg.output_frame_shift_s))
        samples = int(round(self.edge_pad_frames * cfg.output_frame_shift_s * cfg.sample_rate_hz))
        noise = torch.randn(samples, generator=torch.Generator().manual_seed(0)) * 1e-3  # -60 dBFS
        self.register_buffer("edge_noise", noise, persistent=False)

    @property
    def edge_pad_s(self) -> float:
        return self.edge_pad_frames * self.features.config.output_frame_shift_s

    @property
    def time_offset_s(self) -> float:
        """Time of output frame 0 relative to the start of the audio (in eval mode): ``-edge_pad_s``."""
        return -self.edge_pad_s

    def forward(self, wave: torch.Tensor, wave_lens: torch.Tensor):
        """``wave: (B, S)``, ``wave_lens: (B,)`` → ``log_probs: (B, T, V)``, ``lengths: (B,)``."""
        augment = self.spec_augment if self.training else None
        if self.training or self.edge_pad_frames == 0:
            feats, lengths = self.features(wave, wave_lens, augment=augment)
            return self.acoustic(feats, lengths), lengths
        padded, padded_lens = add_edge_pad(wave, wave_lens, self.edge_noise.to(wave.dtype))
        feats, lengths = self.features(padded, padded_lens)
        return self.acoustic(feats, lengths), lengths


def build_recognizer(feature_config: FeatureConfig, vocab_size: int, spec_augment: SpecAugment | None = None,
                     **model_kwargs) -> Recognizer:
    """A :class:`Recognizer` from feature settings and :class:`AcousticModel` keyword arguments.

    ``model_kwargs`` may also hold :class:`asr.config.schema.ModelConfig`'s ``edge_pad_s``, and ``chunk_s`` /
    ``right_context_s`` in seconds, rounded here to whole model frames.
    """
    edge_pad_s = model_kwargs.pop("edge_pad_s", 0.0)
    shift = feature_config.output_frame_shift_s
    chunk_s, right_s = model_kwargs.pop("chunk_s", 0.0), model_kwargs.pop("right_context_s", 0.0)
    model_kwargs.setdefault("chunk_frames", max(1, round(chunk_s / shift)) if chunk_s > 0 else 0)
    model_kwargs.setdefault("right_context_frames", round(right_s / shift))
    features = FeatureExtractor(feature_config)
    acoustic = AcousticModel(feature_config.output_dim, vocab_size, **model_kwargs)
    return Recognizer(features, acoustic, spec_augment, edge_pad_s=edge_pad_s)


def num_parameters(model: nn.Module) -> int:
    """Number of weights in ``model`` (every parameter tensor's elements)."""
    return sum(p.numel() for p in model.parameters())
