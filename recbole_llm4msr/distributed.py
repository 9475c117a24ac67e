"""Distributed training on RecBole's own DDP, fixed for CPUs and for exact metrics.

RecBole 1.2.1 (``recbole.quick_start.run`` -> ``mp.spawn``) has three problems this module fixes without touching
the installed package:

======================================  =====================================================================
RecBole 1.2.1                           here
======================================  =====================================================================
``Config._init_device`` always uses     :func:`init_device`: ``ddp_backend: auto`` picks NCCL on GPUs and gloo
NCCL + ``cuda:<rank>``: fails on CPU    on CPU (or say ``gloo`` / ``nccl``); the device follows the backend.
``DistributedDataParallel(model,        :class:`recbole_llm4msr.recovery.TrainerFixes` wraps with ``device_ids=None`` on CPU,
device_ids=[rank])``: fails on CPU      converts batch norm to SyncBatchNorm only on GPUs, and leaves the
                                        knowledge tables (non-persistent buffers) out of DDP's buffer broadcast.
each rank names the checkpoint from     rank 0's file name is broadcast; local rank 0 of each machine writes it
its own clock; ranks > 0 read it        atomically; every rank waits at a barrier after each save, so no rank
before rank 0 finished writing          reads a half-written or missing checkpoint.
metrics averaged over ranks             :func:`gather_rows`: every rank gathers all ranks' scores, labels and
(``_map_reduce``): AUC is not a mean    scenarios in the sampler's order and computes the metrics on exactly the
                                        rows a single process would see (DistributedSampler padding dropped).
======================================  =====================================================================
"""
import os

import torch
import torch.distributed as dist


def resolve_backend(cfg):
    """``(backend, use_cuda)`` for a distributed run of ``cfg`` (``ddp_backend``, ``use_gpu``, ``nproc``): ``auto``
    is NCCL on GPUs and gloo on CPUs. Raises ValueError for an unknown backend, NCCL without a GPU, or fewer visible
    GPUs than ``nproc`` (NCCL refuses two ranks on one GPU). The launcher checks this before it starts any process;
    each rank again when it takes its device."""
    nproc = int(cfg.get("nproc") or 1)
    backend = str(cfg.get("ddp_backend") or "auto").lower()
    if backend not in ("auto", "gloo", "nccl"):
        raise ValueError(f"ddp_backend must be auto, gloo or nccl, not '{cfg.get('ddp_backend')}'")
    use_cuda = bool(cfg.get("use_gpu", True)) and torch.cuda.is_available() and backend != "gloo"
    if backend == "nccl" and not use_cuda:
        raise ValueError("ddp_backend: nccl needs CUDA GPUs (use_gpu: True and a visible GPU); none is available "
                         "here — use ddp_backend: gloo (or auto) to train on CPUs")
    if use_cuda:
        visible = torch.cuda.device_count()
        if visible < nproc:
            raise ValueError(f"nproc={nproc} processes need {nproc} GPUs but {visible} are visible (gpu_id="
                             f"'{cfg.get('gpu_id')}'); set gpu_id to {nproc} GPUs, lower nproc, or ddp_backend: gloo")
    return ("nccl" if use_cuda else "gloo") if backend == "auto" else backend, use_cuda


def init_device(config_dict):
    """RecBole's ``Config._init_device`` for distributed runs (``local_rank`` set), on GPUs or CPUs."""
    cfg = config_dict
    nproc = int(cfg.get("nproc") or 1)
    backend, use_cuda = resolve_backend(cfg)
    local_rank = int(cfg["local_rank"])
    if use_cuda:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
        if "OMP_NUM_THREADS" not in os.environ:  # N ranks x all cores each would oversubscribe the CPU
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // nproc))
    rank = local_rank + int(cfg.get("offset") or 0)
    world_size = int(cfg["world_size"])
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size,
                                init_method=f"tcp://{cfg.get('ip', 'localhost')}:{cfg.get('port', '5678')}")
    cfg["device"] = device
    cfg["ddp_backend"] = backend
    cfg["single_spec"] = False
    cfg["rank"] = rank
    if local_rank != 0:  # as RecBole: one log per machine
        cfg["state"] = "error"
        cfg["show_progress"] = False
        cfg["verbose"] = False


def _comm_device(default):
    """Where collective tensors must live: the current GPU under NCCL, ``default`` otherwise (gloo: CPU)."""
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else default


def gather_rows(tensor, sampler):
    """All ranks' rows of ``tensor`` (this rank's rows, in ``sampler`` order) in the order of the full dataset.

    ``sampler`` is the ``DistributedSampler`` of the evaluation loader (``shuffle=False``): rank ``r`` holds padded
    indices ``r, r + W, r + 2W, ...``; the padding (the first indices repeated to make the shards equal) is
    dropped. Every rank gets the full result.
    """
    world = dist.get_world_size()
    n = len(sampler.dataset)
    if getattr(sampler, "shuffle", False):
        raise ValueError("gather_rows needs an evaluation sampler without shuffling")
    if tensor.shape[0] != sampler.num_samples:
        raise RuntimeError(f"rank {dist.get_rank()} collected {tensor.shape[0]} rows, expected {sampler.num_samples}")
    local = tensor.detach().to(_comm_device(torch.device("cpu"))).contiguous()
    parts = [torch.empty_like(local) for _ in range(world)]
    dist.all_gather(parts, local)
    stacked = torch.stack(parts, dim=1)  # [num_samples, world, ...]: row j of rank r is padded index j * W + r
    return stacked.reshape(-1, *tensor.shape[1:])[:n].cpu()


def non_persistent_buffers(module, prefix=""):
    for name, child in module.named_children():
        yield from non_persistent_buffers(child, f"{prefix}{name}.")
    for name in getattr(module, "_non_persistent_buffers_set", ()):
        if getattr(module, name, None) is not None:
            yield f"{prefix}{name}", getattr(module, name)


def find_free_port():
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("localhost", 0))
        return str(s.getsockname()[1])


def real_row_mask(eval_data):
    """For this rank's rows of ``eval_data`` in order: True for a row of the dataset, False for DistributedSampler
    padding (rows repeated to make the shards equal). None in a single process (every row is real)."""
    sampler = getattr(eval_data, "sampler", None)
    if not isinstance(sampler, torch.utils.data.distributed.DistributedSampler):
        return None
    positions = torch.arange(sampler.num_samples) * sampler.num_replicas + sampler.rank
    return positions < len(sampler.dataset)


def all_reduce_sum(tensor):
    """Sum ``tensor`` over ranks (in place) when running distributed; a no-op otherwise."""
    if dist.is_available() and dist.is_initialized():
        t = tensor.to(_comm_device(tensor.device))
        dist.all_reduce(t)
        tensor.copy_(t.to(tensor.device))
    return tensor
