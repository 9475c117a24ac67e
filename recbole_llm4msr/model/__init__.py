"""This package's models. Each module registers its classes with :func:`recbole_llm4msr.registry.register_model`."""
