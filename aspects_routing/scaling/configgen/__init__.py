"""
Config generators for ``aspects_scaling_config``: sized, valid Kubernetes and Tutor files.

One module per service (:mod:`.workers`, :mod:`.ralph`, :mod:`.clickhouse`,
:mod:`.superset`, :mod:`.monitoring`), each turning a
:class:`~aspects_routing.scaling.sizing.Sizing` into :class:`~.common.GeneratedFile`
pieces; :mod:`.bundles` folds them into what is applied as is (one Tutor YAML
plugin, one kustomize tree); :mod:`.service` sizes, generates, writes and summarises.
"""

from aspects_routing.scaling.configgen.common import GeneratedFile, Target
from aspects_routing.scaling.configgen.service import ConfigError, ConfigOptions, Plan, plan, summary, write_files

__all__ = ["ConfigError", "ConfigOptions", "GeneratedFile", "Plan", "Target", "plan", "summary", "write_files"]
