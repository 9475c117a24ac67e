import pytest
from recbole.model.context_aware_recommender import DeepFM, xDeepFM
from recbole.utils import ModelType

from recbole_llm4msr import registry
from recbole_llm4msr.trainer import MultiScenarioTrainer


def test_stock_models_resolve():
    assert registry.get_model("DeepFM") is DeepFM
    assert registry.get_model("xDeepFM") is xDeepFM
    assert registry.get_model(DeepFM) is DeepFM


def test_our_models_come_first(monkeypatch):
    class DeepFMShadow(DeepFM):
        pass

    monkeypatch.setitem(registry._EXTRA_MODELS, "DeepFM", DeepFMShadow)
    assert registry.get_model("DeepFM") is DeepFMShadow


def test_unknown_name_lists_available_names():
    with pytest.raises(ValueError) as err:
        registry.get_model("DeepFMM")
    message = str(err.value)
    assert "DeepFMM" in message and "DeepFM" in message and "WideDeep" in message and "BPR" in message


def test_every_context_model_gets_the_per_scenario_trainer():
    assert registry.get_trainer(ModelType.CONTEXT, "DeepFM") is MultiScenarioTrainer
    assert registry.get_trainer(ModelType.CONTEXT, "AnythingElse") is MultiScenarioTrainer
    assert registry.get_trainer(ModelType.GENERAL, "BPR").__name__ == "Trainer"
