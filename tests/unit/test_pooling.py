import numpy as np
import pytest

from lsrkit.encoders.pooling import log1p_log1p_relu, log1p_relu, max_pool


def _reference(logits, mask, activation):
    act = np.log1p(np.maximum(logits, 0))
    if activation == "log1p_log1p_relu":
        act = np.log1p(act)
    act = act * mask[:, :, None]  # the usual SPLADE formulation: activate every token, mask, max
    return act.max(axis=1)


@pytest.mark.parametrize("activation", ["log1p_relu", "log1p_log1p_relu"])
def test_max_pool_matches_the_textbook_formula(activation):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 7, 50)).astype(np.float32)
    mask = np.array([[1] * 7, [1] * 4 + [0] * 3, [1] * 2 + [0] * 5], dtype=np.int64)
    expected = _reference(logits.copy(), mask, activation)
    got = max_pool(logits.copy(), mask, activation)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


def test_padding_never_contributes():
    logits = np.full((1, 3, 4), -5.0, dtype=np.float32)
    logits[0, 2] = 10.0  # a padded position with large logits
    mask = np.array([[1, 1, 0]])
    assert max_pool(logits, mask, "log1p_relu").max() == 0.0


def test_activations_values():
    x = np.array([-1.0, 0.0, 1.0], dtype=np.float32)
    np.testing.assert_allclose(log1p_relu(x.copy()), [0.0, 0.0, np.log(2)], rtol=1e-6)
    np.testing.assert_allclose(log1p_log1p_relu(x.copy()), [0.0, 0.0, np.log1p(np.log(2))], rtol=1e-6)
