"""Multi-scenario data: the dataset class, scenario statistics and the built-in datasets built on first use."""
from recbole_llm4msr.data.dataset import MultiScenarioDataset, ScenarioDataError

__all__ = ["MultiScenarioDataset", "ScenarioDataError"]
