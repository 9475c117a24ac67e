"""What an enhancement learned, measured on an evaluation split after training (written into the results file).

``llm4msr-explain`` (:mod:`recbole_llm4msr.explain`) shows the same for one user.
"""
import torch

from recbole_llm4msr.distributed import all_reduce_sum, real_row_mask


def interpret(model, eval_data):
    """A JSON-able summary of the model's enhancement (None without one). For LLM4MSR with its user level, adds per
    scenario the mean |p(with the user's knowledge) - p(without)| on ``eval_data``: how much the user-level branch
    moves predictions. Under DDP every rank measures its shard (sampler padding excluded) and the sums are reduced."""
    enh = getattr(model, "enhancement", None)
    if enh is None:
        return None
    out = enh.summary()
    if not hasattr(enh, "user_branch_effect") or getattr(enh, "bottom", None) is None:
        return out
    was_training = model.training
    model.eval()
    names = model.scenario_names
    total = torch.zeros(len(names), dtype=torch.float64)
    count = torch.zeros(len(names), dtype=torch.float64)
    real = real_row_mask(eval_data)  # DDP: this rank's shard, without the sampler's padding rows
    seen = 0
    device = next(model.parameters()).device
    for batch in eval_data:
        interaction = batch[0].to(device)
        p1, p0 = enh.user_branch_effect(model, interaction)
        scen = (interaction[model.scenario_field].long() - 1).cpu()
        weight = torch.ones_like(scen, dtype=torch.float64)
        if real is not None:
            weight = real[seen:seen + len(scen)].double()
        seen += len(scen)
        total.index_add_(0, scen, (p1 - p0).abs().double().cpu() * weight)
        count.index_add_(0, scen, weight)
    all_reduce_sum(total)
    all_reduce_sum(count)
    model.train(was_training)
    out["user_branch_effect"] = {
        name: round(float(total[k] / count[k]), 6) for k, name in enumerate(names) if count[k] > 0
    }
    return out
