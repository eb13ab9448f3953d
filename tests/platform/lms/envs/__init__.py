"""Stand-in for ``lms/envs``."""
