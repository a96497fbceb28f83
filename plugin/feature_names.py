"""Token ↔ `rank_features` feature name, reversibly.

Measured on OpenSearch 3.5: a feature name containing `.` is accepted at index time but can
never be queried (the dot is read as an object path), so `.` is percent-escaped, and `%` with it
so the mapping stays reversible. Every other BERT token (`##s`, `[CLS]`, `,`, `"`, `\\`, `é`, …)
works as is.
"""

from __future__ import annotations


def to_feature(token: str) -> str:
    """
    >>> to_feature("a.b"), to_feature("100%"), to_feature("##s")
    ('a%2Eb', '100%25', '##s')
    """
    return token.replace("%", "%25").replace(".", "%2E")


def from_feature(name: str) -> str:
    """
    >>> all(from_feature(to_feature(t)) == t for t in [".", "%", "%2E", "a.%.b", "##s"])
    True
    """
    return name.replace("%2E", ".").replace("%25", "%")
