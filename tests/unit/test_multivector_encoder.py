import numpy as np
import pytest

from lsrkit.core import EncoderError
from lsrkit.encoders.text import is_punctuation

pytestmark = pytest.mark.models


def test_token_vectors_are_unit_length_and_deterministic(mv_encoder, mini_docs):
    texts = [d["text"] for d in mini_docs[:5]]
    batch = mv_encoder.encode_documents(texts)
    alone = mv_encoder.encode_documents([texts[3]])[0]
    assert mv_encoder.dim == 384
    for mv in batch:
        assert mv.vectors.shape[1] == 384
        np.testing.assert_allclose(np.linalg.norm(mv.vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(alone.vectors, batch[3].vectors, atol=1e-5)


def test_minilm_keeps_every_token_by_default(mv_encoder):
    """Skipping specials/punctuation suits ColBERT checkpoints, not MiniLM (a model setting)."""
    text = "cells, use ATP."
    n_tokens = len(mv_encoder.model.tokenizer.token_ids([text])[0])
    assert mv_encoder.encode_documents([text])[0].n_tokens == n_tokens


def test_punctuation_skip_is_a_model_setting(mini_docs):
    from lsrkit.encoders import MultiVectorEncoder
    from lsrkit.encoders.registry import REGISTRY, ModelSpec

    base = REGISTRY["minilm-l6"]
    spec = ModelSpec(**{**base.__dict__, "skip_punctuation": True, "skip_special": True})
    encoder = MultiVectorEncoder(spec)
    text = "cells, use ATP."
    ids = encoder.model.tokenizer.token_ids([text])[0]
    kept = [i for i in ids if not is_punctuation(encoder.model.tokenizer.vocab[i]) and i not in encoder.model.tokenizer.special_ids]
    assert encoder.encode_documents([text])[0].n_tokens == len(kept)
    # queries keep every token
    assert encoder.encode_queries([text])[0].n_tokens == len(ids)


def test_bad_and_empty_input(mv_encoder):
    with pytest.raises(EncoderError):
        mv_encoder.encode_queries([None])
    assert mv_encoder.encode_documents([""])[0].n_tokens == 0


def test_int8_attention_recipe_keeps_token_vectors(mv_encoder, mini_docs):
    """The careful int8 recipe must keep every token vector at cosine >= 0.99 of fp32 and stay
    batch-independent (quantized models run one text at a time)."""
    from lsrkit.core import OnnxOptions
    from lsrkit.encoders import MultiVectorEncoder

    quantized = MultiVectorEncoder("minilm-l6", options=OnnxOptions(quantize="int8-attention"))
    texts = [f"{d['title']} {d['text']}" for d in mini_docs[:40]]
    cosines = np.concatenate([(a.vectors * b.vectors).sum(axis=1) for a, b in zip(mv_encoder.encode_documents(texts), quantized.encode_documents(texts))])
    assert cosines.mean() >= 0.998 and cosines.min() >= 0.99
    alone = quantized.encode_documents([texts[7]])[0]
    np.testing.assert_array_equal(alone.vectors, quantized.encode_documents(texts[:10])[7].vectors)


def test_a_query_encoding_signals_as_its_model_starts_running(mv_encoder):
    """The pipeline's engine call waits for this signal (Qdrant Edge holds the GIL, onnxruntime
    releases it): it must come before the ONNX run, not after the encoding."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from lsrkit.encoders.run_signal import model_run_signal

    running = threading.Event()
    seen_at_run: list[bool] = []
    session = mv_encoder.model.session

    class Watched:
        def __getattr__(self, name):
            return getattr(session, name)

        def run(self, *args, **kwargs):
            seen_at_run.append(running.is_set())
            return session.run(*args, **kwargs)

    def encode():
        with model_run_signal(running):
            return mv_encoder.encode_queries(["what causes the signal to be sent"])

    mv_encoder.model.session = Watched()
    try:
        with ThreadPoolExecutor(1) as pool:
            vectors = pool.submit(encode).result()[0]
    finally:
        mv_encoder.model.session = session
    assert seen_at_run == [True] and running.is_set() and len(vectors) > 0
    mv_encoder.encode_queries(["outside the block nothing is signalled"])  # no event: no error
