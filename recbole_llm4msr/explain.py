"""``llm4msr-explain``: what LLM4MSR knows about one user and what that knowledge does to their predictions
(the measurement over a whole split, written into every results file, is :mod:`recbole_llm4msr.interpret`).

    llm4msr-explain --dataset=ml-100k-msr --user=196 [--model_file=saved/MMoE_LLM4MSR-....pth] [--split=test]

Prints the user's prompt, the text the LLM wrote (generate mode), the learned fusion weight ``a``, and for the
user's rows of the split the prediction with the user's knowledge, without it (the cold-start fallback) and the
difference. Without ``--model_file`` the newest LLM4MSR checkpoint for the dataset in ``saved/`` is used.
"""
import argparse
import glob
import os
import sys

import torch


def newest_checkpoint(dataset, checkpoint_dir="saved"):
    from recbole_llm4msr.compat import torch_load

    candidates = sorted(glob.glob(os.path.join(checkpoint_dir, "*_LLM4MSR-*.pth")) +
                        glob.glob(os.path.join(checkpoint_dir, "*.pth")), key=os.path.getmtime, reverse=True)
    for path in candidates:
        config = torch_load(path, map_location="cpu")["config"]
        if config["dataset"] == dataset and str(config["enhancement"]).lower() == "llm4msr":
            return path
    raise FileNotFoundError(f"no LLM4MSR checkpoint for dataset '{dataset}' in {checkpoint_dir}/; train one "
                            f"(run_recbole --model=MMoE_LLM4MSR --dataset={dataset}) or pass --model_file")


def explain(model_file, user, split="test", out=sys.stdout):
    from recbole_llm4msr.knowledge.store import KnowledgeStore
    from recbole_llm4msr.quick_start import load_data_and_model

    config, model, dataset, train, valid, test = load_data_and_model(model_file)
    enh = model.enhancement
    if enh is None or enh.name != "llm4msr":
        raise ValueError(f"{model_file} is a {config['model']} model without the llm4msr enhancement")
    store = KnowledgeStore(enh.knowledge_info["path"])
    texts = store.texts()
    user = str(user)
    if user not in dataset.field2token_id[dataset.uid_field]:
        raise ValueError(f"user '{user}' is not in dataset '{config['dataset']}'")
    uid = int(dataset.token2id(dataset.uid_field, user))
    record = texts.get(("user", user))
    w = lambda s="": print(s, file=out)
    w(f"model {config['model']} ({model_file}); knowledge {store.path} ({store.header['model']}, "
      f"{store.header['mode']} mode, {store.dim}-d)")
    w(f"learned a (weight of the scenario-level branch): {float(enh.a):.4f}" if enh.parallel is not None
      else "scenario-level branch: ablated")
    w("")
    if record is None:
        w(f"user {user} has no knowledge vector (cold start): fallback '{enh.fallback}' is used")
    else:
        w("prompt:")
        w(record["prompt"])
        w("")
        w("LLM text: " + (record["text"] if record.get("text") else "(prompt mode: the LLM was not asked to write)"))
    data = {"train": train, "valid": valid, "test": test}[split]
    inter = data._dataset.inter_feat
    rows = torch.nonzero(inter[dataset.uid_field] == uid).squeeze(1)
    w("")
    if rows.numel() == 0:
        w(f"user {user} has no rows in the {split} split")
        return
    batch = data._dataset.join(inter[rows])  # add the .user / .item features, as the dataloaders do
    model.eval()
    p_with, p_without = enh.user_branch_effect(model, batch) if enh.bottom is not None else (model.predict(batch),) * 2
    w(f"{split} rows of user {user}: mean |p(with knowledge) - p(without)| = "
      f"{float((p_with - p_without).abs().mean()):.4f}")
    w(f"  {'item':<28} {'scenario':<10} {'label':>5} {'p_with':>7} {'p_without':>9}")
    items = dataset.id2token(dataset.iid_field, batch[dataset.iid_field])
    scen = dataset.id2token(model.scenario_field, batch[model.scenario_field])
    for i in range(len(rows)):
        w(f"  {str(items[i])[:28]:<28} {str(scen[i]):<10} {int(batch[model.LABEL][i]):>5} "
          f"{float(p_with[i]):>7.4f} {float(p_without[i]):>9.4f}")


def main(argv=None):
    p = argparse.ArgumentParser(prog="llm4msr-explain", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True)
    p.add_argument("--user", required=True, help="the user token as in the dataset files")
    p.add_argument("--model_file", default=None, help="an LLM4MSR checkpoint (default: newest in saved/)")
    p.add_argument("--checkpoint_dir", default="saved")
    p.add_argument("--split", default="test", choices=["train", "valid", "test"])
    args = p.parse_args(argv)
    try:
        model_file = args.model_file or newest_checkpoint(args.dataset, args.checkpoint_dir)
        explain(model_file, args.user, args.split)
    except (ValueError, FileNotFoundError) as e:
        print(f"llm4msr-explain: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
