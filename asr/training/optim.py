"""Optimizer and learning-rate schedule: AdamW (or Adam, SGD) with linear warm-up, then cosine/exponential decay."""

from __future__ import annotations

import math

import torch

from asr.config.schema import OptimConfig, Settings


def lr_lambda(step: int, warmup_steps: int, total_steps: int, schedule: str, final_ratio: float) -> float:
    """Learning-rate multiplier: linear warm-up to 1, then decay to ``final_ratio`` at ``total_steps``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    if schedule == "cosine":
        return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return final_ratio ** progress  # exponential


def make_optimizer(params, s: Settings) -> torch.optim.Optimizer:
    """``s.optim.name`` over ``params``; SGD takes ``betas[0]`` as its (Nesterov) momentum."""
    o = s.optim
    if o.name == "adamw":
        return torch.optim.AdamW(params, lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)
    if o.name == "adam":
        return torch.optim.Adam(params, lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)
    return torch.optim.SGD(params, lr=o.lr, momentum=o.betas[0], weight_decay=o.weight_decay, nesterov=True)


def make_scheduler(optimizer: torch.optim.Optimizer, o: OptimConfig,
                   total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """The :func:`lr_lambda` schedule over ``total_steps`` optimizer steps (stepped once per batch)."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_lambda(step, o.warmup_steps, total_steps, o.schedule, o.final_lr_ratio))
