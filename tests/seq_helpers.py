"""A tiny sequential dataset with a learnable pattern, written as RecBole atomic files (fast TSLRec tests)."""
import os

import numpy as np

GROUPS = ("red", "green", "blue", "amber")
TINY_SASREC = {"hidden_size": 8, "inner_size": 16, "n_layers": 1, "n_heads": 1, "MAX_ITEM_LIST_LENGTH": 5,
               "train_batch_size": 256, "eval_batch_size": 256}


def write_toy_sequences(data_path, name="toyseq", users=60, items_per_group=10, seed=0, with_text=True,
                        with_time=True):
    """``users`` users, each buying 6-11 items mostly (90%) from one of four groups of ``items_per_group`` items, in
    time order; item titles name their group ("red widget 3"). Returns the dataset folder."""
    rng = np.random.default_rng(seed)
    folder = os.path.join(data_path, name)
    os.makedirs(folder, exist_ok=True)
    n_items = items_per_group * len(GROUPS)
    rows = []
    for u in range(users):
        g = u % len(GROUPS)
        for t in range(int(rng.integers(6, 12))):
            if rng.random() < 0.9:
                item = g * items_per_group + int(rng.integers(items_per_group))
            else:
                item = int(rng.integers(n_items))
            rows.append((f"u{u}", f"i{item}", t))
    cols = ["user_id:token", "item_id:token"] + (["timestamp:float"] if with_time else [])
    with open(os.path.join(folder, f"{name}.inter"), "w") as f:
        f.write("\t".join(cols) + "\n")
        for u, i, t in rows:
            f.write("\t".join([u, i] + ([str(t)] if with_time else [])) + "\n")
    with open(os.path.join(folder, f"{name}.item"), "w") as f:
        f.write("item_id:token\ttitle:token_seq\n")
        for i in range(n_items):
            title = f"{GROUPS[i // items_per_group]} widget {i % items_per_group}" if with_text or i % 2 else ""
            f.write(f"i{i}\t{title}\n")
    load = ["user_id", "item_id"] + (["timestamp"] if with_time else [])
    with open(os.path.join(folder, f"{name}.yaml"), "w") as f:
        f.write(f"load_col:\n  inter: [{', '.join(load)}]\n  item: [item_id, title]\nitem_text_fields: [title]\n")
    return folder
