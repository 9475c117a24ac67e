"""Recovery and distributed-training fixes for any RecBole trainer: atomic checkpoints, exact resume, DDP on CPUs.

:class:`TrainerFixes` goes first in a trainer's bases (every trainer :func:`recbole_llm4msr.registry.get_trainer`
returns has it, stock ones via :func:`with_fixes`).
"""
import os
import random
import time

import numpy as np
import torch
import torch.distributed as dist
from recbole.utils import set_color

from recbole_llm4msr.atomic import atomic_path
from recbole_llm4msr.compat import recbole_deprecations_quiet, torch_load
from recbole_llm4msr.distributed import non_persistent_buffers
from recbole_llm4msr.settings import setting_bool


def last_checkpoint_path(saved_model_file):
    """``saved/MMoE-Nov-25-2026_10-00-00.pth`` -> ``saved/MMoE-Nov-25-2026_10-00-00.last.pth``."""
    root, ext = os.path.splitext(str(saved_model_file))
    return f"{root}.last{ext or '.pth'}"


class TrainerFixes:
    """Put first in a RecBole trainer's bases (every trainer :func:`recbole_llm4msr.registry.get_trainer` returns
    has it). Single-process behaviour is RecBole's, plus:

    * **DDP on CPU and GPU**: the wrapper uses ``device_ids=None`` on CPU, SyncBatchNorm only on GPUs, and leaves
      the knowledge tables (non-persistent buffers, identical on every rank) out of DDP's per-step broadcast;
    * **one checkpoint name** for all ranks (rank 0's), written by local rank 0 of each machine only, then a
      barrier, so no rank reads a checkpoint before it is complete (RecBole 1.2.1's race);
    * **atomic checkpoints** (temporary file + rename): a kill never leaves a torn file;
    * **epoch timing** for every model (``train_epoch_seconds``: the results' s/epoch);
    * **recovery**: after every evaluated epoch a ``<name>.last.pth`` checkpoint (model, optimizer, early-stopping
      state, best result, RNG and shuffling state, the best model's file); ``resume_checkpoint`` accepts it or a
      best-model checkpoint, loads with ``map_location`` (GPU checkpoints on CPU) and under torch >= 2.6.
    """

    def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        start = time.perf_counter()
        with recbole_deprecations_quiet():  # RecBole's per-epoch torch.cuda.amp.GradScaler (compat)
            loss = super()._train_epoch(train_data, epoch_idx, loss_func=loss_func, show_progress=show_progress)
        self.train_epoch_seconds.append(time.perf_counter() - start)
        return loss

    def __init__(self, config, model):
        distributed = not config["single_spec"]
        if distributed:
            config["single_spec"] = True  # keep RecBole's AbstractTrainer from wrapping with device_ids=[rank]
        try:
            super().__init__(config, model)
        finally:
            config["single_spec"] = not distributed
        self._resume_state = None
        self._resumed_finished = False
        self.train_epoch_seconds = []  # wall time of each training epoch (benchmarks, results JSON, llm4msr-compare)
        if not distributed:
            return
        on_gpu = config["device"].type == "cuda"
        if on_gpu:
            self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        ignore = [name for name, _ in non_persistent_buffers(self.model)]
        if ignore:
            torch.nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(self.model, ignore)
        self.distributed_model = torch.nn.parallel.DistributedDataParallel(
            self.model, device_ids=[config["device"].index] if on_gpu else None)
        name = [self.saved_model_file]
        dist.broadcast_object_list(name, src=0)
        self.saved_model_file = name[0]

    # ------------------------------------------------------------------ saving
    def _is_writer(self):
        # one writer per machine (local rank 0): every machine needs the best model on its own disk for the test
        # evaluation; on a shared file system the copies are identical and each lands by an atomic rename
        return self.config["single_spec"] or self.config["local_rank"] == 0

    def _checkpoint_state(self, epoch):
        return {
            "config": self.config,
            "epoch": epoch,
            "cur_step": self.cur_step,
            "best_valid_score": self.best_valid_score,
            "state_dict": self.model.state_dict(),
            "other_parameter": self.model.other_parameter(),
            "optimizer": self.optimizer.state_dict(),
        }

    def _load_model_state(self, checkpoint):
        self.model.load_state_dict(checkpoint["state_dict"])
        self.model.load_other_parameter(checkpoint.get("other_parameter"))

    @torch.no_grad()
    def evaluate(self, eval_data, load_best_model=True, model_file=None, show_progress=False):
        """RecBole's evaluate; the best model is loaded here, with ``torch_load`` (RecBole's plain ``torch.load``
        refuses its own checkpoints under torch >= 2.6)."""
        if eval_data and load_best_model:
            checkpoint_file = model_file or self.saved_model_file
            self._load_model_state(torch_load(checkpoint_file, map_location=self.device))
            self.logger.info(f"Loading model structure and parameters from {checkpoint_file}")
        return super().evaluate(eval_data, load_best_model=False, show_progress=show_progress)

    def _write_atomic(self, state, target):
        with atomic_path(target) as tmp:
            torch.save(state, tmp, pickle_protocol=4)

    def _save_checkpoint(self, epoch, verbose=True, **kwargs):
        target = kwargs.pop("saved_model_file", self.saved_model_file)
        if self._is_writer():
            self._write_atomic(self._checkpoint_state(epoch), target)
            if verbose:
                self.logger.info(f"Saving current: {target}")
        if not self.config["single_spec"]:
            dist.barrier()  # no rank goes on (and possibly reads the file) before it is complete

    def _save_last_checkpoint(self, epoch, finished):
        target = last_checkpoint_path(self.saved_model_file)
        if self._is_writer():
            state = self._checkpoint_state(epoch)
            state.update(
                best_model_file=self.saved_model_file,
                best_valid_result=self.best_valid_result,
                finished=finished,
                train_loss=dict(self.train_loss_dict),
                rng={"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
                     "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                     "train_generator": None if self._train_generator is None else self._train_generator.get_state()},
            )
            self._write_atomic(state, target)
        if not self.config["single_spec"]:
            dist.barrier()
        self.last_checkpoint_file = target

    # ------------------------------------------------------------------ training with recovery
    def fit(self, train_data, valid_data=None, verbose=True, saved=True, show_progress=False, callback_fn=None):
        self._train_generator = getattr(train_data, "generator", None)
        if self._resume_state is not None:
            self._restore_rng(self._resume_state)
        if self._resumed_finished:
            self.logger.info("the resumed checkpoint is of a finished run: nothing left to train")
            return self.best_valid_score, self.best_valid_result
        keep_last = saved and setting_bool(self.config, "save_last_checkpoint", default=True)

        def on_epoch_end(epoch_idx, valid_score):
            if callback_fn:
                callback_fn(epoch_idx, valid_score)
            if keep_last:
                stopping = self.cur_step > self.stopping_step or epoch_idx + 1 >= self.epochs
                self._save_last_checkpoint(epoch_idx, finished=stopping)

        return super().fit(train_data, valid_data, verbose=verbose, saved=saved, show_progress=show_progress,
                           callback_fn=on_epoch_end)

    def _restore_rng(self, state):
        rng = state.get("rng") or {}
        if rng.get("torch") is not None:
            torch.set_rng_state(rng["torch"])
        if rng.get("numpy") is not None:
            np.random.set_state(rng["numpy"])
        if rng.get("python") is not None:
            random.setstate(rng["python"])
        if rng.get("cuda") is not None and torch.cuda.is_available() and len(rng["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(rng["cuda"])
        if rng.get("train_generator") is not None and self._train_generator is not None:
            self._train_generator.set_state(rng["train_generator"])
        self._resume_state = None

    def resume_checkpoint(self, resume_file):
        """Continue from a ``.last.pth`` checkpoint (exactly where training stopped) or from a best-model checkpoint
        (RecBole's behaviour: from the best epoch on)."""
        resume_file = str(resume_file)
        if not os.path.isfile(resume_file):
            raise FileNotFoundError(f"resume: checkpoint {resume_file} does not exist")
        try:
            checkpoint = torch_load(resume_file, map_location=self.device)
        except Exception as e:  # torn / foreign files: say which file, not a pickle traceback
            raise ValueError(f"resume: {resume_file} is not a readable RecBole checkpoint ({type(e).__name__}: {e})")
        missing = [k for k in ("config", "epoch", "state_dict", "optimizer") if k not in checkpoint]
        if missing:
            raise ValueError(f"resume: {resume_file} lacks {missing}; it is not a RecBole training checkpoint")
        trained_as = checkpoint["config"]["model"]
        if str(trained_as).lower() != str(self.config["model"]).lower():
            raise ValueError(f"resume: {resume_file} was trained as {trained_as}, not {self.config['model']}; "
                             f"resume with --model={trained_as}")
        self._load_model_state(checkpoint)
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.start_epoch = checkpoint["epoch"] + 1
        self.cur_step = checkpoint.get("cur_step", 0)
        self.best_valid_score = checkpoint.get("best_valid_score", self.best_valid_score)
        best_file = checkpoint.get("best_model_file")
        self.saved_model_file = best_file if best_file and os.path.isfile(best_file) else resume_file
        if "best_valid_result" in checkpoint:
            self.best_valid_result = checkpoint["best_valid_result"]
            self.train_loss_dict.update(checkpoint.get("train_loss") or {})
            self._resume_state = checkpoint
            self._resumed_finished = bool(checkpoint.get("finished"))
        self.logger.info(set_color("Checkpoint loaded", "blue") + f": {resume_file}; resume training from epoch "
                         f"{self.start_epoch} (best model file {self.saved_model_file})")


def with_fixes(trainer_class):
    """``trainer_class`` with :class:`TrainerFixes` first in its bases (RecBole's stock trainers)."""
    if issubclass(trainer_class, TrainerFixes):
        return trainer_class
    return type(trainer_class.__name__, (TrainerFixes, trainer_class), {"__module__": trainer_class.__module__})
