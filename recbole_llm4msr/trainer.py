"""The trainer of every context-aware (CTR) run, composed of two independent parts:

* :class:`recbole_llm4msr.evaluation.ScenarioEvaluation` -- per-scenario AUC / LogLoss (exact under DDP);
* :class:`recbole_llm4msr.recovery.TrainerFixes` -- atomic checkpoints, ``--resume``, DDP on CPUs and GPUs.
"""
from recbole.trainer import Trainer

from recbole_llm4msr.evaluation import ScenarioEvaluation
from recbole_llm4msr.recovery import TrainerFixes


class MultiScenarioTrainer(ScenarioEvaluation, TrainerFixes, Trainer):
    """RecBole's Trainer with per-scenario metrics and the recovery / DDP fixes."""
