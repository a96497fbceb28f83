"""Property-based checks of query-time input: any text gives hits or a clear lsrkit error."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lsrkit.core import InputError, LsrError

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def edge_pipeline(scenario, tmp_path_factory):
    from lsrkit.core import IndexSpec, RerankSettings
    from lsrkit.plugin import SearchPipeline
    from lsrkit.plugin.qdrant_edge import QdrantEdgeBackend

    backend = QdrantEdgeBackend(tmp_path_factory.mktemp("edge"))
    spec = IndexSpec("props", multivector_dim=384)
    backend.ensure_index(spec)
    backend.write(spec.name, scenario["records"][:40])
    pipeline = SearchPipeline(
        backend,
        spec.name,
        scenario["query_encoder"],
        multivector_encoder=scenario["mv_encoder"],
        rerank=True,
        codec=scenario["codec"],
        settings=RerankSettings(kappa=10, k=5),
    )
    yield pipeline
    backend.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=300))
def test_any_query_text_gives_hits_or_an_input_error(edge_pipeline, text):
    try:
        result = edge_pipeline.search(text)
    except InputError:
        assert not text.strip() or len(text) > 4096
        return
    assert len(result.hits) <= 5
    assert all(h.id for h in result.hits)


def test_limits(edge_pipeline):
    with pytest.raises(InputError, match="limit"):
        edge_pipeline.search("x" * 5000)
    with pytest.raises(InputError):
        edge_pipeline.search("cells", k=5000)
    with pytest.raises(LsrError):
        edge_pipeline.search(None)  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(), st.text(max_size=50), st.binary(max_size=10)), min_size=1, max_size=4))
def test_query_encoder_inputs(scenario, texts):
    from lsrkit.core import EncoderError

    encoder = scenario["query_encoder"]
    if all(isinstance(t, str) for t in texts):
        assert len(encoder.encode_queries(texts)) == len(texts)
    else:
        with pytest.raises(EncoderError):
            encoder.encode_queries(texts)


def test_a_query_encoder_that_fails_or_never_signals_neither_hangs_nor_loses_the_search(edge_pipeline, scenario):
    """On Edge the engine call waits for the token-vector model to start running: an encoder
    that raises before any run gives its error, one that never signals (a user's own) is waited
    for whole, and both give the same hits as the bundled encoder."""
    from lsrkit.core import EncoderError

    class Failing:
        def encode_queries(self, texts):
            raise EncoderError("the model file is gone")

    class Silent:  # never goes through LoadedModel.run: no signal
        def encode_queries(self, texts):
            return [scenario["mv_encoder"].encode_queries(texts)[0]]

    expected = [h.id for h in edge_pipeline.search("cells and tissues").hits]
    bundled = edge_pipeline.multivector_encoder
    try:
        edge_pipeline.multivector_encoder = Failing()
        with pytest.raises(EncoderError, match="gone"):
            edge_pipeline.search("cells and tissues")
        edge_pipeline.multivector_encoder = Silent()
        assert [h.id for h in edge_pipeline.search("cells and tissues").hits] == expected
    finally:
        edge_pipeline.multivector_encoder = bundled
