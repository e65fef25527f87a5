"""Statistics that hold up at the 3 to 10 repeats a benchmark run has.

Two questions are asked of a handful of figures: where does the median of a test
lie (``median_ci``), and do two runs of a test differ by more than their noise
(``welch``, ``significant``). Both are exact for small samples rather than
large-sample approximations. Pure, stdlib only, no Ansible imports.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

# The level at which a difference between two runs is called significant (two-sided).
SIGNIFICANCE = 0.05
# The coverage median_ci aims for.
CONFIDENCE = 0.95


def _tail(n: int, k: int) -> float:
    """P(B <= k) for B ~ Binomial(n, 1/2)."""
    return sum(math.comb(n, i) for i in range(k + 1)) / 2**n


def median_ci(values: Sequence[float], confidence: float = CONFIDENCE) -> dict[str, float | None]:
    """A distribution-free confidence interval of the median, from order statistics.

    With the values sorted x(1) <= ... <= x(n), the interval [x(k), x(n+1-k)] holds
    the true median unless at least n+1-k values fall on one side of it; each value
    falls below the median with probability 1/2, so the coverage is
    1 - 2 * P(B <= k-1) with B ~ Binomial(n, 1/2), whatever the distribution.
    The narrowest such pair whose coverage reaches ``confidence`` (95 %) is returned. Below n = 6
    no pair reaches 95 %: then [min, max] with the coverage it really has,
    1 - 2 * 0.5**n (75 % at n = 3, 87.5 % at 4, 93.75 % at 5).

    Not a percentile bootstrap: at n = 3 a bootstrap of the median resamples
    only the three values, so its 2.5 and 97.5 percentiles are the min and the
    max, and it calls [min, max] a 95 % interval while that interval holds the
    median only 75 % of the time. Order statistics say what is really known.

    Returns ``{"low", "high", "confidence"}`` (confidence as a fraction); all
    None below two values.
    """
    n = len(values)
    if n < 2:
        return {"low": None, "high": None, "confidence": None}
    ordered = sorted(values)
    k = 1  # 1-based rank of the low end; the high end is n + 1 - k
    while k + 1 <= n - k and 1 - 2 * _tail(n, k) >= confidence:
        k += 1
    return {"low": ordered[k - 1], "high": ordered[n - k], "confidence": 1 - 2 * _tail(n, k - 1)}


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function, by the modified Lentz method."""
    tiny, eps = 1e-300, 1e-15
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 1000):
        # Even step, then odd step, of the fraction's terms.
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1) < eps:
            return result
    raise ArithmeticError(f"incomplete beta fraction did not converge (a={a}, b={b}, x={x})")


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), for a, b > 0 and 0 <= x <= 1."""
    if not 0 <= x <= 1:
        raise ValueError(f"incomplete beta: x must lie in [0, 1], got {x}")
    if x in (0, 1):
        return float(x)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    # The fraction converges fast below the mean a / (a + b); above it, use the symmetry I_x(a,b) = 1 - I_1-x(b,a).
    if x < (a + 1) / (a + b + 2):
        return front * _beta_fraction(a, b, x) / a
    return 1 - front * _beta_fraction(b, a, 1 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """Two-sided p value of Student's t: P(|T| >= |t|) = I_{df/(df+t^2)}(df/2, 1/2)."""
    if df <= 0:
        raise ValueError(f"Student t: degrees of freedom must be positive, got {df}")
    return incomplete_beta(df / 2, 0.5, df / (df + t * t))


def welch(a: Sequence[float], b: Sequence[float]) -> dict[str, float | None]:
    """Welch's unequal-variance t-test of two samples, two-sided.

    t = (mean(a) - mean(b)) / sqrt(var(a)/na + var(b)/nb), with the
    Welch-Satterthwaite degrees of freedom; p from Student's t distribution.
    Returns ``{"t", "df", "p"}``, all None when either side has fewer than two
    values. When both samples are constant the statistic is undefined (t and
    df None): p is 1.0 for the same constant and 0.0 for different ones.
    """
    if len(a) < 2 or len(b) < 2:
        return {"t": None, "df": None, "p": None}
    mean_a, mean_b = statistics.fmean(a), statistics.fmean(b)
    share_a, share_b = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    if share_a + share_b == 0:
        return {"t": None, "df": None, "p": 1.0 if mean_a == mean_b else 0.0}
    t = (mean_a - mean_b) / math.sqrt(share_a + share_b)
    df = (share_a + share_b) ** 2 / (share_a**2 / (len(a) - 1) + share_b**2 / (len(b) - 1))
    return {"t": t, "df": df, "p": t_two_sided_p(t, df)}


def significant(a: Sequence[float], b: Sequence[float]) -> bool | None:
    """Whether two samples differ at the SIGNIFICANCE level (Welch); None when it cannot be told."""
    p = welch(a, b)["p"]
    return None if p is None else p < SIGNIFICANCE
