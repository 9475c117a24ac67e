"""EP baseline: PEPNet's EPNet gate on the embedding before the backbone (gamma = 2, input = scenario embedding
concatenated with the stop-gradient general embedding)."""
from recbole_llm4msr.layers import EPNetGate
from recbole_llm4msr.model.enhancements.base import Enhancement
from recbole_llm4msr.settings import reader, setting_count, setting_number


class EPNet(Enhancement):
    name = "ep"
    setting_readers = {"ep_hidden_size": setting_count, "ep_gamma": reader(setting_number, kind=float, low=0.0)}

    def __init__(self, backbone, config, dataset):
        super().__init__(backbone, config, dataset)
        settings = self.read_settings(config)
        self.gate = EPNetGate(backbone.embedding_size, backbone.input_dim, settings["ep_hidden_size"],
                              settings["ep_gamma"])

    def transform_input(self, inputs):
        return self.gate(inputs.x, inputs.scenario_embedding)
