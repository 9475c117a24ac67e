"""LoRA fine-tuning of a causal LM on (prompt, answer) samples: a plain, resumable loop on ``peft``.

Shared by the alignment (``llm4msr-align``) and TSLRec's user-level SFT. The loss is the causal-LM cross-entropy of
the answer tokens only (prompt tokens are masked with -100); prompts are rendered with the model's chat template
when it has one, exactly as the knowledge extractor renders them. Prompts longer than ``max_length`` keep their end.

A sample with negatives (``(prompt, answer, negatives)``, the alignment's ``listwise`` task) is trained as the ranker
is evaluated instead: its candidates' answer log-likelihoods (per token, or in all: ``scoring``) divided by
``temperature`` go through a softmax, and the loss is the cross-entropy of the answer (candidate 0). A batch's loss is
the mean over its samples (the language-modelling samples' token-mean loss weighted by their share). In one process
each listwise sample runs its prompt once and its candidates on the prompt's KV cache; under DistributedDataParallel
every sequence of the batch goes through one forward pass (the same loss, tested).

Several processes (``torchrun --nproc_per_node=N``, on one machine or several; ``accelerate launch`` sets the same
variables): every global batch of ``batch_size`` samples is split over the N ranks, the adapters are wrapped in
PyTorch's ``DistributedDataParallel`` (NCCL on GPUs, gloo on CPUs; each rank on ``cuda:LOCAL_RANK``), so the
gradients are averaged; rank 0 writes the checkpoints and the model. Resuming works the same way.

Resuming: every ``save_every`` steps ``<out>/.work/`` gets the adapter, the optimizer, the step, the data order and
the RNG states (written to a temporary folder and swapped in, so a kill never leaves a torn checkpoint); the same
command continues from there. The finished model -- LoRA merged into the base weights -- is written to
``<out>/model/`` (safetensors + tokenizer) in a temporary folder and swapped into place, with ``manifest.json``
written last: a directory without a manifest is not finished.
"""
import json
import logging
import math
import os
import random
import shutil
import tempfile
import textwrap
import time
import warnings
from dataclasses import dataclass

import numpy as np

from recbole_llm4msr.atomic import atomic_write_json, building_dir
from recbole_llm4msr.knowledge.llm import prompt_token_ids

logger = logging.getLogger(__name__)


class FinetuneError(ValueError):
    """A fine-tuning setting or model that cannot work; the message names it."""


@dataclass
class LoraSettings:
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    target_modules: str = "all-linear"   # peft's name for every linear layer but the output head
    learning_rate: float = 5e-4
    batch_size: int = 8
    epochs: int = 1
    max_length: int = 384
    save_every: int = 25
    seed: int = 0


def add_lora_arguments(parser):
    """``--lora_r``, ``--learning_rate``, ``--batch_size``, ... (every :class:`LoraSettings` field but the seed) for a
    command line (``llm4msr-align``, ``llm4msr-tslrec``)."""
    for name, f in LoraSettings.__dataclass_fields__.items():
        if name != "seed":
            parser.add_argument(f"--{name}", type=type(f.default), default=f.default)


def lora_from_args(args, seed):
    """The :class:`LoraSettings` of :func:`add_lora_arguments`' flags."""
    return LoraSettings(**{k: getattr(args, k) for k in LoraSettings.__dataclass_fields__ if k != "seed"}, seed=seed)


def load_for_training(llm, device="cpu", dtype="auto", trust_remote_code=False):
    """(name, tokenizer, model) of ``llm`` for LoRA training: ``auto`` dtype is bfloat16 on a GPU and float32 on
    the CPU; a tokenizer without a pad token pads with EOS."""
    from recbole_llm4msr.knowledge.llm import load_model

    if dtype == "auto":
        dtype = "bfloat16" if str(device).startswith("cuda") else "float32"
    name, tokenizer, model = load_model(llm, device=device, dtype=dtype, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return name, tokenizer, model


def encode_pair(tokenizer, prompt, answer, max_length):
    """(input_ids, labels): the prompt as the extractor renders it (:func:`prompt_token_ids`; without a chat
    template a line break follows it), then the answer and EOS; labels -100 on the prompt."""
    return encode_candidates(tokenizer, prompt, [answer], max_length)[0]


def encode_candidates(tokenizer, prompt, answers, max_length):
    """:func:`encode_pair` of one prompt with several answers, the prompt cut once (from the left) so that it and
    the longest answer fit ``max_length``: every answer is scored after the same context, and the prompt's tokens are
    a prefix shared by all pairs (the ranker runs it once)."""
    p = prompt_token_ids(tokenizer, prompt)
    if getattr(tokenizer, "chat_template", None) is None:
        p = p + tokenizer("\n", add_special_tokens=False)["input_ids"]
    encoded = []
    for answer in answers:
        a = tokenizer(answer, add_special_tokens=False)["input_ids"]
        if tokenizer.eos_token_id is not None:
            a = a + [tokenizer.eos_token_id]
        encoded.append(a[: max_length // 2])
    p = p[-(max_length - max(len(a) for a in encoded)):]
    return [(p + a, [-100] * len(p) + a) for a in encoded]


def answer_logprobs(logits, target, scoring="mean"):
    """Per row, the log-probability of the ``target`` tokens (-100: not scored) under ``logits`` (position t predicts
    target t): their mean (``scoring: mean``) or sum (``sum``); a tensor, differentiable."""
    import torch

    logp = torch.log_softmax(logits.float(), -1).gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    keep = (target != -100).float()
    total = (logp * keep).sum(1)
    return total if scoring == "sum" else total / keep.sum(1).clamp(min=1)


def listwise_scores(model, tokenizer, pairs, scoring="mean", shared_prefix=True):
    """The answer log-likelihoods of :func:`encode_candidates` ``pairs`` (one prompt, several answers) as a
    differentiable tensor: the prompt run once and its KV cache repeated for the answers (``shared_prefix``), or
    every pair run whole (the same values)."""
    import torch

    from recbole_llm4msr.knowledge.llm import cache_argument

    device = next(model.parameters()).device
    start = pairs[0][1].count(-100)
    if not shared_prefix or start == 0:
        ids, labels, mask = pad_batch(pairs, tokenizer, device)
        return answer_logprobs(model(input_ids=ids, attention_mask=mask).logits[:, :-1], labels[:, 1:], scoring)
    out = model(input_ids=torch.tensor([pairs[0][0][:start]], device=device), use_cache=True)
    cache = out.past_key_values
    if not hasattr(cache, "batch_repeat_interleave"):  # a legacy tuple cache (remote code): every pair whole
        return listwise_scores(model, tokenizer, pairs, scoring, shared_prefix=False)
    cache.batch_repeat_interleave(len(pairs))  # this call's own cache: repeated in place, gradients flow through
    ids, labels, mask = pad_batch([(x[start:], y[start:]) for x, y in pairs], tokenizer, device)
    n, width = ids.shape
    mask = torch.cat([torch.ones(n, start, dtype=mask.dtype, device=device), mask], 1)
    pos = (start + torch.arange(width, device=device)).unsqueeze(0).expand(n, -1)
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    logits = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True,
                   **{cache_argument(base): cache}).logits
    # answer token t is predicted by position t - 1 of the suffix, token 0 by the prompt's last position
    return answer_logprobs(torch.cat([out.logits[:, -1:].expand(n, 1, -1), logits[:, :-1]], 1), labels, scoring)


def batch_loss(net, tokenizer, batch, device, scoring="mean", temperature=1.0, shared_prefix=True, backward=False):
    """The loss of a batch of encoded samples (``("lm", pair)`` / ``("list", pairs)``): language-modelling samples'
    answer-token cross-entropy, listwise samples' softmax cross-entropy over their candidates (module docstring).
    ``backward``: also back-propagate it (into the gradients already there) and return it detached; with
    ``shared_prefix`` each sample's part is back-propagated as soon as it is computed, so only one sample's
    activations are held at a time (the same gradients as one backward pass of the whole loss)."""
    import torch

    lm = [e for kind, e in batch if kind == "lm"]
    lists = [e for kind, e in batch if kind == "list"]
    if not lists:
        ids, labels, mask = pad_batch(lm, tokenizer, device)
        loss = net(input_ids=ids, attention_mask=mask, labels=labels).loss
        if backward:
            loss.backward()
            return loss.detach()
        return loss
    answer = torch.zeros((), dtype=torch.long, device=device)
    parts = []

    def add(part):
        if backward and shared_prefix:
            (part / len(batch)).backward()
            part = part.detach()
        parts.append(part)

    if shared_prefix:
        if lm:
            ids, labels, mask = pad_batch(lm, tokenizer, device)
            add(net(input_ids=ids, attention_mask=mask, labels=labels).loss * len(lm))
        for pairs in lists:
            scores = listwise_scores(net, tokenizer, pairs, scoring, shared_prefix=True)
            add(torch.nn.functional.cross_entropy(scores / temperature, answer))
    else:  # one forward over every sequence of the batch (what DistributedDataParallel needs)
        logits, target = answer_window_logits(net, lm + [p for pairs in lists for p in pairs], tokenizer, device)
        if lm:  # the token mean over the language-modelling rows, as the model's own loss computes it
            t = target[:len(lm)]
            total = answer_logprobs(logits[:len(lm)], t, "sum").sum()
            parts.append(-total / (t != -100).sum().clamp(min=1) * len(lm))
        scores = answer_logprobs(logits[len(lm):], target[len(lm):], scoring)
        k = 0
        for pairs in lists:
            parts.append(torch.nn.functional.cross_entropy(scores[k:k + len(pairs)] / temperature, answer))
            k += len(pairs)
    loss = sum(parts) / len(batch)
    if backward and not shared_prefix:
        loss.backward()
    return loss.detach() if backward else loss


def pad_batch(pairs, tokenizer, device, left=False):
    """(input_ids, labels, attention_mask) of :func:`encode_pair` results, right-padded to the longest (``left``:
    left-padded, so that every row's answer ends at the last position)."""
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    width = max(len(x) for x, _ in pairs)

    def padded(row, value):
        fill = [value] * (width - len(row))
        return fill + row if left else row + fill

    ids = torch.tensor([padded(x, pad) for x, _ in pairs], device=device)
    labels = torch.tensor([padded(y, -100) for _, y in pairs], device=device)
    mask = torch.tensor([padded([1] * len(x), 0) for x, _ in pairs], device=device)
    return ids, labels, mask


def answer_window_logits(net, pairs, tokenizer, device):
    """(logits, targets) of :func:`encode_pair` results in one forward pass, the logits of the answer positions only:
    rows left-padded (position ids from the mask: the same values as unpadded rows) so that every answer lies in the
    last K positions, and the model asked for those K positions' logits alone (``logits_to_keep``) -- the
    full-vocabulary logits of every prompt position were most of a batched step's memory. A model whose forward has no
    ``logits_to_keep`` gets every position's logits (the same values). Position t's logits predict target t."""
    ids, labels, mask = pad_batch(pairs, tokenizer, device, left=True)
    keep = int((labels != -100).sum(1).max()) + 1  # the answer tokens and the prompt's last position
    position_ids = (mask.cumsum(1) - 1).clamp(min=0)
    try:
        logits = net(input_ids=ids, attention_mask=mask, position_ids=position_ids, logits_to_keep=keep).logits
    except TypeError:  # remote code without logits_to_keep
        logits = net(input_ids=ids, attention_mask=mask, position_ids=position_ids).logits
    keep = logits.shape[1]
    return logits[:, :-1], labels[:, labels.shape[1] - keep + 1:]


def distributed_context(device="cpu"):
    """``(rank, world_size, local_rank)`` under a launcher that sets ``WORLD_SIZE`` > 1 (torchrun, accelerate), with
    the process group initialised (NCCL for CUDA devices, gloo otherwise); ``(0, 1, 0)`` in a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if str(device).startswith("cuda") else "gloo")
    return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0"))


def rank_device(device):
    """``cuda`` -> ``cuda:LOCAL_RANK`` under a launcher (one GPU per process); anything else unchanged."""
    if str(device) == "cuda" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return device


def wrap_lora(model, settings):
    """The base model with LoRA adapters (peft); a clear error for an architecture peft cannot wrap."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=settings.lora_r, lora_alpha=settings.lora_alpha, lora_dropout=settings.lora_dropout,
                        target_modules=settings.target_modules, task_type="CAUSAL_LM")
    try:
        with warnings.catch_warnings():
            # peft (<= 0.21) reads transformers' deprecated ``is_gradient_checkpointing`` while it wraps a model:
            # a FutureWarning of transformers 5 on every wrap that no caller can act on; any other warning shows
            warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated",
                                    category=FutureWarning)
            return get_peft_model(model, config)
    except (ValueError, TypeError, KeyError) as e:
        raise FinetuneError(f"peft cannot put LoRA adapters on {type(model).__name__} ({e}); pass target_modules "
                            f"naming its linear layers, or use a supported architecture (Llama, Qwen2, Gemma, ...)")


def finetune(model, tokenizer, pairs, out_dir, settings, progress=True, stop_after=None, scoring="mean",
             temperature=1.0, max_seconds=None, listwise_forward="auto"):
    """LoRA-train ``model`` on ``pairs`` [(prompt, answer)] or [(prompt, answer, negatives)] (listwise; ``scoring``
    and ``temperature`` as in the module docstring), resumably under ``out_dir/.work``; returns (merged model,
    history dict: ``steps`` done of ``planned_steps``, ``stopped``). ``stop_after``: end after this many steps of
    this call (tests of resuming). ``max_seconds``: a time budget for the training loop (resumed runs count their
    earlier seconds): once a step ends past it, a checkpoint marked ``stopped`` is written and the model is merged
    with the steps done; that checkpoint is final (the same command finishes from it without more steps).
    ``listwise_forward`` (:data:`LISTWISE_FORWARDS`, see :func:`listwise_forward_of`): how listwise samples run."""
    import torch
    from tqdm import tqdm

    if temperature <= 0:
        raise FinetuneError(f"the listwise temperature must be above 0, not {temperature}")
    if max_seconds is not None and max_seconds <= 0:
        raise FinetuneError(f"the training time budget must be above 0 seconds, not {max_seconds}")
    if len(pairs) < settings.batch_size:
        raise FinetuneError(f"{len(pairs)} sample(s) is below one batch ({settings.batch_size}); raise max_samples or "
                            f"lower batch_size")
    work = os.path.join(out_dir, ".work")
    device = next(model.parameters()).device
    rank, world, _ = distributed_context(device)
    if settings.batch_size < world:
        raise FinetuneError(f"batch_size {settings.batch_size} is below the {world} processes: every rank needs at "
                            f"least one sample of each batch")
    shared_prefix = listwise_forward_of(listwise_forward, device, world) == "shared_prefix"
    peft_model = wrap_lora(model, settings)
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate)
    steps_per_epoch = math.ceil(len(pairs) / settings.batch_size)
    total = steps_per_epoch * settings.epochs
    state = {"step": 0, "losses": [], "seconds": 0.0}
    rng = random.Random(settings.seed)
    orders = [rng.sample(range(len(pairs)), len(pairs)) for _ in range(settings.epochs)]
    if os.path.isfile(os.path.join(work, "state.json")):
        state = _load_checkpoint(work, peft_model, optimizer)
        logger.warning(f"resuming {out_dir}: step {state['step']} of {total}")
        shared_prefix = shared_prefix or bool(state.get("fell_back_at"))  # an auto run that fell back stays so
    encoded = [("list", encode_candidates(tokenizer, p[0], [p[1], *p[2]], settings.max_length))
               if len(p) > 2 and p[2] else ("lm", encode_pair(tokenizer, p[0], p[1], settings.max_length))
               for p in pairs]
    peft_model.train()
    net = peft_model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(peft_model, device_ids=[device.index] if device.type == "cuda" else None)
    bar = tqdm(total=total, initial=state["step"], desc="LoRA fine-tuning", unit="step",
               disable=not progress or rank != 0)
    def restart(step):  # a step from its start: no gradient, dropout seeded by step (and rank) only
        torch.manual_seed(settings.seed + step * world + rank)
        optimizer.zero_grad()

    start, done_here = time.perf_counter(), 0
    while state["step"] < total and not state.get("stopped"):
        epoch, k = divmod(state["step"], steps_per_epoch)
        batch = [encoded[i] for i in orders[epoch][k * settings.batch_size:(k + 1) * settings.batch_size]]
        batch = batch[rank::world] or batch[:1]  # this rank's share of the global batch
        restart(state["step"])
        # forward and backward (DDP: gradients averaged over the ranks in the backward pass)
        where = f"on {device} in training step {state['step'] + 1} of {total}"
        may_fall_back = listwise_forward == "auto" and world == 1 and not shared_prefix
        loss = _step_loss(net, tokenizer, batch, device, scoring, temperature, shared_prefix, may_fall_back, where)
        if loss is None:  # auto's batched step does not fit: this step and the later ones sample by sample
            shared_prefix, state["fell_back_at"] = True, state["step"] + 1
            if device.type == "cuda":
                torch.cuda.empty_cache()
            restart(state["step"])  # a backward pass cut short may have left partial gradients
            loss = _step_loss(net, tokenizer, batch, device, scoring, temperature, True, False, where)
        optimizer.step()
        logged = loss
        if world > 1:
            import torch.distributed as dist

            dist.all_reduce(logged)
            logged = logged / world
        state["step"] += 1
        state["losses"].append(round(float(logged), 5))
        bar.update(1)
        bar.set_postfix(loss=f"{state['losses'][-1]:.3f}")
        done_here += 1
        if max_seconds and state["step"] < total and _past_budget(state["seconds"] + time.perf_counter() - start,
                                                                   max_seconds, world, device):
            state["stopped"] = f"time budget of {max_seconds:g} s"
            logger.warning(f"{out_dir}: the {state['stopped']} is spent after step {state['step']} of {total}; "
                           f"the model is finished with the steps done")
        if state["step"] % settings.save_every == 0 or state["step"] == total or state.get("stopped"):
            state["seconds"] += time.perf_counter() - start
            start = time.perf_counter()
            if rank == 0:
                _save_checkpoint(work, peft_model, optimizer, state)
            if world > 1:
                import torch.distributed as dist

                dist.barrier()
        if stop_after is not None and done_here >= stop_after:
            bar.close()
            return None, state
    bar.close()
    state["world_size"] = world
    merged = peft_model.merge_and_unload()
    merged.eval()
    for p in merged.parameters():
        p.requires_grad_(False)
    forward = listwise_forward_of(listwise_forward, device, world)
    if state.get("fell_back_at"):
        forward += f", shared_prefix from step {state['fell_back_at']} (out of memory)"
    return merged, dict(state, steps=state["step"], planned_steps=total, steps_per_epoch=steps_per_epoch,
                        stopped=state.get("stopped"), listwise_forward=forward)


def _step_loss(net, tokenizer, batch, device, scoring, temperature, shared_prefix, may_fall_back, where):
    """:func:`batch_loss` of a training step, back-propagated. Out of memory: ``None`` where the caller may run the
    step again sample by sample (``may_fall_back``, and the batch has listwise samples run batched), else a
    :class:`FinetuneError` naming the settings to change."""
    import torch

    try:
        return batch_loss(net, tokenizer, batch, device, scoring, temperature, shared_prefix=shared_prefix,
                          backward=True)
    except getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError) as e:
        batched = not shared_prefix and any(kind == "list" for kind, _ in batch)
        if not (batched and may_fall_back):
            raise FinetuneError(
                f"out of memory {where} "
                + ("(listwise_forward=batched: every candidate sequence of the batch in one pass); pass "
                   "--listwise_forward=shared_prefix (one sample's activations at a time) or a smaller --batch_size"
                   if batched else "; pass a smaller --batch_size or --max_length")
                + f"; the same command resumes from the last checkpoint ({e.__class__.__name__})") from e
        logger.warning(f"out of memory {where} ({e.__class__.__name__}), every candidate of the batch in one pass; "
                       f"listwise_forward=auto runs it and the later steps sample by sample (shared_prefix)")
    return None  # (outside the except block, whose traceback holds the step's activations until it ends)


LISTWISE_FORWARDS = ("auto", "shared_prefix", "batched")


def listwise_forward_of(choice, device, world=1):
    """How the listwise samples of a training batch run: ``shared_prefix`` -- each sample's prompt once, its
    candidates on the prompt's KV cache, back-propagated sample by sample (least compute and memory: the CPU's
    choice) -- or ``batched`` -- every candidate sequence of the batch in one forward and one backward pass (the same
    loss and gradients; far fewer kernel launches, which is what bounds a small model on a GPU; the only way under
    DistributedDataParallel). ``auto``: batched on a GPU or under several processes, shared_prefix otherwise; in one
    process, a batched step that runs out of memory is run again sample by sample, and so are the steps after it
    (:func:`finetune`; ``fell_back_at`` in its history). An explicit ``batched`` that runs out of memory is an
    error."""
    if choice not in LISTWISE_FORWARDS:
        raise FinetuneError(f"listwise_forward must be one of {', '.join(LISTWISE_FORWARDS)}, not '{choice}'")
    if choice == "auto":
        return "batched" if world > 1 or getattr(device, "type", str(device)).startswith("cuda") else "shared_prefix"
    if choice == "shared_prefix" and world > 1:
        raise FinetuneError("listwise_forward=shared_prefix runs several forward passes per step, which "
                            "DistributedDataParallel cannot synchronise; use batched (or auto) with several processes")
    return choice


def _past_budget(seconds, max_seconds, world, device):
    """Whether ``seconds`` reached ``max_seconds``; under several processes, whether any rank's did (every rank
    stops at the same step)."""
    over = seconds >= max_seconds
    if world > 1:
        import torch
        import torch.distributed as dist

        flag = torch.tensor([1.0 if over else 0.0], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        over = bool(flag.item())
    return over


def _save_checkpoint(work, peft_model, optimizer, state):
    import torch

    parent, name = os.path.split(work)
    with building_dir(parent, name) as tmp:
        peft_model.save_pretrained(os.path.join(tmp, "adapter"))
        torch.save({"optimizer": optimizer.state_dict()}, os.path.join(tmp, "optimizer.pt"))
        with open(os.path.join(tmp, "state.json"), "w") as f:
            json.dump(state, f)


def _load_checkpoint(work, peft_model, optimizer):
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    adapter = os.path.join(work, "adapter")
    files = [f for f in os.listdir(adapter) if f.startswith("adapter_model")]
    if not files:
        raise FinetuneError(f"{work}: the checkpoint has no adapter weights; delete {work} and start again")
    path = os.path.join(adapter, files[0])
    weights = load_file(path) if path.endswith(".safetensors") else torch.load(path, map_location="cpu")
    set_peft_model_state_dict(peft_model, weights)
    extra = torch.load(os.path.join(work, "optimizer.pt"), map_location="cpu", weights_only=False)
    optimizer.load_state_dict(extra["optimizer"])
    with open(os.path.join(work, "state.json")) as f:
        return json.load(f)


def save_model(model, tokenizer, out_dir, manifest):
    """``out_dir/model``: the merged weights (safetensors), the tokenizer, ``adapter/`` (the LoRA adapter alone, a
    few MB: what a model needs to travel between machines, see :func:`rebuild_weights`) and ``manifest.json``
    (written last)."""
    with building_dir(out_dir, "model") as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        adapter = os.path.join(out_dir, ".work", "adapter")
        if os.path.isdir(adapter):
            shutil.copytree(adapter, os.path.join(tmp, "adapter"))
        atomic_write_json(os.path.join(tmp, "manifest.json"), manifest, indent=2)
    shutil.rmtree(os.path.join(out_dir, ".work"), ignore_errors=True)
    return os.path.join(out_dir, "model")


def is_finished(model_dir):
    return os.path.isfile(os.path.join(model_dir, "manifest.json"))


def has_weights(model_dir):
    return any(f.endswith(".safetensors") or f.endswith(".bin") for f in os.listdir(model_dir))


def rebuild_weights(model_dir, device="cpu", trust_remote_code=False):
    """The merged weights of a finished model directory copied without them (``manifest.json`` and ``adapter/``
    travelled, the weights did not): the manifest's base model loaded in its training dtype, the adapter applied
    and merged (``peft``), the weights and config written into ``model_dir``. -> ``model_dir``."""
    from peft import PeftModel

    with open(os.path.join(model_dir, "manifest.json")) as f:
        manifest = json.load(f)
    adapter = os.path.join(model_dir, "adapter")
    if not os.path.isfile(os.path.join(adapter, "adapter_config.json")):
        raise FinetuneError(f"{model_dir} has no weights and no adapter/ to rebuild them from; copy the whole "
                            f"directory (or its adapter/ folder) from where it was trained")
    base = manifest["base_llm"]
    logger.info(f"{model_dir}: rebuilding the merged weights from adapter/ and the base model {base}")
    _, _, model = load_for_training(base, device, manifest.get("dtype") or "auto", trust_remote_code)
    merged = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    tmp = tempfile.mkdtemp(dir=model_dir, prefix=".weights-")
    try:
        merged.save_pretrained(tmp, safe_serialization=True)
        # the weight files last: a kill before them leaves a directory that is rebuilt again
        for name in sorted(os.listdir(tmp), key=lambda n: n.endswith((".safetensors", ".bin"))):
            os.replace(os.path.join(tmp, name), os.path.join(model_dir, name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return model_dir


def loss_plot(losses, path, title, ylabel="answer-token loss"):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from recbole_llm4msr.atomic import atomic_path

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(range(1, len(losses) + 1), losses, lw=0.8, alpha=0.5, label="step")
    if len(losses) >= 10:
        w = max(5, len(losses) // 20)
        smooth = np.convolve(losses, np.ones(w) / w, mode="valid")
        ax.plot(range(w, len(losses) + 1), smooth, lw=2, label=f"mean of {w}")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title("\n".join(textwrap.wrap(title, 72)), fontsize=9)  # a long title wraps instead of being cut
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return path
