"""The index manifest: which encoders built an index, recorded with it by the first ingest.

Searches and later ingest jobs read it, so a user names the models once, and an index is never
searched or extended with vectors of another model (a clear error instead of silent nonsense).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lsrkit.core.config import IndexSpec
from lsrkit.core.errors import ConfigError
from lsrkit.plugin.base import Backend
from lsrkit.plugin.index_meta import MANIFEST_META

# what makes two encoders' vectors comparable; "model" (a name, hub id or folder) may move
_COMPARED = ("weights", "quantize", "activation", "top_k", "max_ratio", "dim")


def encoders_manifest(sparse: Mapping[str, Any], multivector: Mapping[str, Any] | None, spec: IndexSpec) -> dict[str, Any]:
    return {
        "sparse": dict(sparse),
        "multivector": dict(multivector) if multivector is not None else None,
        "multivector_representation": spec.multivector_representation if multivector is not None else None,
    }


def manifest_differences(stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """What differs between two manifests, in words ([] when the encoders are interchangeable).

    >>> a = {"sparse": {"model": "m", "weights": "1", "quantize": "none"}, "multivector": None}
    >>> manifest_differences(a, {**a, "sparse": {"model": "/moved/m", "weights": "1", "quantize": "none"}})
    []
    >>> manifest_differences(a, {**a, "sparse": {"model": "n", "weights": "2", "quantize": "none"}})
    ["sparse model: index has 'm' (weights 1), given 'n' (weights 2)"]
    """
    found = []
    for role in ("sparse", "multivector"):
        old, new = stored.get(role), wanted.get(role)
        if (old is None) != (new is None):
            found.append(f"{role} model: index has {old and old.get('model')!r}, given {new and new.get('model')!r}")
        elif old is not None and new is not None:
            if old.get("weights") != new.get("weights"):
                found.append(
                    f"{role} model: index has {old.get('model')!r} (weights {old.get('weights')}), given {new.get('model')!r} (weights {new.get('weights')})"
                )
            found.extend(f"{role} {key}: index has {old.get(key)!r}, given {new.get(key)!r}" for key in _COMPARED[1:] if old.get(key) != new.get(key))
    return found


def record_manifest(backend: Backend, index: str, manifest: Mapping[str, Any]) -> None:
    """Store the manifest of a new index; an existing index must have been built by the same encoders."""
    stored = backend.get_meta(index, MANIFEST_META)
    if not stored:
        backend.put_meta(index, MANIFEST_META, dict(manifest))
        return
    differences = manifest_differences(stored, manifest)
    if differences:
        raise ConfigError(f"index {index!r} was built with other encoders: " + "; ".join(differences))
