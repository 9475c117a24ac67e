"""Knowledge as a library: prompts -> frozen LLM -> a fingerprinted, resumable, memory-mappable store.

It depends on nothing of ours above it (not the config, registry, models, trainers or distributed code): callers
hand it one :class:`~recbole_llm4msr.knowledge.spec.KnowledgeSpec` (``KnowledgeSpec.from_config`` for a RecBole
config, ``from_args`` for the CLI). Consumers read vectors only through :func:`recbole_llm4msr.knowledge.loader.align`.
"""
