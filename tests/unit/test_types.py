import numpy as np
import pytest

from lsrkit.core import Document, InputError, MultiVector, SparseVector


def test_sparse_vector_sorts_and_checks():
    v = SparseVector(np.array([5, 1, 3]), np.array([0.5, 1.0, 2.0]))
    assert v.ids.tolist() == [1, 3, 5]
    assert v.weights.tolist() == [1.0, 2.0, 0.5]
    assert v.ids.dtype == np.int32 and v.weights.dtype == np.float32


@pytest.mark.parametrize(
    "ids, weights",
    [([1, 1], [1.0, 2.0]), ([1], [float("nan")]), ([1], [float("inf")]), ([-1], [1.0]), ([1, 2], [1.0])],
)
def test_sparse_vector_rejects_bad_values(ids, weights):
    with pytest.raises(InputError):
        SparseVector(np.array(ids), np.array(weights))


def test_dot_and_top_k():
    a = SparseVector.from_dict({1: 1.0, 2: 2.0, 3: 3.0})
    b = SparseVector.from_dict({2: 0.5, 3: 1.0, 9: 4.0})
    assert a.dot(b) == pytest.approx(4.0)
    assert a.top_k(2).to_dict() == {2: 2.0, 3: 3.0}
    assert SparseVector.empty().dot(a) == 0.0


def test_multivector_rejects_nan_and_wrong_rank():
    with pytest.raises(InputError):
        MultiVector(np.array([1.0, 2.0]))
    with pytest.raises(InputError):
        MultiVector(np.array([[np.nan, 1.0]]))
    assert MultiVector(np.zeros((0, 4))).n_tokens == 0


def test_document_requires_id_and_string_text():
    with pytest.raises(InputError):
        Document(id="", text="x")
    with pytest.raises(InputError):
        Document(id="a", text=3)  # type: ignore[arg-type]
    assert Document(id="a", text="body", title="T").full_text == "T body"
