"""CTC posteriors to text: greedy and beam search, lexicon + n-gram LM, alignment and word times."""
