"""
Bundle the generated pieces into what an operator applies as is.

* :func:`tutor_plugin`: every Tutor piece (``tutor/<name>.yml`` values,
  ``tutor/patches/<patch>...`` patches) folded into one Tutor YAML plugin,
  ``tutor/aspects-scaling.yml``: values under ``config.set``, patches under
  ``patches``. Copy it into ``$(tutor plugins printroot)``, ``tutor plugins
  enable aspects-scaling``, ``tutor config save``.
* :func:`kustomize_tree`: the Kubernetes pieces as a kustomize directory.
  ``k8s/kustomization.yaml`` lists the complete objects;
  patches of Deployments and Jobs that Tutor owns move into the Component
  ``k8s/tutor-patches/``; ``k8s-with-tutor/kustomization.yaml`` builds
  Tutor's env (a ``tutor-env`` link the operator makes), ``k8s/`` and the
  Component in one ``kubectl apply -k``.

Tutor renders patches and string values with Jinja: a piece that is not meant
as a template is wrapped in ``{% raw %}`` when it holds template delimiters,
and the pieces of Deployments that exist only when Aspects runs them (``ralph``,
``superset``) are rendered only under ``RUN_RALPH`` / ``RUN_SUPERSET``.
"""

from __future__ import annotations

import posixpath
from dataclasses import replace
from typing import Any, Iterable

import yaml

from aspects_routing import __version__
from aspects_routing.scaling.configgen.common import K8S, PLUGIN_NAME, PLUGIN_PATH, TUTOR, GeneratedFile, dump

#: tutor-contrib-aspects settings that decide whether a service's Deployments exist.
RUN_SETTING = {"ralph": "RUN_RALPH", "superset": "RUN_SUPERSET"}
#: Tutor patches that hold Kubernetes YAML documents (each piece must start with ``---``:
#: Tutor joins the plugins' patches with a bare newline, in plugin-name order).
YAML_PATCH_PREFIXES = ("k8s-", "kustomization")
AUTOSCALING = "POD_AUTOSCALING_EXTRA_SERVICES"
_DELIMITERS = ("{{", "{%", "{#")

COMPONENT_DIR = "k8s/tutor-patches"
OVERLAY_DIR = "k8s-with-tutor"
#: The link to Tutor's env the overlay builds on (kustomize refuses absolute paths).
TUTOR_ENV_LINK = "tutor-env"
PATCHED_KINDS = ("Deployment", "Job")


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (patches) as ``|`` blocks, so the plugin reads like the patches it carries."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value and not any(line != line.rstrip() for line in value.splitlines()) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str)


def run_flag(service: str) -> str | None:
    """The Aspects ``RUN_*`` setting gating ``service``'s Deployments, if any."""
    return RUN_SETTING.get(service)


def _patch_name(path: str) -> str | None:
    """``tutor/patches/<patch>.<ext>`` or ``tutor/patches/<patch>/...`` -> ``<patch>``."""
    prefix = "tutor/patches/"
    if not path.startswith(prefix):
        return None
    rest = path[len(prefix):]
    head = rest.split("/", 1)[0]
    return head if "/" in rest else posixpath.splitext(head)[0]


def _template_safe(piece: GeneratedFile) -> str:
    if piece.jinja or not any(d in piece.content for d in _DELIMITERS):
        return piece.content
    return "{% raw %}" + piece.content + "{% endraw %}"


def _patch_text(name: str, pieces: list[GeneratedFile]) -> str:
    texts = []
    for piece in pieces:
        text = _template_safe(piece)
        if name.startswith(YAML_PATCH_PREFIXES):
            text = "---\n" + text
        flag = run_flag(piece.service) if name.startswith("k8s-") else None
        if flag:
            text = f"{{% if {flag} %}}\n{text.rstrip()}\n{{% endif %}}"
        texts.append(text.rstrip("\n"))
    return "\n".join(texts) + "\n"


def _merge_values(target: dict[str, Any], values: dict[str, Any], path: str) -> None:
    for key, value in values.items():
        if key == AUTOSCALING and key in target:
            target[key] = {**target[key], **value}
        elif key in target and target[key] != value:
            raise ValueError(f"{path} sets {key} to {value!r}, another piece to {target[key]!r}")
        else:
            target[key] = value


def tutor_plugin(pieces: Iterable[GeneratedFile]) -> GeneratedFile:
    """One Tutor YAML plugin (``tutor/aspects-scaling.yml``) carrying every Tutor piece."""
    pieces = list(pieces)
    values: dict[str, Any] = {}
    patches: dict[str, list[GeneratedFile]] = {}
    for piece in pieces:
        name = _patch_name(piece.path)
        if name is None:
            _merge_values(values, yaml.safe_load(piece.content) or {}, piece.path)
        else:
            patches.setdefault(name, []).append(piece)
    plugin: dict[str, Any] = {"name": PLUGIN_NAME, "version": __version__}
    if values:
        # ``set``: Tutor's config overrides, written into config.yml (rendered once) at the first
        # ``tutor config save``; a value already there wins, ``tutor plugins disable`` removes them.
        # Nothing that depends on RUN_RALPH / RUN_SUPERSET lives here (see ADR 0006).
        plugin["config"] = {"set": values}
    plugin["patches"] = {name: _patch_text(name, group) for name, group in sorted(patches.items())}
    content = yaml.dump(plugin, Dumper=_BlockDumper, sort_keys=False, default_flow_style=False, width=120)
    services = sorted({p.service for p in pieces})
    return GeneratedFile(
        PLUGIN_PATH, content, TUTOR, "+".join(services),
        f"Tutor plugin {PLUGIN_NAME}: {len(values)} value(s), patches {', '.join(sorted(patches))}",
        "One file: copy it into $(tutor plugins printroot), tutor plugins enable "
        f"{PLUGIN_NAME}, tutor config save.",
        sensitive=any(p.sensitive for p in pieces),
        parts=tuple(pieces),
    )


def _documents(piece: GeneratedFile) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(piece.content) if isinstance(doc, dict) and "kind" in doc]


def is_patch(piece: GeneratedFile) -> bool:
    """A partial Deployment or Job: a patch of an object Tutor owns, not an object of its own."""
    docs = _documents(piece)
    return bool(docs) and not piece.complete_k8s_object and all(d["kind"] in PATCHED_KINDS for d in docs)


def _kustomization(kind: str, **fields: Any) -> str:
    api = "kustomize.config.k8s.io/v1alpha1" if kind == "Component" else "kustomize.config.k8s.io/v1beta1"
    return dump({"apiVersion": api, "kind": kind, **fields})


def kustomize_tree(pieces: Iterable[GeneratedFile]) -> list[GeneratedFile]:
    """The K8S pieces as a kustomize directory (objects, Component, overlay over Tutor's env)."""
    objects: list[GeneratedFile] = []
    patches: list[GeneratedFile] = []
    for piece in pieces:
        (patches if is_patch(piece) else objects).append(piece)
    files = list(objects)
    files.append(
        GeneratedFile(
            "k8s/kustomization.yaml",
            _kustomization("Kustomization", resources=[posixpath.relpath(p.path, "k8s") for p in objects]),
            K8S, "all", f"Kustomization: {len(objects)} object file(s)", "kubectl apply -k <output>/k8s",
        )
    )
    if not patches:
        return files
    moved = [replace(p, path=f"{COMPONENT_DIR}/{posixpath.relpath(p.path, 'k8s').replace('/', '-')}") for p in patches]
    files += moved
    files.append(
        GeneratedFile(
            f"{COMPONENT_DIR}/kustomization.yaml",
            _kustomization("Component", patches=[{"path": posixpath.relpath(p.path, COMPONENT_DIR)} for p in moved]),
            K8S, "all", f"Component: {len(moved)} patch(es) of Deployments and Jobs Tutor owns",
            "Patches without a namespace: they match Tutor's objects in whatever namespace it sets.",
        )
    )
    files.append(
        GeneratedFile(
            f"{OVERLAY_DIR}/kustomization.yaml",
            _kustomization(
                "Kustomization", resources=[TUTOR_ENV_LINK, "../k8s"], components=[f"../{COMPONENT_DIR}"]
            ),
            K8S, "all", "Overlay: Tutor's env + k8s/ + the Component, applied in one kubectl apply -k",
            f'First link Tutor\'s env: ln -sfn "$(tutor config printroot)/env" <output>/{OVERLAY_DIR}/{TUTOR_ENV_LINK}',
        )
    )
    return files
