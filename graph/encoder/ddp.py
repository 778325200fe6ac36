"""Data-parallel training with ``torch.distributed`` (DDP): gloo on CPUs, NCCL on GPUs.

Every rank holds the whole (small) model and graph and takes an equal share of each global
batch (``train.train_epoch``), so N processes produce the same model as one process with the
same global batch, up to floating-point summation order. ``train_ddp`` spawns local processes;
under ``torchrun`` (``RANK``/``WORLD_SIZE``/``MASTER_ADDR`` set) call ``run_rank`` directly.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file
from torch.nn.parallel import DistributedDataParallel

from graph.encoder.config import EncoderConfig
from graph.encoder.evaluate import FilterIndex
from graph.encoder.train import Splits, TrainResult, build_model, fit


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_rank(
    rank: int, world_size: int, splits: Splits, num_nodes: int, num_relations: int,
    config: EncoderConfig, init_method: str = "env://", threads: int = 1,
) -> TrainResult:
    """Train on this rank inside an initialised-here process group; returns the result."""
    use_cuda = config.resolved_device().type == "cuda"
    backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        device = torch.device("cuda", rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
        torch.set_num_threads(threads)
    dist.init_process_group(backend, init_method=init_method, rank=rank, world_size=world_size,
                            timeout=timedelta(minutes=10))
    try:
        model = build_model(config, num_nodes, num_relations).to(device)
        ddp_model = DistributedDataParallel(
            model, device_ids=[device.index] if use_cuda else None)
        known = FilterIndex(splits.all(), num_relations)
        return fit(model, splits, config, known, rank=rank, world_size=world_size,
                   ddp_model=ddp_model, device=device)
    finally:
        dist.destroy_process_group()


def _spawned(rank: int, world_size: int, port: int, splits: Splits, num_nodes: int,
             num_relations: int, config_json: str, out_dir: str, threads: int) -> None:
    config = EncoderConfig.model_validate_json(config_json)
    result = run_rank(rank, world_size, splits, num_nodes, num_relations, config,
                      init_method=f"tcp://127.0.0.1:{port}", threads=threads)
    if rank == 0:
        state = {k: v.detach().cpu().contiguous() for k, v in result.model.state_dict().items()}
        save_file(state, str(Path(out_dir) / "model.safetensors"))
        (Path(out_dir) / "history.json").write_text(json.dumps(result.history))


def train_ddp(
    splits: Splits, num_nodes: int, num_relations: int, config: EncoderConfig,
    world_size: int = 2, threads_per_rank: int = 1,
    history: list[dict[str, Any]] | None = None,
) -> dict[str, torch.Tensor]:
    """Spawn ``world_size`` local processes (gloo on CPU, NCCL with CUDA), train, and return
    rank 0's final ``state_dict``; rank 0's per-epoch history is appended to ``history``."""
    with tempfile.TemporaryDirectory(prefix="kgr-ddp-") as out_dir:
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
        mp.spawn(
            _spawned,
            args=(world_size, free_port(), splits, num_nodes, num_relations,
                  config.model_dump_json(), out_dir, threads_per_rank),
            nprocs=world_size, join=True,
        )
        if history is not None:
            history.extend(json.loads((Path(out_dir) / "history.json").read_text()))
        return load_file(str(Path(out_dir) / "model.safetensors"))
