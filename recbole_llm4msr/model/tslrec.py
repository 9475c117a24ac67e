"""TSLRec (Liu et al., arXiv 2406.00333): LLM item vectors for RecBole's sequential recommenders, by composition.

``SASRec_TSLRec`` is RecBole's own ``SASRec`` -- nothing copied -- whose ``item_embedding`` is swapped, after the
stock constructor has run, for one that also reads each item's frozen LLM vector from an item store
(``knowledge_store``; ``prepare`` finds or builds it with the TSLRec pipeline, :mod:`recbole_llm4msr.tslrec`):

* ``tslrec_fusion: add`` (default): ``e(i) = ID(i) + W k_i`` with a trained linear adapter ``W`` (no bias), the LLM
  vectors frozen (:class:`~recbole_llm4msr.layers.knowledge.KnowledgeItemEmbedding`). The same table is the input
  embedding and the output layer SASRec / GRU4Rec score every item with.
* ``tslrec_fusion: init``: the LLM vectors, reduced to the embedding width by PCA (scikit-learn) and scaled to the
  stock initialisation's spread, initialise the ID embedding, which then trains freely (no extra parameters).

``knowledge_norm`` (default ``standardize``) normalises the item vectors over the store's items first;
``knowledge_control: shuffle`` gives every item another item's vector (a fixed seeded cycle) and ``zero`` none: the
controls with the same architecture and parameter count. :func:`tslrec_variant` makes the variant of any RecBole
sequential model whose item embedding is an ``nn.Embedding`` named ``item_embedding`` (SASRec, GRU4Rec, NARM,
STAMP, Caser, BERT4Rec's is one row larger and works too, ...).
"""
import logging

import numpy as np
import torch
from torch import nn

from recbole_llm4msr.knowledge.loader import CONTROLS, NORMS, align, control, open_store
from recbole_llm4msr.layers import KnowledgeTable
from recbole_llm4msr.layers.knowledge import KnowledgeItemEmbedding
from recbole_llm4msr.settings import SettingReaders, reader, setting_choice, setting_number

FUSIONS = ("add", "init")


class TSLRecMixin(SettingReaders):
    """Put before a RecBole sequential model class: builds the stock model, then swaps its item embedding."""

    fixed_enhancement = "tslrec"
    knowledge_kinds = ("item",)
    setting_readers = {
        "tslrec_fusion": reader(setting_choice, choices=FUSIONS, default="add"),
        "knowledge_norm": reader(setting_choice, choices=NORMS + ("auto",), default="standardize"),
        "knowledge_control": reader(setting_choice, choices=CONTROLS, default="none"),
        "knowledge_control_seed": reader(setting_number, kind=int, default=0),
        "tslrec_init_std": reader(setting_number, kind=float, low=0.0, default=0.02),
    }

    @classmethod
    def read_settings(cls, config):
        settings = super().read_settings(config)
        if settings["knowledge_norm"] == "auto":
            raise ValueError("knowledge_norm: auto chooses LLM4MSR's user vectors by the validation neighbour probe; "
                             "TSLRec's item vectors take none, standardize (its default) or whiten")
        return settings

    @classmethod
    def check_config(cls, config):
        """The variant's settings and the pipeline's (``tslrec_k``, ``tslrec_pooling``, ...:
        :meth:`~recbole_llm4msr.tslrec.settings.TSLRecSettings.from_config`), with no data: a bad value stops
        ``run_recbole`` / ``llm4msr-compare`` before the pipeline pre-trains anything."""
        from recbole_llm4msr.tslrec.settings import TSLRecSettings

        super().check_config(config)
        TSLRecSettings.from_config(config)

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        stock = getattr(self, "item_embedding", None)
        if not isinstance(stock, nn.Embedding):
            raise TypeError(f"{type(self).__name__}: TSLRec swaps the backbone's 'item_embedding' (an nn.Embedding), "
                            f"which {self.backbone_name} does not have")
        settings = self.read_settings(config)
        fusion = settings["tslrec_fusion"]
        if not config["knowledge_store"]:
            raise ValueError(f"{type(self).__name__} needs an item store (knowledge_store), and models never build "
                             f"one: call recbole_llm4msr.prepare.prepare(config) first (run_recbole does), or run "
                             f"llm4msr-tslrec and pass its store")
        store = open_store(config["knowledge_store"])
        if "item" not in store.kinds:
            raise ValueError(f"knowledge store {store.path} holds no item vectors ({store.kinds}); TSLRec needs an "
                             f"item store (llm4msr-tslrec)")
        tokens = dataset.field2id_token[dataset.iid_field]
        items = align(store, "item", tokens, padding=True, dataset=dataset.dataset_name,
                      norm=settings["knowledge_norm"])
        self.control = settings["knowledge_control"]
        items = control(items, self.control, settings["knowledge_control_seed"])
        self.fusion = fusion
        self.knowledge_info = {"path": store.path, "dim": store.dim, "coverage": items.coverage, "fusion": fusion,
                               "control": self.control, "model": store.header.get("model")}
        logging.getLogger().info(f"TSLRec item knowledge: {store.path} ({store.dim}-d, {items.coverage:.1%} of the "
                                 f"items have a vector; fusion {fusion}, control {self.control})")
        std = settings["tslrec_init_std"]
        if fusion == "add":
            adapter = nn.Linear(store.dim, stock.embedding_dim, bias=False)
            nn.init.normal_(adapter.weight, std=std / np.sqrt(store.dim))  # standardised input -> std ~ init_std
            self.item_embedding = KnowledgeItemEmbedding(stock, KnowledgeTable(items), adapter)
        else:
            with torch.no_grad():
                init = projected_init(items.table, items.has, stock.embedding_dim, std, seed=int(config["seed"] or 0))
                has = torch.from_numpy(items.has)
                stock.weight[has] = torch.from_numpy(init[items.has]).to(stock.weight.dtype)


def projected_init(table, has, width, std, seed=0):
    """``table`` rows with a vector, reduced to ``width`` columns by PCA and scaled to per-column spread ``std``."""
    from sklearn.decomposition import PCA

    x = np.asarray(table, dtype=np.float64)[has]
    n_components = min(width, x.shape[0], x.shape[1])
    z = PCA(n_components=n_components, random_state=seed).fit_transform(x)
    z = z / max(float(z.std()), 1e-12) * std
    out = np.zeros((len(table), width), dtype=np.float32)
    out[np.flatnonzero(has), :n_components] = z
    return out


def tslrec_variant(backbone):
    """``<Backbone>_TSLRec`` for a RecBole sequential model class."""
    name = f"{backbone.__name__}_TSLRec"
    doc = f"{backbone.__name__} with TSLRec's LLM item vectors (see recbole_llm4msr.model.tslrec)."
    return type(name, (TSLRecMixin, backbone), {"__doc__": doc, "backbone_name": backbone.__name__,
                                               "__module__": __name__})


def _stock(name):
    from recbole_llm4msr.compat import anomaly_mode_kept

    with anomaly_mode_kept():  # RecBole's SINE turns autograd's anomaly mode on at import
        from recbole.model import sequential_recommender
    return getattr(sequential_recommender, name)


SASRec_TSLRec = tslrec_variant(_stock("SASRec"))
GRU4Rec_TSLRec = tslrec_variant(_stock("GRU4Rec"))
TSLREC_MODELS = {cls.__name__: cls for cls in (SASRec_TSLRec, GRU4Rec_TSLRec)}
