"""Which of the synthesis network's weights belong to which layer's units,
by the names `hwtf.jax_stint.weight_names` gives them: the rows that read a
layer's h, and the weights of the units past the first so many of each
layer (a widening's new ones, `hwtf.widen`). Numpy alone, for `hwtf.train`,
`hwtf.widen` and the JAX stint alike.
"""

from __future__ import annotations

import numpy as np


def reading_rows(name: str, rows: int, layers: int, units: int) -> dict[int, int]:
    """`{n: first row}` of the rows of weight `name` (`rows` of them) that
    read layer n's h, `units` rows from there: a layer's own recurrence
    (all its rows), an upper layer's kernel (the layer below's, its last
    rows), the window (the first layer's) and the mixture head (every
    layer's, in order)."""
    n = int(name.rsplit("_", 1)[1]) if name.startswith(("kernel_", "recurrent_kernel_")) else None
    if name.startswith("recurrent_kernel_"):
        return {n: 0}
    if name.startswith("kernel_") and n > 0:
        return {n - 1: rows - units}
    if name == "window_kernel":
        return {0: 0}
    if name == "head_kernel":
        return {layer: layer * units for layer in range(layers)}
    return {}


def new_unit_mask(name: str, shape: tuple, layers: int, old_units: int, units: int) -> np.ndarray:
    """Where weight `name` (of `shape`, in a network of `units` a layer)
    belongs to a unit past the first `old_units` of its layer: the columns
    of its gates (a layer's kernel, recurrent kernel and bias) and the rows
    that read its h (`reading_rows`). What `hwtf.widen.widen_arrays` added in widening
    from `old_units`; everything else is the narrower network's."""
    mask = np.zeros(shape, bool)
    if name.startswith(("kernel_", "recurrent_kernel_", "bias_")):
        for gate in range(4):
            mask[..., gate * units + old_units : (gate + 1) * units] = True
    if len(shape) == 2:
        for start in reading_rows(name, shape[0], layers, units).values():
            mask[start + old_units : start + units] = True
    return mask


def rate_scales(shapes: dict, layers: int, old_units: int, units: int, rate: float) -> dict:
    """`{name: float32 array}`: `rate` for each weight of a unit past the
    first `old_units` of its layer (`new_unit_mask`), 1 elsewhere, for the
    weights that have any; what `hwtf.train --new_units_rate` multiplies
    each update by, so that a widening's new units learn at a higher rate."""
    scales = {}
    for name, shape in shapes.items():
        mask = new_unit_mask(name, tuple(shape), layers, old_units, units)
        if mask.any():
            scales[name] = np.where(mask, np.float32(rate), np.float32(1.0))
    return scales
