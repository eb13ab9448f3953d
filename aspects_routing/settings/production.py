"""
Production settings overlay: values from the YAML config (``ENV_TOKENS``).

An operator writes, in ``lms.yml`` / ``cms.yml``::

    ASPECTS_ROUTING:
      QUEUE: edx.lms.core.aspects
      TRANSPORT: event_bus

Keys given in YAML are merged over what is already in ``settings.ASPECTS_ROUTING``
(so Python settings loaded earlier keep the keys YAML does not name).
"""


def plugin_settings(settings):
    """Overlay ``ENV_TOKENS["ASPECTS_ROUTING"]`` onto ``settings.ASPECTS_ROUTING``."""
    current = getattr(settings, "ASPECTS_ROUTING", None)
    merged = dict(current) if isinstance(current, dict) else {}
    env_tokens = getattr(settings, "ENV_TOKENS", None) or {}
    from_yaml = env_tokens.get("ASPECTS_ROUTING")
    if isinstance(from_yaml, dict):
        merged.update(from_yaml)
    elif from_yaml is not None:
        # Keep the bad value visible: the system check reports its type and the fix.
        merged = from_yaml
    settings.ASPECTS_ROUTING = merged
