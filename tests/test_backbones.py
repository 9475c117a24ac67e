"""The six backbones: shapes, learning, per-scenario gradients, batch independence, end-to-end AUC."""
import pytest
import torch
from recbole.data import data_preparation
from recbole.utils import init_seed

from recbole_llm4msr.config import MultiScenarioConfig
from recbole_llm4msr.layers import ScenarioGroups
from recbole_llm4msr.model.backbones import BACKBONES, BackboneOutput
from recbole_llm4msr.quick_start import run_recbole
from recbole_llm4msr.registry import create_dataset, get_model
from tests.conftest import quick_config

NAMES = [b.__name__ for b in BACKBONES]
TINY = {"embedding_size": 8, "expert_mlp_sizes": [32, 16], "bottom_mlp_sizes": [32, 16], "tower_mlp_sizes": [8],
        "star_mlp_sizes": [32, 16], "aux_mlp_sizes": [8], "expert_num": 2, "dropout_prob": 0.0}
# per-scenario parameter tensors stacked along a leading scenario dimension (STAR)
STACKED = ("weight_p", "bias_p", "gamma_p", "beta_p")


@pytest.fixture(scope="module")
def prepared(data_dir):
    out = {}
    for name in NAMES:
        config = MultiScenarioConfig(model=name, dataset="ml-100k-msr",
                                     config_dict={"data_path": data_dir, "state": "WARNING", **TINY})
        if not out:
            dataset = create_dataset(config)
            train, valid, test = data_preparation(config, dataset)
            batch = next(iter(train))
            out["_data"] = (train, batch)
        out[name] = config
    return out


def build(prepared, name, **overrides):
    config = prepared[name]
    for k, v in overrides.items():
        config[k] = v
    init_seed(2020, True)
    train, batch = prepared["_data"]
    return get_model(name)(config, train._dataset), batch


def test_every_backbone_is_registered():
    for name in NAMES:
        assert get_model(name).__name__ == name


def test_scenario_groups_restore_batch_order():
    scenario = torch.tensor([2, 0, 1, 2, 0, 0, 2])
    groups = ScenarioGroups(scenario, 4)
    x = torch.arange(7.0).unsqueeze(1)
    out = groups.apply(lambda k, xk: torch.cat([xk, torch.full_like(xk, k)], dim=1), x)
    assert torch.equal(out[:, 0], x[:, 0]) and torch.equal(out[:, 1], scenario.float())
    assert groups.present() == [0, 1, 2]


@pytest.mark.parametrize("name", NAMES)
def test_forward_shapes_and_interface(prepared, name):
    model, batch = build(prepared, name)
    model.eval()
    inputs = model.embed(batch)
    B = len(batch)
    assert inputs.x.shape == (B, model.input_dim) and inputs.scenario.min() >= 0
    assert inputs.scenario.max() < model.num_scenarios == 3
    out = model.backbone(inputs.x, inputs)
    assert isinstance(out, BackboneOutput) and out.logit.shape == (B,) and out.representation.shape[0] == B
    prob = model.predict(batch)
    assert prob.shape == (B,) and bool(((prob > 0) & (prob < 1)).all())
    # the backbone reads its argument (an already transformed input), not the raw embedding
    shifted = model.backbone(inputs.x + 1.0, inputs)
    assert not torch.allclose(shifted.logit, out.logit)


@pytest.mark.parametrize("name", NAMES)
def test_loss_decreases_on_a_real_batch(prepared, name):
    model, batch = build(prepared, name)
    batch = batch[torch.arange(512)]
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = model.calculate_loss(batch)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0], losses


@pytest.mark.parametrize("name", NAMES)
def test_every_scenario_trains(prepared, name):
    model, batch = build(prepared, name)
    model.train()
    model.calculate_loss(batch).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name}: no gradient reaches {pname}"
        if pname.split(".")[-1] in STACKED:
            for k in range(model.num_scenarios):
                assert p.grad[k].abs().sum() > 0, f"{name}: scenario {k} of {pname} gets no gradient"


@pytest.mark.parametrize("name", NAMES)
def test_evaluation_output_does_not_depend_on_the_batch(prepared, name):
    model, batch = build(prepared, name)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(3):  # move running statistics away from their initial values
        opt.zero_grad()
        model.calculate_loss(batch).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        full = model.predict(batch)
        one_scenario = torch.nonzero(batch["scenario"] == batch["scenario"][0]).squeeze(1)[:7]
        for idx in (torch.arange(5), one_scenario, torch.tensor([17])):
            assert torch.allclose(model.predict(batch[idx]), full[idx], atol=1e-6)


def test_star_keeps_running_statistics_per_scenario(prepared):
    model, batch = build(prepared, "STAR")
    model.train()
    model.predict(batch)
    pn = model.partitioned_norm
    assert not torch.allclose(pn.running_mean[0], pn.running_mean[1])
    assert not torch.allclose(pn.running_mean[1], pn.running_mean[2])
    # the auxiliary logit is unconstrained (can be negative): no activation after its last unit
    assert isinstance(model.aux.out, torch.nn.Linear)


def test_ple_with_two_levels(prepared):
    model, batch = build(prepared, "PLE", ple_levels=2)
    assert model.levels[0].shared_gate is not None and model.levels[1].shared_gate is None
    model.train()
    model.calculate_loss(batch).backward()
    assert model.levels[0].shared_gate.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", NAMES)
def test_one_epoch_end_to_end(name, data_dir, workdir):
    result = run_recbole(model=name, dataset="ml-100k-msr", config_dict=quick_config(data_dir), saved=False)
    for scen in ("young", "middle", "senior"):
        assert result["test_result"][f"auc_{scen}"] > 0.55, result["test_result"]


def test_partitioned_norm_skips_a_scenario_with_one_row():
    """A scenario with a single row in a training batch has no variance: its running variance must not move
    towards 0 (it did), and the row is normalised with the running statistics."""
    from recbole_llm4msr.layers import PartitionedNorm

    torch.manual_seed(0)
    norm = PartitionedNorm(4, 2).train()
    scenario = torch.tensor([0, 0, 0, 1])  # scenario 1 has one row
    z = torch.randn(4, 4) * 3 + 1
    out = norm(z, ScenarioGroups(scenario, 2))
    assert torch.equal(norm.running_var[1], torch.ones(4)) and torch.equal(norm.running_mean[1], torch.zeros(4))
    assert not torch.allclose(norm.running_var[0], torch.ones(4))  # scenario 0 (3 rows) is updated
    assert torch.allclose(out[3], (z[3] - 0) / torch.sqrt(torch.ones(4) + norm.eps))  # running statistics
