"""Stand-in for ``cms/envs``."""
