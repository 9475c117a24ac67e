"""TSLRec (Liu et al., arXiv 2406.00333): a sequential recommender's item embeddings -> latent categories -> a
user-level SFT of the LLM (reconstruct each user's category distribution) -> LLM item vectors in an item store.

``llm4msr-tslrec`` runs the pipeline (:mod:`recbole_llm4msr.tslrec.pipeline`); ``SASRec_TSLRec`` /
``GRU4Rec_TSLRec`` (:mod:`recbole_llm4msr.model.tslrec`) read the store.
"""
