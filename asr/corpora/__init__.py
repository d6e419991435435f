"""Corpus recipes: one module per corpus, each a ``download_x`` and a ``prepare_x`` function."""
