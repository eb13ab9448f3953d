"""
Default settings for aspects-routing, injected by the Open edX plugin system.

Every key of ``ASPECTS_ROUTING`` and its default lives in
:data:`aspects_routing.conf.DEFAULTS`; this module only makes sure the dict
exists, so that operators can update it in place.
"""


def plugin_settings(settings):
    """
    Ensure ``settings.ASPECTS_ROUTING`` exists.

    Nothing else is computed here: Tutor appends the operator's Python settings
    after the plugins are loaded, so every value is read lazily by
    :func:`aspects_routing.conf.get_config` at first use.
    """
    if not isinstance(getattr(settings, "ASPECTS_ROUTING", None), dict):
        settings.ASPECTS_ROUTING = {}
