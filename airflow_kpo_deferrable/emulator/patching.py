"""PATCH bodies, by content type, as the API server applies them.

Why: the ``kubernetes`` clients send a dict as a *strategic merge patch* and a list as a *JSON patch*; ``kubectl``
uses strategic merge for ``label``/``annotate`` and merge patch with ``--type merge``. They differ exactly on lists:

* ``application/merge-patch+json`` (RFC 7386): ``null`` deletes a key, lists are replaced whole.
* ``application/strategic-merge-patch+json``: lists of the Kubernetes types that have a merge key (``containers``
  and ``env`` by ``name``, ``conditions`` by ``type``, ...) are merged item by item; ``$patch: delete`` removes an
  item, ``$patch: replace`` replaces the whole list or map; ``$setElementOrder``/``$retainKeys`` are accepted and
  ignored (they only order or prune what the patch already says).
* ``application/json-patch+json`` (RFC 6902): applied with the ``jsonpatch`` library.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch

from .errors import ApiError

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"

# Fields whose lists are merged by a key under strategic merge (the patchMergeKey tags of core/v1).
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name", "volumes": "name", "env": "name",
    "volumeMounts": "mountPath", "ports": "containerPort", "conditions": "type", "containerStatuses": "name",
    "initContainerStatuses": "name", "imagePullSecrets": "name", "hostAliases": "ip", "podIPs": "ip",
    "ownerReferences": "uid", "addresses": "type",
}


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _strategic_list(target: list[Any], patch: list[Any], merge_key: str) -> list[Any]:
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [item for item in patch if not (isinstance(item, dict) and "$patch" in item)]
    result = list(target)
    for item in patch:
        if not isinstance(item, dict) or merge_key not in item:
            result.append(item)
            continue
        index = next((i for i, old in enumerate(result) if isinstance(old, dict)
                      and old.get(merge_key) == item[merge_key]), None)
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
        elif index is None:
            result.append(strategic_merge_patch({}, item))
        else:
            result[index] = strategic_merge_patch(result[index], item)
    return result


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: v for k, v in patch.items() if not k.startswith("$")}
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and key in MERGE_KEYS and isinstance(result.get(key), list):
            result[key] = _strategic_list(result[key], value, MERGE_KEYS[key])
        else:
            result[key] = strategic_merge_patch(result.get(key), value)
    return result


def apply_patch(content_type: str, target: dict[str, Any], patch: Any) -> dict[str, Any]:
    """The patched copy of ``target``; 415 for a patch type the emulator does not speak."""
    media = content_type.split(";")[0].strip()
    if media == JSON_PATCH:
        if not isinstance(patch, list):
            raise ApiError(400, "BadRequest", "json patch must be a list of operations")
        try:
            return jsonpatch.apply_patch(target, patch)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as error:
            raise ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: {error}")
    if not isinstance(patch, dict):
        raise ApiError(400, "BadRequest", f"a {media} body must be a JSON object")
    if media == MERGE_PATCH:
        return merge_patch(target, patch)
    if media == STRATEGIC_MERGE_PATCH:
        return strategic_merge_patch(target, patch)
    raise ApiError(415, "UnsupportedMediaType",
                   f'the body of the request was in an unknown format - accepted media types include: '
                   f'{JSON_PATCH}, {MERGE_PATCH}, {STRATEGIC_MERGE_PATCH}')
