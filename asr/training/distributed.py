"""Many processes, one job: ``torch.distributed`` set-up and the few collectives the toolkit needs.

Started by ``torchrun``, each process finds ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and
the rendezvous address in its environment; :func:`init_from_env` joins the process
group from there (gloo for CPU work, NCCL for GPU work). Without ``torchrun`` (or with
``WORLD_SIZE=1``) nothing is initialised and every helper here is the identity, so the
single-process code path is the same code.

Example (two CPU processes on one machine)::

    torchrun --nproc-per-node=2 -m asr train data=synthetic trainer.device=cpu
"""

from __future__ import annotations

import gc
import logging
import os
import weakref
from dataclasses import dataclass

import torch
import torch.distributed as dist

from asr.runtime import free_cores

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class World:
    """This process's place in the job: ``rank`` of ``size`` overall, ``local_rank`` of ``local_size`` here."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints, model files, logs and merged outputs; the others only compute."""
        return self.rank == 0


def env_world() -> World:
    """The world as ``torchrun`` describes it in the environment (before or without a process group)."""
    env = os.environ
    size = int(env.get("WORLD_SIZE", "1"))
    local_size = int(env.get("LOCAL_WORLD_SIZE", str(size)))
    return World(int(env.get("RANK", "0")), size, int(env.get("LOCAL_RANK", "0")), local_size)


def world() -> World:
    """The current world: from the process group when one is running, else a single process."""
    if dist.is_available() and dist.is_initialized():
        env = env_world()
        return World(dist.get_rank(), dist.get_world_size(), env.local_rank, env.local_size)
    return World()


def init_from_env(device: torch.device, *, training: bool = False) -> tuple[World, torch.device]:
    """Join the process group ``torchrun`` set up, if there is one; return the world and this rank's device.

    The backend follows the device: NCCL for CUDA, gloo for CPU. A bare ``cuda`` becomes
    ``cuda:LOCAL_RANK`` so each process on a node drives its own GPU. Calling it again
    (the CLI and :func:`asr.training.train.train` both do) returns the running group.
    ``training``: the job will build an optimizer (see :func:`_import_dynamo_first`).
    """
    env = env_world()
    if env.size <= 1:
        return World(), device
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", env.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if training:
            _import_dynamo_first()
        dist.init_process_group(backend=backend)
        log.info("rank %d of %d joined the process group (%s, %s)", env.rank, env.size, backend, device)
    return world(), device


def _import_dynamo_first() -> None:
    """Import ``torch._dynamo`` before the process group exists, so ``destroy_process_group`` can free it.

    Building an optimizer imports ``torch._dynamo``; imported while a group is running, it keeps
    a reference to that group that ``destroy_process_group`` does not drop. The gloo group then
    lives until the interpreter exits, its threads still running, and a rank can abort at exit
    ("terminate called without an active exception", exit -6) after all its work is done.
    Imported first, it takes no such reference (``tests/training/test_distributed.py`` checks that
    the group is gone after :func:`shutdown`).
    """
    import torch._dynamo  # noqa: F401


def threads_per_rank(threads: int, w: World) -> int:
    """CPU threads for one process: ``threads`` if set, else the free cores shared by this node's ranks.

    Two ranks with two threads each on a 2-core machine fight over the cores at every LSTM
    step; one thread each keeps both busy.
    """
    return threads if threads > 0 else max(1, free_cores() // w.local_size)


def _device() -> torch.device:
    """Where collective tensors live: the current GPU under NCCL, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce(values: list[float], op: str = "sum") -> list[float]:
    """Element-wise ``sum``, ``min`` or ``max`` of ``values`` over all ranks, in float64 (identity alone)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=_device())
    dist.all_reduce(t, op={"sum": dist.ReduceOp.SUM, "min": dist.ReduceOp.MIN, "max": dist.ReduceOp.MAX}[op])
    return t.tolist()


def all_reduce_gradients(params) -> None:
    """Sum every parameter's gradient over all ranks, in place, in one collective (nothing alone).

    A parameter without a gradient gets zeros first, so every rank sends the same layout.
    Called once per kept step, after each rank's backward passes, by every rank.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    params = [p for p in params if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    dist.all_reduce(flat)
    for p, part in zip(params, flat.split([p.numel() for p in params])):
        p.grad.copy_(part.view_as(p.grad))


def broadcast_module(module: torch.nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s parameters and buffers into every rank's ``module``, in place (nothing alone)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    with torch.no_grad():
        for t in module.state_dict().values():
            dist.broadcast(t, src=src)


def all_gather(obj) -> list:
    """Every rank's ``obj`` (any picklable value), in rank order; ``[obj]`` alone."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast(obj, src: int = 0):
    """Rank ``src``'s ``obj`` on every rank; ``obj`` alone."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def barrier() -> None:
    """Wait until every rank gets here (nothing alone)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


def shutdown() -> bool:
    """Leave the process group cleanly (so ``torchrun`` sees a normal exit); return whether it is gone.

    A group that something still holds after ``destroy_process_group`` is named in a warning:
    its threads would outlive the job's work and can abort the process at exit.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return True
    group = weakref.ref(dist.group.WORLD)
    dist.destroy_process_group()
    gc.collect()
    if group() is not None:
        log.warning("the process group is still referenced after destroy_process_group; this rank may abort "
                    "at exit (a module that holds the group was imported after init_from_env)")
        return False
    return True
