"""The one schema of settings: typed dataclasses with their defaults, and the checks that validate them."""
