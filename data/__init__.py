"""Text assets (word lists, prompt specs) shipped with the package as ``asr.assets``."""
