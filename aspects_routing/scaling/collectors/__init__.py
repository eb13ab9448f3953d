"""Collectors: each reads one live source and returns a frozen dataclass (no rendering, no advice)."""
