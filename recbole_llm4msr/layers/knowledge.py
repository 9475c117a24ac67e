"""KnowledgeTable: frozen knowledge vectors by id (users today, items tomorrow), loaded or memory-mapped."""
import numpy as np
import torch
from torch import nn


class KnowledgeTable(nn.Module):
    """``forward(ids) -> [B, d]`` float32 vectors of an aligned knowledge kind; zeros for ids without a vector.

    Built from :func:`recbole_llm4msr.knowledge.loader.align`'s result (any object with ``memory``, ``dim``,
    ``has``, ``rows``, ``table``, ``source`` and ``transform_rows``). ``load``: one float32 table in this process's memory (a
    non-persistent buffer: it moves with the model and is never written into checkpoints). ``mmap``: only the rows
    a batch needs are read from the store's memory-mapped file; the operating system's page cache is shared by
    every process on the machine, so N training workers hold the store once, not N times.
    """

    def __init__(self, aligned):
        super().__init__()
        self.memory, self.dim = aligned.memory, int(aligned.dim)
        self.register_buffer("has", torch.from_numpy(np.asarray(aligned.has, dtype=bool)), persistent=False)
        self._rows = np.asarray(aligned.rows)
        self._source = aligned.source if self.memory == "mmap" else None
        self._transform_rows = aligned.transform_rows  # mmap: e.g. a normalisation applied to looked-up rows
        if self.memory == "load":
            self.register_buffer("table", torch.from_numpy(aligned.table), persistent=False)

    def all_rows(self):
        """The whole ``[n, d]`` table in id order (loaded: the table itself, no copy)."""
        if self.memory == "load":
            return self.table
        return self(torch.arange(len(self.has), device=self.has.device))

    def forward(self, ids):
        if self.memory == "load":
            return self.table[ids]
        rows = self._rows[ids.detach().cpu().numpy()]
        out = np.zeros((len(rows), self.dim), dtype=np.float32)
        ok = rows >= 0
        if ok.any():
            unique, inverse = np.unique(rows[ok], return_inverse=True)  # sorted: the file is read in order
            out[ok] = self._transform_rows(np.asarray(self._source[unique], dtype=np.float32))[inverse]
        return torch.from_numpy(out).to(self.has.device)


class KnowledgeItemEmbedding(nn.Module):
    """An item embedding that adds a trained adapter of frozen knowledge vectors to a stock ID embedding:
    ``e(i) = id_embedding(i) + adapter(k_i)`` (``k_i``: the item's knowledge vector, zeros without one and for the
    padding id 0, which also keeps a zero ID row).

    It stands in for a sequential model's ``nn.Embedding``: ``forward(ids)`` looks rows up and ``weight`` is the whole
    ``[n_items, hidden]`` table (what SASRec / GRU4Rec score every item against in their loss and full ranking).
    The knowledge table is a non-persistent buffer (``KnowledgeTable``): checkpoints hold the ID embedding and the
    adapter, and the vectors come back from the store when the model is rebuilt.
    """

    def __init__(self, id_embedding, knowledge, adapter):
        super().__init__()
        self.id_embedding, self.knowledge, self.adapter = id_embedding, knowledge, adapter
        self.num_embeddings = id_embedding.num_embeddings
        self.embedding_dim = id_embedding.embedding_dim
        self.padding_idx = id_embedding.padding_idx

    @property
    def weight(self):
        knowledge = self.knowledge.all_rows()  # no per-call copy of the [n_items, d] table
        extra = self.adapter(knowledge) * self.knowledge.has.unsqueeze(-1).to(knowledge.dtype)
        return self.id_embedding.weight + extra

    def forward(self, ids):
        k = self.knowledge(ids)
        return self.id_embedding(ids) + self.adapter(k) * self.knowledge.has[ids].unsqueeze(-1).to(k.dtype)
