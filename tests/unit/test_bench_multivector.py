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


def test_of_the_compact_representations_that_hold_both_intervals_the_most_maxsim_signal_is_chosen():
    rows = {
        "int8": _row(388, HOLDS, HOLDS, maxsim_ndcg=0.74),  # the most signal, but not compact
        "pool3-1bit": _row(16.1, HOLDS, LOSES, maxsim_ndcg=0.73),  # pure MaxSim loses on its interval
        "pool3-res1bit": _row(16.4, HOLDS, HOLDS, maxsim_ndcg=0.71),
        "pool3-rot1bit": _row(16.8, HOLDS, HOLDS, maxsim_ndcg=0.72),  # larger than res1bit, more signal
        "pool3-pq1bit": _row(16.1, LOSES, HOLDS, maxsim_ndcg=0.725),  # interpolated loses
        "1bit": _row(48, HOLDS, HOLDS, maxsim_ndcg=0.735),
    }
    assert choose_default(rows, tuple(rows)) == ("pool3-rot1bit", None)
    # equal signal: the smaller, then the better interpolated nDCG@10
    rows["pool2-2bit"] = _row(16.5, HOLDS, HOLDS, maxsim_ndcg=0.72)
    assert choose_default(rows, tuple(rows))[0] == "pool2-2bit"
    rows["pool3-2bit"] = _row(16.5, HOLDS, HOLDS, ndcg=0.71, maxsim_ndcg=0.72)
    assert choose_default(rows, tuple(rows))[0] == "pool3-2bit"


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
