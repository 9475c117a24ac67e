"""A recommendation-aligned LLM: recommendation signals as natural-language samples (MIM, BPR, MLM, next, rank,
click), LoRA fine-tuning (``peft``), the LLM as a ranker, and a saved model directory for ``--llm=DIR``.

Like :mod:`recbole_llm4msr.knowledge`, it depends on nothing of ours above it (it reads the dataset files and uses
the knowledge library's model loader)."""
