"""Small-sample statistics: the median's interval, the t distribution, Welch's test."""

import math

import pytest

from ansible_collections.netlab.lab.plugins.plugin_utils.report import stats


@pytest.mark.parametrize(("n", "confidence"), [(3, 0.75), (4, 0.875), (5, 0.9375)])
def test_median_ci_below_six_values_is_min_max_with_its_real_confidence(n, confidence):
    values = [float(v) for v in range(n, 0, -1)]  # unsorted on purpose
    assert stats.median_ci(values) == {"low": 1.0, "high": float(n), "confidence": confidence}


@pytest.mark.parametrize(("n", "rank", "confidence"), [
    # Ranks and coverages of the classic sign-test table: 1 - 2 * P(Binomial(n, 1/2) <= rank - 1).
    (6, 1, 1 - 2 / 64),
    (8, 1, 1 - 2 / 256),
    (9, 2, 1 - 2 * 10 / 512),
    (10, 2, 1 - 2 * 11 / 1024),
    (12, 3, 1 - 2 * 79 / 4096),
    (17, 5, 1 - 2 * (1 + 17 + 136 + 680 + 2380) / 2**17),
])
def test_median_ci_is_the_narrowest_pair_reaching_95_percent(n, rank, confidence):
    values = [10.0 * i for i in range(1, n + 1)]
    got = stats.median_ci(values)
    assert got["low"] == values[rank - 1]
    assert got["high"] == values[n - rank]
    assert got["confidence"] == pytest.approx(confidence)
    assert got["confidence"] >= 0.95
    # One rank narrower would fall below 95 %.
    narrower = 1 - 2 * sum(math.comb(n, i) for i in range(rank + 1)) / 2**n
    assert narrower < 0.95


@pytest.mark.parametrize("values", [[], [4.2]])
def test_median_ci_needs_two_values(values):
    assert stats.median_ci(values) == {"low": None, "high": None, "confidence": None}


@pytest.mark.parametrize(("t", "df"), [(2.776, 4), (4.303, 2), (12.706, 1), (2.228, 10), (1.960, 1e6)])
def test_t_two_sided_p_matches_the_tables_at_5_percent(t, df):
    assert stats.t_two_sided_p(t, df) == pytest.approx(0.05, abs=1e-3)
    assert stats.t_two_sided_p(-t, df) == stats.t_two_sided_p(t, df)


@pytest.mark.parametrize(("t", "p"), [(3.747, 0.02), (4.604, 0.01), (8.610, 0.001)])
def test_t_two_sided_p_matches_the_tables_at_df_4(t, p):
    assert stats.t_two_sided_p(t, 4) == pytest.approx(p, rel=2e-3)


def _density_tail(t, df, steps=20000):
    """P(|T| >= t) by Simpson's rule on the t density, an independent check of the beta fraction."""
    norm = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)

    def density(x):
        return norm * (1 + x * x / df) ** (-(df + 1) / 2)

    h = t / steps
    inner = density(0) + density(t) + sum((4 if i % 2 else 2) * density(i * h) for i in range(1, steps))
    return 1 - 2 * inner * h / 3


@pytest.mark.parametrize(("t", "df"), [(0.5, 2.8), (1.7, 7.3), (3.79, 2.805), (6.0, 1.5), (2.5, 30.0)])
def test_t_two_sided_p_at_fractional_df_agrees_with_integrating_the_density(t, df):
    assert stats.t_two_sided_p(t, df) == pytest.approx(_density_tail(t, df), abs=1e-6)


def test_t_two_sided_p_at_zero_and_bad_df():
    assert stats.t_two_sided_p(0.0, 3) == 1.0
    with pytest.raises(ValueError, match="degrees of freedom"):
        stats.t_two_sided_p(1.0, 0)


def test_incomplete_beta_edges_and_symmetry():
    assert stats.incomplete_beta(2, 3, 0) == 0.0
    assert stats.incomplete_beta(2, 3, 1) == 1.0
    # I_x(1, 1) = x; I_x(a, b) = 1 - I_(1-x)(b, a).
    assert stats.incomplete_beta(1, 1, 0.3) == pytest.approx(0.3)
    assert stats.incomplete_beta(2.5, 0.5, 0.7) == pytest.approx(1 - stats.incomplete_beta(0.5, 2.5, 0.3))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        stats.incomplete_beta(1, 1, 1.5)


def test_welch_equal_variances_worked_example():
    # a = 1, 2, 3: mean 2, variance 1; b = 4, 5, 6: mean 5, variance 1.
    # t = (2 - 5) / sqrt(1/3 + 1/3) = -3 / 0.8165 = -3.674
    # df = (2/3)^2 / ((1/3)^2 / 2 + (1/3)^2 / 2) = (4/9) / (1/9) = 4
    # At df 4 the table gives p 0.05 at t 2.776 and 0.02 at 3.747, so p lies just above 0.02 (0.0213).
    got = stats.welch([1, 2, 3], [4, 5, 6])
    assert got["t"] == pytest.approx(-3 / math.sqrt(2 / 3))
    assert got["df"] == pytest.approx(4.0)
    assert 0.02 < got["p"] < 0.05
    assert got["p"] == pytest.approx(0.0213, abs=1e-4)
    assert stats.significant([1, 2, 3], [4, 5, 6]) is True


def test_welch_unequal_variances_worked_example():
    # a = 10, 10.5, 11: mean 10.5, variance 0.25, variance / n = 0.083333
    # b = 9, 9.2, 9.4, 9.6: mean 9.3, variance (0.09 + 0.01 + 0.01 + 0.09) / 3 = 0.066667, / n = 0.016667
    # t = 1.2 / sqrt(0.1) = 3.7947
    # df = 0.1^2 / (0.083333^2 / 2 + 0.016667^2 / 3) = 0.01 / 0.0035648 = 2.8052
    # Between the df 2 and df 3 rows, t 3.79 lies between the 5 % and the 2 % columns of df 3
    # (3.182, 4.541) and just under the 5 % column of df 2 (4.303): p a little under 0.05.
    got = stats.welch([10, 10.5, 11], [9, 9.2, 9.4, 9.6])
    assert got["t"] == pytest.approx(1.2 / math.sqrt(0.1))
    assert got["df"] == pytest.approx(0.01 / (0.25**2 / 9 / 2 + (0.2 / 3) ** 2 / 16 / 3))
    assert got["df"] == pytest.approx(2.8052, abs=1e-4)
    assert 0.02 < got["p"] < 0.05
    assert got["p"] == pytest.approx(_density_tail(got["t"], got["df"]), abs=1e-6)


def test_welch_noisy_overlapping_samples_are_not_significant():
    got = stats.welch([10.0, 12.0, 9.0], [11.0, 9.5, 12.5])
    assert got["p"] > 0.5
    assert stats.significant([10.0, 12.0, 9.0], [11.0, 9.5, 12.5]) is False


def test_welch_constant_samples():
    assert stats.welch([5.0, 5.0, 5.0], [5.0, 5.0]) == {"t": None, "df": None, "p": 1.0}
    assert stats.welch([5.0, 5.0], [4.0, 4.0, 4.0]) == {"t": None, "df": None, "p": 0.0}
    assert stats.significant([5.0, 5.0], [4.0, 4.0]) is True
    # One constant side is an ordinary test: the other side's variance carries it.
    one = stats.welch([5.0, 5.0, 5.0], [4.0, 4.5, 5.0])
    assert one["t"] == pytest.approx(0.5 / math.sqrt(0.25 / 3))
    assert one["df"] == pytest.approx(2.0)


@pytest.mark.parametrize(("a", "b"), [([1.0], [1.0, 2.0]), ([1.0, 2.0], []), ([], [])])
def test_welch_needs_two_values_a_side(a, b):
    assert stats.welch(a, b) == {"t": None, "df": None, "p": None}
    assert stats.significant(a, b) is None
