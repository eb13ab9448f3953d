"""
The embedded demo (``make demo`` / ``python -m demo``): a whole Aspects pipeline on
one machine with no external services, measured by ``aspects_scaling_report``.
See :mod:`demo.run`.
"""
