"""docs/nll_scale.py: the NLL's shift when offsets are scored at another scale."""

import importlib.util
import math
import os

import numpy as np

_SPEC = importlib.util.spec_from_file_location(
    "nll_scale", os.path.join(os.path.dirname(__file__), "..", "docs", "nll_scale.py"))
nll_scale = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(nll_scale)


def _gaussian_nll(z, sigma):
    """Summed -log N(z; 0, diag(sigma^2)) over the rows of z."""
    return float(np.sum(0.5 * (z / sigma) ** 2 + np.log(sigma) + 0.5 * math.log(2 * math.pi)))


def test_the_shift_is_the_change_of_variables_of_one_density():
    # One density over raw offsets d (a Gaussian), read in two normalised
    # units: z = d / s and z' = d / s'. Its NLL in each differs by exactly
    # what scale_shift says, and a larger scale reads as a lower NLL.
    rng = np.random.default_rng(0)
    spread = np.array([40.0, 35.0])
    d = rng.normal(size=(600, 2)) * spread
    s, s2 = (41.9, 37.1), (44.0, 36.0)
    nll = _gaussian_nll(d / s, spread / s)
    nll2 = _gaussian_nll(d / s2, spread / s2)
    assert math.isclose(nll2 - nll, nll_scale.scale_shift(len(d), s2, s), rel_tol=1e-9, abs_tol=1e-6)
    assert nll_scale.scale_shift(len(d), (2 * s[0], 2 * s[1]), s) < 0
    assert math.isclose(nll_scale.scale_shift(615.1, (1.01, 1.01), (1.0, 1.0)), -12.24, abs_tol=0.005)
