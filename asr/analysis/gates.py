"""Inside a recurrent layer: gate activations, cell and hidden states at every frame.

``nn.LSTM`` and ``nn.GRU`` return only their hidden outputs. To see *why* a unit fires,
these functions recompute every step explicitly from the trained weights
(``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``), with PyTorch's gate
order and equations, and keep all intermediate values:

LSTM (gate order i, f, g, o)::

    i, f, o = σ(W_i x + U_i h + b_i), σ(...), σ(...)   input, forget, output gates ∈ [0, 1]
    g = tanh(W_g x + U_g h + b_g)                        candidate ∈ [-1, 1]
    c_t = f ⊙ c_{t-1} + i ⊙ g                            cell state
    h_t = o ⊙ tanh(c_t)                                  hidden output

GRU (gate order r, z, n)::

    r, z = σ(W_r x + b_ir + U_r h + b_hr), σ(...)        reset, update gates ∈ [0, 1]
    n = tanh(W_n x + b_in + r ⊙ (U_n h + b_hn))          candidate
    h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}

The recomputed ``hidden`` equals the module's output to float rounding (tested within
1e-5), so the gates shown are the ones the model really used.
"""

from __future__ import annotations

import torch
from torch import nn

from asr.models.acoustic import AcousticModel, RecurrentLayer, reverse_padded

LSTM_KEYS = ("input_gate", "forget_gate", "output_gate", "candidate", "cell", "hidden")
GRU_KEYS = ("reset_gate", "update_gate", "candidate", "hidden")
DIRECTIONS = ("forward", "backward")


def lstm_trace(x: torch.Tensor, weight_ih: torch.Tensor, weight_hh: torch.Tensor, bias_ih: torch.Tensor,
               bias_hh: torch.Tensor) -> dict[str, torch.Tensor]:
    """Run an LSTM step by step from zero state, keeping every intermediate value.

    Args:
        x: ``(B, T, I)`` inputs.
        weight_ih: ``(4H, I)``; weight_hh: ``(4H, H)``; bias_ih, bias_hh: ``(4H,)``; rows in
            PyTorch's gate order i, f, g, o.

    Returns:
        ``{key: (B, T, H)}`` for every key in :data:`LSTM_KEYS`.
    """
    B, T, _ = x.shape
    H = weight_hh.shape[1]
    h = x.new_zeros(B, H)
    c = x.new_zeros(B, H)
    x_part = x @ weight_ih.T + bias_ih  # input projections of all frames at once: (B, T, 4H)
    steps = {k: [] for k in LSTM_KEYS}
    for t in range(T):
        pre_i, pre_f, pre_g, pre_o = (x_part[:, t] + h @ weight_hh.T + bias_hh).chunk(4, dim=-1)
        i, f, g, o = torch.sigmoid(pre_i), torch.sigmoid(pre_f), torch.tanh(pre_g), torch.sigmoid(pre_o)
        c = f * c + i * g
        h = o * torch.tanh(c)
        for key, value in zip(LSTM_KEYS, (i, f, o, g, c, h)):
            steps[key].append(value)
    return {k: torch.stack(v, dim=1) if v else x.new_zeros(B, 0, H) for k, v in steps.items()}


def gru_trace(x: torch.Tensor, weight_ih: torch.Tensor, weight_hh: torch.Tensor, bias_ih: torch.Tensor,
              bias_hh: torch.Tensor) -> dict[str, torch.Tensor]:
    """Run a GRU step by step from zero state, keeping every intermediate value.

    Args:
        x: ``(B, T, I)`` inputs.
        weight_ih: ``(3H, I)``; weight_hh: ``(3H, H)``; bias_ih, bias_hh: ``(3H,)``; rows in
            PyTorch's gate order r, z, n.

    Returns:
        ``{key: (B, T, H)}`` for every key in :data:`GRU_KEYS`.
    """
    B, T, _ = x.shape
    H = weight_hh.shape[1]
    h = x.new_zeros(B, H)
    x_part = x @ weight_ih.T + bias_ih  # (B, T, 3H)
    steps = {k: [] for k in GRU_KEYS}
    for t in range(T):
        x_r, x_z, x_n = x_part[:, t].chunk(3, dim=-1)
        # the hidden bias b_hn sits inside the reset product, so it is added before chunking
        h_r, h_z, h_n = (h @ weight_hh.T + bias_hh).chunk(3, dim=-1)
        r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        h = (1 - z) * n + z * h
        for key, value in zip(GRU_KEYS, (r, z, n, h)):
            steps[key].append(value)
    return {k: torch.stack(v, dim=1) if v else x.new_zeros(B, 0, H) for k, v in steps.items()}


def rnn_trace(rnn: nn.LSTM | nn.GRU, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """:func:`lstm_trace` or :func:`gru_trace` with the weights of a one-layer, one-direction module.

    Args:
        rnn: ``nn.LSTM`` or ``nn.GRU`` with ``batch_first=True``, as in :class:`RecurrentLayer`.
        x: ``(B, T, input_size)``.
    """
    if rnn.num_layers != 1 or rnn.bidirectional or not rnn.bias or not rnn.batch_first or \
            getattr(rnn, "proj_size", 0):
        raise ValueError("rnn_trace reads single-layer, one-direction, batch_first modules with biases "
                         "and no projection (as asr.models.acoustic.RecurrentLayer builds them)")
    weights = (rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0)
    if isinstance(rnn, nn.LSTM):
        return lstm_trace(x, *weights)
    if isinstance(rnn, nn.GRU):
        return gru_trace(x, *weights)
    raise TypeError(f"expected nn.LSTM or nn.GRU, got {type(rnn).__name__}")


@torch.no_grad()
def trace_layer(layer: RecurrentLayer, x: torch.Tensor, lengths: torch.Tensor,
                direction: str = "forward") -> dict[str, torch.Tensor]:
    """Every intermediate value of one direction of a :class:`RecurrentLayer`, in utterance time.

    The backward direction reads each utterance reversed within its length (as the layer
    does); its values are reversed back, so index ``t`` is frame ``t`` of the utterance
    for both directions. Values past an utterance's length are padding: ignore them.

    Args:
        layer: the layer to look inside.
        x: ``(B, T, input_size)``, the layer's input; lengths: ``(B,)``.
        direction: ``"forward"`` or ``"backward"``.

    Returns:
        ``{key: (B, T, H)}``, keys :data:`LSTM_KEYS` or :data:`GRU_KEYS`.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    if direction == "forward":
        return rnn_trace(layer.forward_rnn, x)
    if layer.backward_rnn is None:
        raise ValueError("direction=backward asked for, but the model is not bidirectional")
    trace = rnn_trace(layer.backward_rnn, reverse_padded(x, lengths))
    return {k: reverse_padded(v, lengths) for k, v in trace.items()}


@torch.no_grad()
def layer_input(acoustic: AcousticModel, feats: torch.Tensor, lengths: torch.Tensor, layer: int) -> torch.Tensor:
    """The input of recurrent layer ``layer`` (0-based): ``feats`` run through the layers below.

    Runs in inference mode (no dropout), as the model is used after training.

    Args:
        feats: ``(B, T, input_dim)`` normalised, stacked features; lengths: ``(B,)``.

    Returns:
        ``(B, T, layer input size)``.
    """
    x = feats
    for below in acoustic.layers[:layer]:
        x = below(x, lengths)
    return x


def top_units(values: torch.Tensor, k: int, length: int | None = None) -> torch.Tensor:
    """The ``k`` units whose value varies most over time, most varying first.

    A unit whose output is nearly constant acts as a bias; the units that change most over
    the utterance are the ones responding to the speech, so they are the ones worth plotting.

    Args:
        values: ``(T, H)`` one utterance's values (e.g. hidden outputs).
        k: number of units (capped at ``H``).
        length: valid frames (default ``T``); padding never counts.

    Returns:
        ``(min(k, H),)`` long unit indices, ordered by standard deviation over time, largest first.

    Example:
        >>> top_units(torch.tensor([[0., 5., 1.], [0., -5., 2.]]), 2).tolist()
        [1, 2]
    """
    valid = values[: values.shape[0] if length is None else length]
    spread = valid.std(dim=0, unbiased=False)  # (H,)
    return spread.argsort(descending=True, stable=True)[: min(k, values.shape[1])]
