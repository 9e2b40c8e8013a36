"""The one table of the kinds the emulator serves: resource name, Kind, scope and kubectl short names.

Why a module of its own: the store (scoping, ``kind`` on create), validation (``Pod "x" is invalid``), discovery
(``/api/v1``) and the list/watch handlers (``PodList``, bookmarks) all name kinds; one table keeps them agreeing.
Resource names are the plural lower-case URL segments; ``KIND_OF`` maps them to the ``kind`` field clients check.
"""

from __future__ import annotations

NAMESPACED = ("pods", "events", "configmaps", "secrets")
CLUSTER_SCOPED = ("namespaces", "nodes")
KINDS = NAMESPACED + CLUSTER_SCOPED
KIND_OF = {"pods": "Pod", "events": "Event", "configmaps": "ConfigMap", "secrets": "Secret",
           "namespaces": "Namespace", "nodes": "Node"}
SHORT_NAMES = {"pods": ["po"], "events": ["ev"], "namespaces": ["ns"], "nodes": ["no"], "configmaps": ["cm"]}
