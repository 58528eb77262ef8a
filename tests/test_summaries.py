"""`hwtf.summaries.plateau`: where a flattening validation curve is heading."""

import numpy as np
import pytest

from hwtf import summaries


def test_plateau_finds_the_floor_a_curve_is_heading_for():
    steps = np.arange(5000, 15001, 500)
    truth = -1060.0 + 900.0 * (steps / 1000.0) ** -1.5
    noisy = truth + np.random.default_rng(0).normal(0.0, 0.5, steps.size)
    fit = summaries.plateau(steps, noisy)
    assert abs(fit["floor"] - -1060.0) < 3.0 and abs(fit["exponent"] - 1.5) < 0.3
    assert 0.2 < fit["rms"] < 1.0 and not fit["at_edge"]
    # The last validation is 5 nats above the floor: the fit does not just
    # return the best point seen.
    assert fit["floor"] < min(noisy) - 2.0


def test_plateau_of_a_flat_curve_is_its_level():
    fit = summaries.plateau([1000, 2000, 3000, 4000, 5000], [-1040.0] * 5)
    assert fit["floor"] == pytest.approx(-1040.0, abs=1e-6) and fit["rms"] < 1e-6


def test_plateau_says_when_the_data_do_not_pin_the_bend():
    # A straight fall bends at no exponent of the grid: the best is its edge.
    fit = summaries.plateau([1000, 2000, 3000, 4000, 5000], [-1000.0, -1010.0, -1020.0, -1030.0, -1040.0])
    assert fit["at_edge"]


def test_plateau_needs_four_validations():
    with pytest.raises(ValueError, match="at least 4 validations"):
        summaries.plateau([1000, 2000, 3000], [-1.0, -2.0, -3.0])
