"""Per-scenario evaluation for any context-aware model: AUC and LogLoss per scenario and overall.

RecBole's Collector gathers only scores and labels, so its AUC is one global number. :class:`ScenarioCollector`
also gathers each row's scenario id; :class:`ScenarioEvaluation` (a trainer mix-in) adds ``auc_<scenario>`` and
``logloss_<scenario>`` to RecBole's result dict after ``super().evaluate()``, computed with RecBole's own metric
code on each scenario's rows. Baselines and our models therefore share one split and one code path, and
``valid_metric`` may name any of the keys (case-insensitive). Under DDP the collector gathers every rank's rows
(:func:`recbole_llm4msr.distributed.gather_rows`), so the metrics are exact, not averages over ranks.
"""
from collections import OrderedDict

import numpy as np
import torch
from recbole.evaluator import Collector
from recbole.evaluator.metrics import AUC, LogLoss

from recbole_llm4msr.distributed import gather_rows


def scenario_metrics(scores, labels, scenarios, names, decimal_place=None, logger=None):
    """AUC and LogLoss per scenario, with RecBole's metric formulas.

    ``scenarios`` holds internal ids (1-based, ``names[k - 1]`` is id ``k``). Returns
    ``{name: {"auc", "logloss", "n"}}``; a scenario whose rows are all one class has ``auc`` None (AUC is undefined
    there) and a scenario without rows is left out.
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels, dtype=np.float64).reshape(-1)
    scenarios = np.asarray(scenarios).reshape(-1)
    rnd = (lambda x: x) if decimal_place is None else (lambda x: round(float(x), decimal_place))
    out = OrderedDict()
    for sid, name in enumerate(names, start=1):
        mask = scenarios == sid
        n = int(mask.sum())
        if n == 0:
            continue
        s, y = scores[mask], labels[mask]
        if 0 < y.sum() < n:
            auc = rnd(AUC.metric_info(None, s, y))
        else:
            auc = None
            if logger is not None:
                logger.warning(f"scenario '{name}': all {n} labels are {int(y[0])}; its AUC is undefined and left out")
        out[name] = {"auc": auc, "logloss": rnd(LogLoss.metric_info(None, s, y)), "n": n}
    return out


class ScenarioCollector(Collector):
    """RecBole's Collector plus each evaluated row's scenario id (kept aligned with ``rec.score``)."""

    def __init__(self, config):
        super().__init__(config)
        self.scenario_field = config["SCENARIO_FIELD"]
        self.last_struct = None
        self.sampler = None  # set per evaluation under DDP: the DistributedSampler whose shards are gathered

    def eval_batch_collect(self, scores_tensor, interaction, positive_u, positive_i):
        super().eval_batch_collect(scores_tensor, interaction, positive_u, positive_i)
        self.data_struct.update_tensor("data.scenario", interaction[self.scenario_field].to(self.device))

    def get_data_struct(self):
        if self.sampler is not None:  # DDP: every rank gets all rows, in the dataset's order (exact metrics)
            for key in ("rec.score", "data.label", "data.scenario"):
                if key in self.data_struct:
                    self.data_struct[key] = gather_rows(self.data_struct[key], self.sampler)
        struct = super().get_data_struct()
        if "data.scenario" in self.data_struct:
            del self.data_struct["data.scenario"]
        self.last_struct = struct
        return struct


class ScenarioEvaluation:
    """Trainer mix-in (before RecBole's Trainer in the bases): per-scenario metrics, exact under DDP, the valid
    metric looked up case-insensitively among them (each epoch's wall time: :class:`TrainerFixes`)."""

    def __init__(self, config, model):
        super().__init__(config, model)
        self.scenario_field = config["SCENARIO_FIELD"]
        self.eval_collector = ScenarioCollector(config)

    @torch.no_grad()
    def evaluate(self, eval_data, load_best_model=True, model_file=None, show_progress=False):
        if not eval_data:
            return
        distributed = not self.config["single_spec"]
        self.eval_collector.sampler = eval_data.sampler if distributed else None
        result = super().evaluate(eval_data, load_best_model=load_best_model, model_file=model_file,
                                  show_progress=show_progress)
        struct = self.eval_collector.last_struct
        names = list(eval_data._dataset.field2id_token[self.scenario_field][1:])
        per_scenario = scenario_metrics(
            struct.get("rec.score").numpy(),
            struct.get("data.label").numpy(),
            struct.get("data.scenario").numpy(),
            names,
            decimal_place=self.config["metric_decimal_place"],
            logger=self.logger,
        )
        for name, m in per_scenario.items():
            if m["auc"] is not None and "auc" in result:
                result[f"auc_{name}"] = m["auc"]
            if "logloss" in result:
                result[f"logloss_{name}"] = m["logloss"]
        return result

    def _map_reduce(self, result, num_sample):
        # the collector already gathered every rank's rows: the metrics are those of the whole evaluation set
        return result

    def _valid_epoch(self, valid_data, show_progress=False):
        valid_result = self.evaluate(valid_data, load_best_model=False, show_progress=show_progress)
        by_lower = {k.lower(): v for k, v in valid_result.items()}
        if self.valid_metric not in by_lower:
            raise KeyError(
                f"valid_metric '{self.config['valid_metric']}' is not among the validation results "
                f"{sorted(valid_result)}; use one of those (per-scenario keys are auc_<scenario> / logloss_<scenario>)"
            )
        return by_lower[self.valid_metric], valid_result
