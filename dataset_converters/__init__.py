"""Converters from raw multi-scenario data to RecBole atomic files.

Every converter has the same command shape::

    python -m dataset_converters.<name> [inputs] --out DATA_DIR [--name NAME] [--overwrite]

and writes ``DATA_DIR/NAME/`` atomically: ``NAME.inter`` (all rows), ``NAME.user`` / ``NAME.item`` where the source
has them, the fixed seeded 8:1:1 split ``NAME.train.inter`` / ``NAME.valid.inter`` / ``NAME.test.inter``,
``NAME.stats.json`` and ``NAME.yaml`` (the dataset config RecBole needs). Converters write files and know nothing
about training.
"""
BUILTIN = {
    "ml-100k-msr": "dataset_converters.ml100k",
    "ml-1m-msr": "dataset_converters.ml1m",
    "amazon-art-office": "dataset_converters.amazon_art_office",
    "ml-100k": "dataset_converters.ml100k_seq",  # RecBole's own files, for sequential models (TSLRec)
}

# Datasets whose raw files the user downloads (licence / size): no automatic build, but a run that names one before
# it is converted is told the exact command. {DATA} stands for the data folder.
DOWNLOADED = {
    "kuaisar": ("KuaiSAR_v2.zip from the KuaiSAR Zenodo record",
                "python -m dataset_converters kuaisar KuaiSAR_v2.zip --out {DATA} --name kuaisar"),
    "kuaisar-small": ("KuaiSAR.zip from the KuaiSAR Zenodo record",
                      "python -m dataset_converters kuaisar KuaiSAR.zip --out {DATA} --name kuaisar-small"),
    "amazon-msr": ("the Amazon review data 2014 or 2018: one review file and one meta file per category",
                   "python -m dataset_converters amazon --reviews R1 R2 --meta M1 M2 --out {DATA} --name amazon-msr"),
}
CONVERTERS = {
    "ml100k": "dataset_converters.ml100k",
    "ml1m": "dataset_converters.ml1m",
    "csv": "dataset_converters.csv",
    "kuaisar": "dataset_converters.kuaisar",
    "amazon": "dataset_converters.amazon",
    "amazon_art_office": "dataset_converters.amazon_art_office",
    "ml100k_seq": "dataset_converters.ml100k_seq",
}
