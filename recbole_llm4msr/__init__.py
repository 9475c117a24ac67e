"""recbole-llm4msr: LLM4MSR (Wang et al., CIKM 2024) as a RecBole plug-in.

Entry points: :func:`recbole_llm4msr.quick_start.run_recbole` and the ``run_recbole`` console script.
Compatibility with today's stack: :mod:`recbole_llm4msr.compat`.
"""
__version__ = "0.1.0"
