"""`lsrkit bench multivector`'s choice of the default representation, on made-up train intervals."""

from lsrkit.bench.multivector import MAX_DEFAULT_BYTES_PER_TOKEN, choose_default

HOLDS, LOSES = [-0.01, 0.01], [-0.02, -0.001]


def _row(size: float, interpolated: list[float], pure: list[float], ndcg: float = 0.7, maxsim_ndcg: float = 0.7) -> dict:
    return {
        "bytes_per_token": size,
        "ndcg10_train": ndcg,
        "ndcg10_train_maxsim_only": maxsim_ndcg,
        "delta_train_interval": interpolated,
        "maxsim_only_delta_train_interval": pure,
    }


def test_the_smallest_compact_representation_that_holds_both_intervals_is_chosen():
    rows = {
        "int8": _row(388, HOLDS, HOLDS),
        "pool3-1bit": _row(16.1, HOLDS, LOSES),  # smaller, but pure MaxSim loses
        "pool3-res1bit": _row(16.4, HOLDS, HOLDS),
        "pool3-res2bit": _row(16.4, HOLDS, HOLDS, ndcg=0.71),  # a tie on size and pure MaxSim: the better interpolated nDCG@10
        "1bit": _row(48, HOLDS, HOLDS),
    }
    assert choose_default(rows, tuple(rows)) == ("pool3-res2bit", None)
    # a tie on size: the better pure MaxSim on train first, whatever the interpolated figure
    rows["pool3-rot1bit"] = _row(16.4, HOLDS, HOLDS, ndcg=0.69, maxsim_ndcg=0.71)
    assert choose_default(rows, tuple(rows)) == ("pool3-rot1bit", None)


def test_without_a_compact_representation_holding_both_the_old_rule_picks_and_says_why():
    rows = {
        "int8": _row(388, HOLDS, HOLDS),
        "pool3-1bit": _row(16.1, HOLDS, LOSES),
        "pool2-1bit": _row(MAX_DEFAULT_BYTES_PER_TOKEN + 0.03, HOLDS, HOLDS),  # holds both, but too large
        "pool4-1bit": _row(12.0, LOSES, HOLDS),
    }
    default, reason = choose_default(rows, tuple(rows))
    assert default == "pool3-1bit"  # the smallest whose interpolated interval contains 0
    assert reason is not None and "pool3-1bit: pure MaxSim" in reason and "pool4-1bit: interpolated" in reason
    nothing_holds = {"int8": _row(388, LOSES, LOSES), "1bit": _row(48, LOSES, LOSES)}
    assert choose_default(nothing_holds, tuple(nothing_holds))[0] == "int8"
