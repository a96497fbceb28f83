"""Run the doctests of lsrkit's pure-function modules (the examples in their docstrings)."""

import doctest
import importlib

import pytest

MODULES = [
    "lsrkit.core.types",
    "lsrkit.core.config",
    "lsrkit.encoders.pooling",
    "lsrkit.encoders.idf",
    "lsrkit.encoders.sparse",
    "lsrkit.encoders.text",
    "lsrkit.encoders.one_thread",
    "lsrkit.plugin.rerank",
    "lsrkit.plugin.integer_gemm",
    "lsrkit.plugin.fusion",
    "lsrkit.plugin.codec",
    "lsrkit.plugin.feature_names",
    "lsrkit.plugin.opensearch",
    "lsrkit.plugin.pipeline",
    "lsrkit.plugin.qdrant_layout",
    "lsrkit.evaluation",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no doctest"
    assert result.failed == 0
