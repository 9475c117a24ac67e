"""LLM4MSR / DN / EP on every backbone: meta-layer math, gradients, ablations, variants, errors, save/load."""
import json
import os

import numpy as np
import pytest
import torch
from recbole.data import data_preparation
from recbole.utils import init_seed

from recbole_llm4msr.config import MultiScenarioConfig
from recbole_llm4msr.knowledge.store import StoreError
from recbole_llm4msr.layers import EPNetGate, MetaLayers
from recbole_llm4msr.model.backbones import BACKBONES
from recbole_llm4msr.model.variants import VARIANTS
from recbole_llm4msr.quick_start import load_data_and_model, run_recbole
from recbole_llm4msr.registry import create_dataset, get_model
from tests.conftest import TINY, quick_config

BACKBONE_NAMES = [b.__name__ for b in BACKBONES]


def config_for(model, data_dir, store, **extra):
    return MultiScenarioConfig(model=model, dataset="ml-100k-msr", config_dict={
        "data_path": data_dir, "state": "WARNING", "knowledge_store": store, **TINY, **extra})


@pytest.fixture(scope="module")
def batch_and_data(data_dir, store):
    config = config_for("MMoE", data_dir, store)
    train, valid, test = data_preparation(config, create_dataset(config))
    return train, next(iter(train))[torch.arange(1024)]


def build(name, data_dir, store, batch_and_data, **extra):
    init_seed(2020, True)
    train, batch = batch_and_data
    return get_model(name)(config_for(name, data_dir, store, **extra), train._dataset), batch


# --------------------------------------------------------------------------------------------- layers
def per_sample(x, params):
    """The literal per-row layers: W, b = reshape(MLP(h)); h_i = relu(W_i h_(i-1) + b_i), no ReLU after the last."""
    out = []
    for i in range(len(x)):
        h = x[i]
        for k, (W, b) in enumerate(params):
            h = h @ W[i] + b[i]
            if k < len(params) - 1:
                h = torch.relu(h)
        out.append(h)
    return torch.stack(out)


def test_meta_layers_equal_an_explicit_per_sample_loop():
    torch.manual_seed(0)
    for rank in (5, 0):
        meta = MetaLayers(cond_dim=12, input_dim=7, sizes=[6, 3], rank=rank, last_activation=False)
        with torch.no_grad():
            meta.generator.weight.normal_(0, 0.3)  # a generator that is far from its initial state
        x, cond = torch.randn(9, 7), torch.randn(9, 12)
        params = meta.explicit_parameters(cond)
        assert torch.allclose(meta(x, cond), per_sample(x, params), atol=1e-5)
    assert params[0][0].shape == (9, 7, 6) and params[1][0].shape == (9, 6, 3)


def test_meta_layers_start_as_plain_layers_and_depend_on_the_condition():
    torch.manual_seed(0)
    meta = MetaLayers(cond_dim=10, input_dim=6, sizes=[6], rank=4)
    x = torch.randn(3, 6)
    a, b = meta(x, torch.randn(3, 10)), meta(x, torch.randn(3, 10))
    assert not torch.allclose(a, b) and torch.allclose(a, b, atol=0.2)


def test_epnet_gate_range_and_stop_gradient():
    gate = EPNetGate(scenario_dim=4, input_dim=6, hidden_size=8, gamma=2.0)
    x = torch.randn(5, 6, requires_grad=True)
    e = torch.randn(5, 4)
    out = gate(x, e)
    delta = out / x
    assert bool(((delta > 0) & (delta < 2)).all())
    # with the gate's own input detached, d out / d x is exactly delta (no path through the gate)
    out.sum().backward()
    assert torch.allclose(x.grad, delta.detach(), atol=1e-5)


# --------------------------------------------------------------------------------------------- variants
def test_every_variant_name_exists():
    for b in BACKBONE_NAMES:
        for suffix in ("LLM4MSR", "DN", "EP"):
            cls = get_model(f"{b}_{suffix}")
            assert cls.__bases__[0].__name__ == b  # composition: a subclass that only fixes the enhancement
            assert f"{b}_{suffix}" in VARIANTS


@pytest.mark.parametrize("enhancement", ["none", "llm4msr", "dn", "ep"])
@pytest.mark.parametrize("backbone", BACKBONE_NAMES)
def test_every_variant_trains_one_short_epoch(backbone, enhancement, data_dir, store, workdir):
    name = backbone if enhancement == "none" else f"{backbone}_{ {'llm4msr': 'LLM4MSR', 'dn': 'DN', 'ep': 'EP'}[enhancement]}"
    result = run_recbole(model=name, dataset="ml-100k-msr", saved=False,
                         config_dict=quick_config(data_dir, knowledge_store=store, **TINY))
    for scen in ("young", "middle", "senior"):
        assert 0.0 < result["test_result"][f"auc_{scen}"] <= 1.0
    assert result["results"]["config"]["enhancement"] == enhancement


def test_enhancement_flag_equals_variant_name(data_dir, store, batch_and_data):
    flag, batch = build("STAR", data_dir, store, batch_and_data, enhancement="dn")
    named, _ = build("STAR_DN", data_dir, store, batch_and_data)
    assert type(flag.enhancement) is type(named.enhancement)
    flag.load_state_dict(named.state_dict())
    flag.eval(), named.eval()
    assert torch.allclose(flag.predict(batch), named.predict(batch))
    with pytest.raises(ValueError, match="cannot take enhancement=ep"):
        config_for("STAR_DN", data_dir, store, enhancement="ep")


@pytest.mark.parametrize("name", ["MMoE_LLM4MSR", "STAR_LLM4MSR", "PLE_DN"])
def test_gradients_reach_generator_alpha_and_backbone(name, data_dir, store, batch_and_data):
    model, batch = build(name, data_dir, store, batch_and_data)
    model.train()
    model.calculate_loss(batch).backward()
    enh = model.enhancement
    for meta in (enh.bottom, enh.parallel):
        assert meta.generator.weight.grad.abs().sum() > 0 and meta.bottleneck.weight.grad.abs().sum() > 0
    assert enh.alpha.grad is not None and enh.alpha.grad.abs() > 0
    backbone_params = [p for n, p in model.named_parameters() if not n.startswith("enhancement.")
                       and "token_embedding" not in n]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in backbone_params)


def test_ablation_flags_remove_the_intended_branch(data_dir, store, batch_and_data):
    full, batch = build("MMoE_LLM4MSR", data_dir, store, batch_and_data)
    no_user, _ = build("MMoE_LLM4MSR", data_dir, store, batch_and_data, llm4msr_levels=["scenario"])
    no_scen, _ = build("MMoE_LLM4MSR", data_dir, store, batch_and_data, llm4msr_levels=["user"])
    assert full.enhancement.bottom is not None and full.enhancement.parallel is not None
    assert no_user.enhancement.bottom is None and no_user.enhancement.parallel is not None
    assert no_scen.enhancement.parallel is None and no_scen.enhancement.bottom is not None
    assert not hasattr(no_scen.enhancement, "alpha")
    no_user.eval()
    inputs = no_user.embed(batch)
    assert torch.equal(no_user.transform_input(inputs), inputs.x)  # no bottom: the backbone sees the embedding
    no_scen.eval()
    out = no_scen.backbone(no_scen.transform_input(no_scen.embed(batch)), no_scen.embed(batch))
    assert torch.allclose(no_scen.forward(batch), out.logit)  # no parallel branch: no fusion
    with pytest.raises(ValueError, match="llm4msr_levels"):
        build("MMoE_LLM4MSR", data_dir, store, batch_and_data, llm4msr_levels=["items"])


@pytest.mark.parametrize("setting, message", [
    ({"meta_rank": -1}, r"meta_rank must be in \[0, inf\], not -1"),
    ({"meta_bottom_hidden_sizes": [0]}, r"meta_bottom_hidden_sizes must be a list of layer widths"),
    ({"meta_parallel_hidden_sizes": "32"}, r"meta_parallel_hidden_sizes must be a list of layer widths"),
    ({"meta_dropout": 1.5}, r"meta_dropout must be in \[0.0, 1.0\]"),
    ({"fusion_alpha_init": 1.0}, r"fusion_alpha_init must be in \(0.0, 1.0\)"),
    ({"knowledge_control_seed": "x"}, r"knowledge_control_seed must be an integer"),
    ({"knowledge_out_of_fold": -2}, r"knowledge_out_of_fold must be in \[0, inf\]"),
    ({"meta_residual": "maybe"}, r"meta_residual must be True or False"),
])
def test_a_meta_setting_out_of_range_is_an_error_naming_it(setting, message, data_dir, store, batch_and_data):
    with pytest.raises(ValueError, match=message):
        build("STAR_LLM4MSR", data_dir, store, batch_and_data, **setting)


def test_user_knowledge_changes_the_prediction_and_fallback(data_dir, store, batch_and_data):
    model, batch = build("SharedBottom_LLM4MSR", data_dir, store, batch_and_data)
    model.eval()
    enh = model.enhancement
    with torch.no_grad():
        for meta in (enh.bottom,):
            meta.generator.weight.normal_(0, 0.5)
        with_user = model.predict(batch)
        enh.disable_user_knowledge = True
        without = model.predict(batch)
        enh.disable_user_knowledge = False
    has = enh.user_knowledge.has[batch["user_id"]]
    assert has.any() and (~has).any()
    assert not torch.allclose(with_user[has], without[has])
    assert torch.allclose(with_user[~has], without[~has])  # cold-start users already use the fallback (zeros)


def test_knowledge_dimension_mismatch_is_a_clear_error(data_dir, store, batch_and_data):
    with pytest.raises(StoreError, match="dimension mismatch.*expects 4096.*holds 32"):
        build("MMoE_LLM4MSR", data_dir, store, batch_and_data, knowledge_dim=4096)


def test_checkpoint_reloads_and_scores_the_same(data_dir, store, workdir):
    result = run_recbole(model="MMoE_LLM4MSR", dataset="ml-100k-msr",
                         config_dict=quick_config(data_dir, knowledge_store=store, **TINY))
    saved = [f for f in os.listdir("saved") if f.startswith("MMoE_LLM4MSR")]
    config, model, dataset, _, _, test_data = load_data_and_model(os.path.join("saved", saved[0]))
    assert type(model).__name__ == "MMoE_LLM4MSR"
    from recbole_llm4msr.trainer import MultiScenarioTrainer

    again = MultiScenarioTrainer(config, model).evaluate(test_data, load_best_model=False)
    assert again["auc"] == result["test_result"]["auc"] and again["auc_young"] == result["test_result"]["auc_young"]
    assert "enhancement" in result["results"] and 0 < result["results"]["enhancement"]["a"] < 1


@pytest.mark.parametrize("generator", ["full", "factored"])
def test_grouped_meta_layers_equal_row_aligned_ones(generator):
    """Per-scenario layers run on each scenario's gathered rows give the row-aligned result and its gradients, also
    with a scenario absent from the batch and with precomputed layers (evaluation)."""
    from recbole_llm4msr.layers import ScenarioGroups, meta_layers

    torch.manual_seed(1)
    meta = meta_layers(generator, 6, 5, [4, 3, 2], rank=3, last_activation=False)
    with torch.no_grad():
        for p in meta.parameters():
            p.add_(0.3 * torch.randn_like(p))
    for index in (torch.tensor([2, 0, 1, 1, 2, 0, 0, 2, 1, 1, 0]), torch.tensor([2, 0, 0, 2, 2, 0])):
        x, distinct = torch.randn(len(index), 5, requires_grad=True), torch.randn(3, 6)
        rowwise = meta(x, distinct[index])
        (g_row,) = torch.autograd.grad(rowwise.square().sum(), x)
        grouped = meta.forward_grouped(x, distinct, ScenarioGroups(index, 3))
        (g_grouped,) = torch.autograd.grad(grouped.square().sum(), x)
        assert torch.allclose(grouped, rowwise, atol=1e-5) and torch.allclose(g_grouped, g_row, atol=1e-4)
        with torch.no_grad():  # precomputed layers (evaluation) too
            assert torch.allclose(meta.forward_grouped(x, meta.generated(distinct), ScenarioGroups(index, 3)),
                                  rowwise, atol=1e-5)


def test_llm4msr_conditions_each_row_on_its_own_user(data_dir, store, batch_and_data):
    for fallback in ("zeros", "scenario"):
        model, batch = build("MMoE_LLM4MSR", data_dir, store, batch_and_data, knowledge_fallback=fallback)
        enh = model.enhancement
        inputs = model.embed(batch)
        rows = enh.user_condition_rows(inputs)
        uid = batch["user_id"]
        has = enh.user_knowledge.has[uid]
        assert torch.equal(rows[has], enh.user_knowledge(uid[has]))
        cold = enh.scenario_knowledge[inputs.scenario[~has]] if fallback == "scenario" else torch.zeros_like(rows[~has])
        assert torch.equal(rows[~has], cold)
        x_indexed = model.transform_input(inputs)
        assert torch.allclose(x_indexed, enh.bottom(inputs.x, rows), atol=1e-5)


def test_explain_cli(data_dir, store, workdir):
    import subprocess
    import sys

    run_recbole(model="SharedBottom_LLM4MSR", dataset="ml-100k-msr",
                config_dict=quick_config(data_dir, knowledge_store=store, **TINY))
    cli = os.path.join(os.path.dirname(sys.executable), "llm4msr-explain")
    from recbole_llm4msr.knowledge.store import KnowledgeStore

    user = KnowledgeStore(store).ids("user")[3]
    proc = subprocess.run([cli, "--dataset=ml-100k-msr", f"--user={user}"], capture_output=True, text=True,
                          cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "learned a" in out and "prompt:" in out and "items one user interacted with" in out
    assert "mean |p(with knowledge) - p(without)|" in out and "p_without" in out
    bad = subprocess.run([cli, "--dataset=ml-100k-msr", "--user=no-such-user"], capture_output=True, text=True,
                         cwd=workdir)
    assert bad.returncode == 1 and "no-such-user" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.parametrize("fallback", ["zeros", "scenario"])
def test_memory_mapped_knowledge_predicts_exactly_as_loaded(fallback, data_dir, store, batch_and_data):
    loaded, batch = build("MMoE_LLM4MSR", data_dir, store, batch_and_data, knowledge_memory="load",
                          knowledge_fallback=fallback)
    mapped, _ = build("MMoE_LLM4MSR", data_dir, store, batch_and_data, knowledge_memory="mmap",
                      knowledge_fallback=fallback)
    assert mapped.enhancement.user_knowledge.memory == "mmap"
    assert not hasattr(mapped.enhancement.user_knowledge, "table")  # no per-process copy of the user table
    assert hasattr(loaded.enhancement.user_knowledge, "table")
    loaded.eval()
    mapped.eval()
    with torch.no_grad():
        for m in (loaded, mapped):
            m.enhancement.bottom.generator.weight.normal_(0, 0.5, generator=torch.Generator().manual_seed(0))
        assert torch.equal(loaded.predict(batch), mapped.predict(batch))
    uid = batch["user_id"].long()
    assert torch.equal(loaded.enhancement.user_knowledge(uid), mapped.enhancement.user_knowledge(uid))
    with pytest.raises(ValueError, match="knowledge_memory must be"):
        build("MMoE_LLM4MSR", data_dir, store, batch_and_data, knowledge_memory="ssd")


@pytest.mark.parametrize("generator", ["full", "factored"])
def test_evaluation_keeps_every_users_code_and_every_scenarios_layers_and_never_a_stale_one(generator, data_dir, store,
                                                                                            batch_and_data):
    model, batch = build("STAR_LLM4MSR", data_dir, store, batch_and_data, meta_generator=generator)
    enh = model.enhancement
    with torch.no_grad():  # conditional parts far from their near-zero start, so that the knowledge matters
        for n, p in enumerate(list(enh.bottom.parameters()) + list(enh.parallel.parameters())):
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(n)) * 0.3)
    model.eval()

    def uncached():  # with gradients on, codes and layers are computed per batch (the training path)
        with torch.enable_grad():
            return model.predict(batch).detach()

    with torch.no_grad():
        cached = model.predict(batch)
    codes, layers = enh._cache["user_codes"][1], enh._cache["scenario_layers"][1]
    assert codes.z.shape == (len(enh.user_knowledge.has), enh.bottom.rank)
    assert len(layers.params) == 2 and layers.params[0][0].shape[0] == len(enh.scenario_knowledge)
    with torch.no_grad():  # computed once, then reused
        assert torch.equal(model.predict(batch), cached)
    assert enh._cache["user_codes"][1] is codes and enh._cache["scenario_layers"][1] is layers
    assert torch.allclose(cached, uncached(), atol=1e-6)
    for changed_part in (enh.bottom.bottleneck.weight, enh.parallel.bottleneck.weight):
        with torch.no_grad():
            before = model.predict(batch)
            changed_part.add_(0.3)  # an in-place change, as an optimizer step or load_state_dict makes
            after = model.predict(batch)
        assert not torch.allclose(after, before, atol=1e-4) and torch.allclose(after, uncached(), atol=1e-6)
    model.train()
    assert enh._cache == {}


def test_knowledge_controls_keep_the_architecture_and_remove_the_information(data_dir, store, batch_and_data):
    real, batch = build("MMoE_LLM4MSR", data_dir, store, batch_and_data)
    shuffled, _ = build("MMoE_LLM4MSR", data_dir, store, batch_and_data, knowledge_control="shuffle")
    again, _ = build("MMoE_LLM4MSR", data_dir, store, batch_and_data, knowledge_control="shuffle")
    zero, _ = build("MMoE_LLM4MSR", data_dir, store, batch_and_data, knowledge_control="zero")
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(real) == count(shuffled) == count(zero)
    r, s = real.enhancement.user_knowledge, shuffled.enhancement.user_knowledge
    assert torch.equal(r.has, s.has)  # the same users have a vector ...
    have = torch.nonzero(r.has).squeeze(1)
    rows_r, rows_s = r.table[have], s.table[have]
    assert not (rows_r == rows_s).all(dim=1).any()  # ... but nobody keeps their own
    assert sorted(map(tuple, rows_r.tolist())) == sorted(map(tuple, rows_s.tolist()))  # the same set of vectors
    assert torch.equal(s.table, again.enhancement.user_knowledge.table)  # a fixed seeded permutation
    sr, ss = real.enhancement.scenario_knowledge, shuffled.enhancement.scenario_knowledge
    assert not (sr == ss).all(dim=1).any() and torch.equal(sr.sum(0), ss.sum(0))
    z = zero.enhancement.user_knowledge
    assert not z.has.any() and z.table.abs().sum() == 0
    assert torch.equal(zero.enhancement.scenario_knowledge, sr)
    with pytest.raises(ValueError, match="knowledge_control must be one of"):
        build("MMoE_LLM4MSR", data_dir, store, batch_and_data, knowledge_control="random")


def test_out_of_fold_knowledge_trains_each_row_on_its_users_vector_without_its_fold(data_dir, store, batch_and_data,
                                                                                      tmp_path):
    """knowledge_out_of_fold: K: a training row reads its user's vector rebuilt from the store's item vectors of the
    user's liked training items outside the row's fold (checked by hand); evaluation reads the store's vector; a
    fold table equal to the store's gives the plain model's predictions; the shuffled control moves a user's fold
    vectors with their vector; a store of another recipe, one fold and memory-mapped vectors are refused."""
    from recbole_llm4msr.knowledge.extract import build_knowledge
    from recbole_llm4msr.knowledge.loader import fold_of
    from recbole_llm4msr.knowledge.store import KnowledgeStore
    from tests.knowledge_helpers import make_spec, tiny_llm

    spec = make_spec(data_dir, tmp_path / "k", limit_users=200, max_prompt_tokens=4000, user_vector="items")
    items_store = build_knowledge(spec, llm_model=tiny_llm(), show_progress=False)["cache"]
    k = 3
    model, batch = build("MMoE_LLM4MSR", data_dir, items_store, batch_and_data, knowledge_out_of_fold=k,
                         knowledge_norm="none", dropout_prob=0.0)
    enh = model.enhancement
    table = enh.user_knowledge.table
    assert tuple(enh.fold_knowledge.shape) == (k, *table.shape)
    train = batch_and_data[0]._dataset
    feat = train.inter_feat
    has = enh.user_knowledge.has.numpy()
    liked = feat["label"].numpy() > 0.5
    uid, iid = feat[train.uid_field].numpy()[liked], feat[train.iid_field].numpy()[liked]
    fold = fold_of(uid, iid, k)
    source = KnowledgeStore(items_store)
    tokens = train.field2id_token[train.iid_field]
    assert (enh.fold_knowledge[:, ~has] == 0).all()  # a user without a vector stays cold start in training too
    checked = 0
    for u in np.flatnonzero(has)[:20]:
        for f in range(k):
            outside = (uid == u) & (fold != f)
            if outside.any():
                by_hand = np.mean([np.asarray(source.vector("item", tokens[i]), np.float32) for i in iid[outside]], 0)
                np.testing.assert_allclose(enh.fold_knowledge[f, u].numpy(), by_hand, atol=1e-5)
                checked += 1
        everything = np.mean([np.asarray(source.vector("item", tokens[i]), np.float32) for i in iid[uid == u]], 0)
        np.testing.assert_allclose(table[u].numpy(), everything, atol=2e-3)  # the store's vector: all of them
    assert checked >= 40
    # training rows read the fold vectors, evaluation the store's
    inputs = model.embed(batch)
    u, i = batch["user_id"].long(), batch["item_id"].long()
    model.train()
    assert torch.equal(enh.user_condition_rows(inputs), enh.fold_knowledge[fold_of(u, i, k), u])
    assert enh.bottom_condition(inputs)[1] is None  # row-aligned: a row's vector is more than its user's
    model.eval()
    assert torch.equal(enh.user_condition_rows(inputs), enh.user_knowledge(u))
    # the shifted control: the next fold's vector, so the row's own item stays in it
    shifted, _ = build("MMoE_LLM4MSR", data_dir, items_store, batch_and_data, knowledge_out_of_fold=k,
                       knowledge_norm="none", knowledge_out_of_fold_mode="shifted")
    shifted.train()
    assert torch.equal(shifted.enhancement.user_condition_rows(shifted.embed(batch)),
                       enh.fold_knowledge[(fold_of(u, i, k) + 1) % k, u])
    with pytest.raises(ValueError, match="knowledge_out_of_fold_mode must be one of out, shifted"):
        build("MMoE_LLM4MSR", data_dir, items_store, batch_and_data, knowledge_out_of_fold=k, knowledge_norm="none",
              knowledge_out_of_fold_mode="inside")
    with torch.no_grad():  # in training mode (batch statistics and all), against the same model reading the store
        model.train()
        out_of_fold = model.predict(batch)
        enh.out_of_fold = 0
        plain = model.predict(batch)
        enh.out_of_fold = k
        enh.fold_knowledge = table.unsqueeze(0).repeat(k, 1, 1)
        same = model.predict(batch)
    assert not torch.allclose(out_of_fold, plain, atol=1e-6) and torch.allclose(same, plain, atol=1e-6)
    # the shuffled control: each user's fold vectors are those of the user whose vector they get
    real, _ = build("MMoE_LLM4MSR", data_dir, items_store, batch_and_data, knowledge_out_of_fold=k, knowledge_norm="none")
    shuffled, _ = build("MMoE_LLM4MSR", data_dir, items_store, batch_and_data, knowledge_out_of_fold=k,
                        knowledge_norm="none", knowledge_control="shuffle")
    r, s = real.enhancement, shuffled.enhancement
    for u in np.flatnonzero(has)[:10]:
        v = int(torch.nonzero((r.user_knowledge.table == s.user_knowledge.table[u]).all(1))[0])
        assert v != u and torch.equal(s.fold_knowledge[:, u], r.fold_knowledge[:, v])
    for bad, match in (({"knowledge_out_of_fold": 1}, "at least 2"),
                       ({"knowledge_out_of_fold": 3, "knowledge_memory": "mmap"}, "knowledge_memory: load")):
        with pytest.raises(ValueError, match=match):
            build("MMoE_LLM4MSR", data_dir, items_store, batch_and_data, knowledge_norm="none", **bad)
    with pytest.raises(ValueError, match="rebuilds user vectors as the mean of their liked items"):
        build("MMoE_LLM4MSR", data_dir, store, batch_and_data, knowledge_out_of_fold=3, knowledge_norm="none")


@pytest.mark.parametrize("norm", ["standardize", "whiten"])
def test_knowledge_normalisation_at_load_time(norm, data_dir, store, batch_and_data):
    model, _ = build("MMoE_LLM4MSR", data_dir, store, batch_and_data, knowledge_norm=norm, knowledge_memory="load")
    table = model.enhancement.user_knowledge
    x = table.table[table.has].double()
    assert torch.allclose(x.mean(0), torch.zeros(x.shape[1], dtype=torch.float64), atol=1e-3)
    if norm == "standardize":
        assert torch.allclose(x.std(0, unbiased=False), torch.ones(x.shape[1], dtype=torch.float64), atol=1e-2)
    assert table.table[~table.has].abs().sum() == 0  # cold users stay zero
    mapped, _ = build("MMoE_LLM4MSR", data_dir, store, batch_and_data, knowledge_norm=norm, knowledge_memory="mmap")
    uid = torch.arange(len(table.has))
    assert torch.allclose(mapped.enhancement.user_knowledge(uid), table(uid), atol=1e-5)
    with pytest.raises(ValueError, match="knowledge_norm must be one of"):
        build("MMoE_LLM4MSR", data_dir, store, batch_and_data, knowledge_norm="l2")


def test_whitening_gives_unit_covariance(tmp_path):
    from recbole_llm4msr.knowledge.loader import apply_transform, normalization

    class Store:
        path = str(tmp_path)

        def vectors(self, kind):
            rng = np.random.default_rng(0)
            return rng.standard_normal((4000, 6)) @ rng.standard_normal((6, 6)) + 3.0  # correlated, shifted

    x = np.asarray(Store().vectors("user"))
    white = apply_transform(x, normalization(Store(), "user", "whiten"))
    np.testing.assert_allclose(np.cov(white, rowvar=False), np.eye(6), atol=1e-3)
    assert os.path.isfile(tmp_path / "norm-user-whiten.npz")  # stored with the store


@pytest.mark.parametrize("name", ["MMoE_LLM4MSR", "STAR_DN"])
def test_residual_fusion_starts_as_the_identity_and_learns(name, data_dir, store, batch_and_data):
    model, batch = build(name, data_dir, store, batch_and_data, meta_residual=True)
    enh = model.enhancement
    inputs = model.embed(batch)
    assert enh.residual and torch.equal(enh.transform_input(inputs), inputs.x)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(3):
        opt.zero_grad()
        model.calculate_loss(batch).backward()
        opt.step()
    inputs = model.embed(batch)
    assert not torch.allclose(enh.transform_input(inputs), inputs.x)
    paper, _ = build(name, data_dir, store, batch_and_data)
    assert not paper.enhancement.residual and paper.enhancement.bottom.last_activation


def test_factored_meta_layers_equal_their_explicit_parameters_and_cost_less():
    from recbole_llm4msr.layers import FactoredMetaLayers, ScenarioGroups, meta_layers

    torch.manual_seed(3)
    meta = meta_layers("factored", 12, 7, [6, 3, 10], rank=4, last_activation=False)  # narrowing and widening
    assert isinstance(meta, FactoredMetaLayers)
    with torch.no_grad():  # far from the initial state (V and B start near zero)
        for p in list(meta.V) + list(meta.B):
            p.normal_(0, 0.5)
    x, cond = torch.randn(9, 7), torch.randn(9, 12)
    params = meta.explicit_parameters(cond)
    assert torch.allclose(meta(x, cond), per_sample(x, params), atol=1e-5)
    # the generated layers depend on the condition, and the grouped (per-scenario) path agrees with the row path
    assert not torch.allclose(params[0][0][0], params[0][0][1])
    distinct, index = torch.randn(3, 12), torch.tensor([2, 0, 1, 1, 2, 0, 0, 2, 1])
    assert torch.allclose(meta.forward_grouped(x, distinct, ScenarioGroups(index, 3)), meta(x, distinct[index]),
                          atol=1e-5)
    # fewer parameters than the full generator at the same widths and rank
    full = meta_layers("full", 12, 7, [6, 3, 10], rank=4, last_activation=False)
    assert sum(p.numel() for p in meta.parameters()) < sum(p.numel() for p in full.parameters())
    # residual form: the last layer starts at zero output
    meta.zero_last_layer()
    assert torch.count_nonzero(meta(x, cond)) == 0
    with pytest.raises(ValueError, match="meta_generator 'factored' needs meta_rank > 0"):
        meta_layers("factored", 12, 7, [6], rank=0)
    with pytest.raises(ValueError, match="meta_generator must be one of"):
        meta_layers("diagonal", 12, 7, [6], rank=4)


@pytest.mark.parametrize("name", ["STAR_LLM4MSR", "MMoE_DN"])
def test_meta_generator_setting_builds_factored_layers_that_train(name, data_dir, store, batch_and_data):
    from recbole_llm4msr.layers import FactoredMetaLayers

    model, batch = build(name, data_dir, store, batch_and_data, meta_generator="factored")
    assert isinstance(model.enhancement.bottom, FactoredMetaLayers)
    assert model.enhancement.summary()["generator"] == "FactoredMetaLayers"
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    before = model.enhancement.bottom.V[0].detach().clone()
    for _ in range(3):
        opt.zero_grad()
        loss = model.calculate_loss(batch)
        loss.backward()
        opt.step()
    assert torch.isfinite(loss) and not torch.equal(before, model.enhancement.bottom.V[0])


def test_knowledge_norm_auto_the_default_is_chosen_by_the_probe(data_dir, store, batch_and_data, workdir):
    from recbole_llm4msr.knowledge.loader import NORMS
    from recbole_llm4msr.prepare import prepare

    config = config_for("MMoE_LLM4MSR", data_dir, store, knowledge_norm="auto")
    prepare(config)
    kept = json.load(open(os.path.join(store, "norm-choice.json")))
    assert config["knowledge_norm"] == kept["chosen"] and kept["chosen"] in NORMS and set(kept["auc"]) == set(NORMS)
    best = max(kept["auc"].values())
    assert kept["auc"][kept["chosen"]] == best
    init_seed(2020, True)
    model = get_model("MMoE_LLM4MSR")(config, batch_and_data[0]._dataset)
    named, _ = build("MMoE_LLM4MSR", data_dir, store, batch_and_data, knowledge_norm=kept["chosen"])
    torch.testing.assert_close(model.enhancement.user_knowledge.table, named.enhancement.user_knowledge.table)
    # auto is the default; a model built without prepare() (RecBole's own flow, a finished store named) makes the
    # same choice and writes it into its config
    assert config_for("MMoE_LLM4MSR", data_dir, store)["knowledge_norm"] == "auto"
    unprepared = config_for("MMoE_LLM4MSR", data_dir, store)
    init_seed(2020, True)
    built = get_model("MMoE_LLM4MSR")(unprepared, batch_and_data[0]._dataset)
    assert unprepared["knowledge_norm"] == kept["chosen"]
    torch.testing.assert_close(built.enhancement.user_knowledge.table, named.enhancement.user_knowledge.table)
    # the library's normalisation never takes 'auto' itself: the choice is made above it
    from recbole_llm4msr.knowledge.loader import normalization
    from recbole_llm4msr.knowledge.store import KnowledgeStore

    with pytest.raises(ValueError, match="knowledge_norm: auto is resolved before the vectors are normalised"):
        normalization(KnowledgeStore(store), "user", "auto")
    # several processes: the parent resolves it once and hands the ranks the concrete setting
    from recbole_llm4msr.quick_start import prepare_distributed

    settings = prepare_distributed("MMoE_LLM4MSR", "ml-100k-msr", None, {"data_path": data_dir, "state": "WARNING",
                                   "knowledge_store": store, **TINY, "knowledge_norm": "auto"})
    assert settings == {"knowledge_store": store, "knowledge_norm": kept["chosen"]}
