"""Step 1 of LLM4MSR: prompts -> frozen LLM -> a resumable, memory-mappable knowledge store.

Arrows point one way: this package reads converted dataset files and writes the store; it never imports
``recbole_llm4msr.model``. Models read knowledge only through :mod:`recbole_llm4msr.knowledge.loader`.
"""
