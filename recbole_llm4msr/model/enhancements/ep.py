"""EP baseline: PEPNet's EPNet gate on the embedding before the backbone (gamma = 2, input = scenario embedding
concatenated with the stop-gradient general embedding)."""
from recbole_llm4msr.layers import EPNetGate
from recbole_llm4msr.model.enhancements.base import Enhancement


class EPNet(Enhancement):
    name = "ep"

    def __init__(self, backbone, config, dataset):
        super().__init__(backbone, config, dataset)
        self.gate = EPNetGate(backbone.embedding_size, backbone.input_dim, config["ep_hidden_size"],
                              config["ep_gamma"])

    def transform_input(self, inputs):
        return self.gate(inputs.x, inputs.scenario_embedding)
