"""``<Backbone>_<ENHANCEMENT>`` model names (``MMoE_LLM4MSR``, ``STAR_DN``, ``PLE_EP``, ...), by composition.

Each name is a subclass of the backbone that only fixes ``enhancement``; the enhancement itself is the one module
in :mod:`recbole_llm4msr.model.enhancements`, so no backbone is copied. ``MMoE_LLM4MSR`` is exactly
``MMoE`` with ``enhancement: llm4msr``.
"""
from recbole_llm4msr.model.backbones import BACKBONES
from recbole_llm4msr.model.enhancements import SUFFIX


def make_variant(backbone, enhancement):
    name = f"{backbone.__name__}_{SUFFIX[enhancement]}"
    doc = f"{backbone.__name__} with the {enhancement} enhancement (``enhancement: {enhancement}``)."
    return type(name, (backbone,), {"__doc__": doc, "fixed_enhancement": enhancement, "backbone_name":
                                    backbone.__name__, "__module__": __name__})


VARIANTS = {}
for _backbone in BACKBONES:
    for _enhancement in SUFFIX:
        _cls = make_variant(_backbone, _enhancement)
        VARIANTS[_cls.__name__] = _cls
        globals()[_cls.__name__] = _cls  # importable (and unpicklable) by name from this module
