"""Ensemble math of ``score`` against hand-computed values (OpenSearch formula:
opensearch-sparse-model-tuning-sample, scripts/train/bi_encoder_wrapper.py)."""

import numpy as np
import pytest

from splade_lightning.errors import ConfigError
from splade_lightning.scoring import MINMAX_EPS, ensemble_scores, minmax_normalize


def test_minmax_hand_computed():
    # min 1, max 5, range 4: (s - 1) / (4 + 1e-6)
    out = minmax_normalize([1.0, 3.0, 5.0, 2.0])
    expected = np.array([0.0, 2.0, 4.0, 1.0]) / (4.0 + 1e-6)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-15)
    assert out.max() < 1.0 and out.dtype == np.float64


def test_minmax_per_row_of_a_matrix():
    out = minmax_normalize(np.array([[0.0, 10.0], [-2.0, -1.0]]))
    np.testing.assert_allclose(out, [[0.0, 10.0 / (10.0 + MINMAX_EPS)], [0.0, 1.0 / (1.0 + MINMAX_EPS)]], atol=1e-15)


@pytest.mark.parametrize("row", [[7.0, 7.0, 7.0], [3.5], [0.0, 0.0]])
def test_minmax_constant_row_is_zeros_not_nan(row):
    out = minmax_normalize(row)
    assert np.isfinite(out).all() and (out == 0).all()


def test_minmax_rejects_an_empty_row():
    with pytest.raises(ConfigError, match="at least one score"):
        minmax_normalize([])


def test_ensemble_minmax_mean_scale_hand_computed():
    dense = [0.2, 0.8, 0.5]  # range 0.6 -> [0, 1, 0.5] (up to eps)
    sparse = [10.0, 4.0, 6.0]  # range 6 -> [1, 0, 1/3]
    out = ensemble_scores([dense, sparse], normalize="minmax", scale=30.0)
    n_dense = np.array([0.0, 0.6, 0.3]) / (0.6 + 1e-6)
    n_sparse = np.array([6.0, 0.0, 2.0]) / (6.0 + 1e-6)
    np.testing.assert_allclose(out, 30.0 * (n_dense + n_sparse) / 2, rtol=1e-12)
    np.testing.assert_allclose(out, [15.0, 15.0, 30.0 * (0.5 + 1 / 3) / 2], rtol=1e-5)


def test_ensemble_single_teacher_raw_is_identity_times_scale():
    row = [3.25, -1.5, 12.0]
    np.testing.assert_array_equal(ensemble_scores([row], normalize="none"), row)
    np.testing.assert_allclose(ensemble_scores([row], normalize="none", scale=2.0), [6.5, -3.0, 24.0])


def test_ensemble_mean_of_raw_scores():
    np.testing.assert_allclose(ensemble_scores([[1.0, 2.0], [3.0, 6.0]], normalize="none"), [2.0, 4.0])


def test_ensemble_constant_teacher_contributes_zeros():
    out = ensemble_scores([[5.0, 5.0], [0.0, 2.0]], normalize="minmax")
    np.testing.assert_allclose(out, [0.0, 0.5 * 2.0 / (2.0 + 1e-6)])


@pytest.mark.parametrize("rows, kwargs, match", [
    ([], {}, "at least one teacher"),
    ([[1.0, 2.0], [1.0]], {}, "same N candidates"),
    ([[1.0]], {"normalize": "zscore"}, "normalize='zscore'"),
])
def test_ensemble_rejects_bad_input(rows, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ensemble_scores(rows, **kwargs)
