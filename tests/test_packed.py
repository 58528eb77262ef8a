"""hwtf.packed's codes, apart from a checkpoint (a whole one packs and
unpacks in tests/test_train.py)."""
import numpy as np
import pytest

from hwtf import packed


@pytest.mark.parametrize("shape", [(7, 12), (5,), (3, 4, 2)], ids=["a kernel", "a bias", "three axes"])
def test_delta8_codes_keep_each_weight_within_half_its_rows_scale(shape):
    rng = np.random.default_rng(0)
    near = rng.normal(0, 0.1, shape).astype(np.float32)
    # Rows of very different reach, and one that does not differ at all.
    reach = np.geomspace(1e-6, 1e-1, shape[0]) if len(shape) > 1 else np.array([1e-3])
    difference = rng.standard_t(3, shape) * reach.reshape((-1,) + (1,) * (len(shape) - 1))
    if len(shape) > 1:
        difference[0] = 0.0
    x = (near + difference).astype(np.float32)
    codes, scales = packed.to_delta8(x, near)
    assert codes.dtype == np.int8 and codes.shape == x.shape and scales.dtype == np.float32
    assert scales.shape == ((shape[0],) if len(shape) > 1 else (1,))
    back = packed.from_delta8(codes, scales, near)
    assert back.dtype == np.float32
    rows = shape[0] if len(shape) > 1 else 1
    error = np.abs(back - x).reshape(rows, -1)
    largest = np.abs((x.astype(np.float64) - near).reshape(rows, -1)).max(axis=1, keepdims=True)
    assert np.all(error <= largest / 254 * 1.001 + 1e-8)  # float32 rounding of near + difference aside
    # Each row's largest difference takes the largest code: the row's whole range is used.
    widest = np.abs(codes.reshape(rows, -1).astype(np.int16)).max(axis=1)
    assert np.all(widest[largest[:, 0] > 0] == 127)
    if len(shape) > 1:
        np.testing.assert_array_equal(back[0], near[0])  # no difference, none made


def test_delta8_refuses_what_it_cannot_code():
    with pytest.raises(ValueError, match=r"\(2, 3\) against \(3, 2\)"):
        packed.to_delta8(np.zeros((2, 3), np.float32), np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="finite"):
        packed.to_delta8(np.array([1.0, np.nan], np.float32), np.zeros(2, np.float32))


def test_pack_refuses_weights_both_from_and_near_the_average_or_near_what_it_leaves_out(tmp_path):
    with pytest.raises(ValueError, match="from the average or near it, not both"):
        packed.pack(str(tmp_path / "ckpt-1"), str(tmp_path / "x.npz"), weights_from="ema", weights_near="ema")
    with pytest.raises(ValueError, match="near 'ema', which is left out"):
        packed.pack(str(tmp_path / "ckpt-1"), str(tmp_path / "x.npz"), leave_out=("ema",), weights_near="ema")
