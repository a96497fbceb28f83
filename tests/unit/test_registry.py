import pytest

from lsrkit.core import ConfigError, ModelNotFoundError
from lsrkit.encoders.registry import REGISTRY, resolve, spec_for


@pytest.mark.models
def test_offline_entries_resolve_from_installed_packages():
    sparse = resolve("splade-tiny")
    assert (sparse.directory / "config.json").is_file()
    assert sparse.spec.activation == "log1p_relu"
    dense = resolve("minilm-l6")
    assert (dense.directory / "tokenizer.json").is_file()


@pytest.mark.models
def test_local_path_is_used_as_is():
    folder = resolve("splade-tiny").directory
    resolved = resolve(str(folder), "sparse")
    assert resolved.directory == folder
    assert resolved.spec.kind == "sparse"


def test_activations_follow_model_generation():
    assert REGISTRY["opensearch-doc-v2-distill"].activation == "log1p_relu"
    assert REGISTRY["opensearch-doc-v3-distill"].activation == "log1p_log1p_relu"
    assert REGISTRY["opensearch-doc-v3-gte"].activation == "log1p_log1p_relu"
    assert REGISTRY["opensearch-doc-v3-distill"].idf_file == "idf.json"
    colbert = REGISTRY["colbertv2"]
    assert colbert.projection and colbert.query_marker == "[unused0]" and colbert.query_length == 32


def test_missing_hub_model_lists_every_source(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError) as info:
        resolve("naver/splade-v3", "sparse")
    assert "naver/splade-v3" in str(info.value) and "local hub cache" in str(info.value)


def test_unknown_name_without_kind_is_refused():
    with pytest.raises(ModelNotFoundError):
        spec_for("no-such-model")


def test_kind_mismatch_is_refused():
    with pytest.raises(ConfigError):
        spec_for("minilm-l6", "sparse")
