"""A training checkpoint packed to be committed: `ckpt-N.packed.npz`.

The training campaign keeps one resumable checkpoint in the repository after
each stint (`docs/save_stint.py`), and the repository may grow by only about
50 MB a stint. Two thirds of a checkpoint with Adam's state is Adam's two
moments: a Graves-size (3x400) checkpoint is 45 MB, a 3x512 one 72 MB.
Packed, every tensor is kept as it is except the optimizer's moments, which
are rounded to bfloat16 (float32's exponent, 8 bits of mantissa: at most
2^-9 relative error, 2^-8 for the subnormal few, and no loss of range):
30 MB and 48 MB, 26 MB and about 42 MB as git compresses them. A run resumed from a
packed checkpoint takes its next steps as if its learning rate were a few
tenths of a percent off for the weights whose moments rounded most; the
weights themselves, the step, Adam's iteration count, the learning rate, the
skipped updates and the best score are exact.

A wider network does not fit so: a 3x640 one (9.1 million parameters) packs
to 73 MB. `drop_momentum` (`docs/save_stint.py --drop_momentum`) leaves out
the optimizer's first moments too, keeping only their shapes, and `unpack`
gives them back as zeros: 55 MB for 3x640, about 49 MB as git compresses
it once trained (git takes 7% off the 3x512 file's weights and 19% off its
moments). Adam's first moment is a moving average of the gradient with a
memory of about ten steps (beta_1 = 0.9), so a run resumed with it at zero
takes its first updates smaller (the first a tenth the size, the tenth two
thirds) and then goes on as it would have; its second moment (beta_2 =
0.999, a memory of a thousand steps) is kept, rounded as above.

A run that keeps a moving average of its weights (`hwtf.train
--ema_decay`) needs both to go on as one run would: the weights to train
from, the average to go on averaging, validate and ship. As big as the
weights, the average would take a 3x640 checkpoint to 91 MB. So
`weights_near="ema"` keeps the average as it is and the weights as int8
codes of their difference from it, one scale a row (`to_delta8`: each
weight within 1/254 of its row's largest difference), and `log8_moments` keeps Adam's second
moments as 8-bit codes of their logarithm (`to_log8`: each within 8% of
itself, its square root, which Adam divides by, within 4%; they travel so to
a lent GPU): 4 + 1 + 1 bytes a weight with `drop_momentum`, as much as the
weights and the second moments in bfloat16 alone (`docs/save_stint.py`'s
way from 2026-12-07).

`unpack` writes the checkpoint back in TensorFlow's own format (the same
keys, the same object graph), so that whatever reads checkpoints reads it,
and `hwtf.train.run_checkpoints` unpacks a run's packed checkpoint when the
run has no newer one: `cp -r checkpoints/iamondb runs/iamondb` and train.
Everything is numpy arrays, read with `allow_pickle=False`.
"""

from __future__ import annotations

import os
import re

import numpy as np

PACKED = re.compile(r"ckpt-(\d+)\.packed\.npz")
CHECKPOINT = re.compile(r"ckpt-(\d+)\.index")
# Name prefixes in the .npz of the tensors stored in another form.
_BFLOAT16 = "bfloat16:"  # float32 rounded to bfloat16, as uint16 bits
_BYTES = "bytes:"  # a scalar string (the object graph), as uint8
_ZEROS = "zeros:"  # a float32 tensor left out, to come back as zeros: its shape, as int64
_LOG8 = "log8:"  # a non-negative float32 tensor (a second moment) as `to_log8`'s uint8 codes
_LOG8_RANGE = "log8range:"  # ... and their [lo, hi], float64
_DELTA8 = "delta8:"  # a float32 tensor as `to_delta8`'s int8 codes against another tensor,
_DELTA8_SCALES = "delta8scales:"  # ... their scales, float32,
_DELTA8_NEAR = "delta8near:"  # ... and that tensor's key, as uint8 (it is kept as it is)
_GRAPH = "_CHECKPOINTABLE_OBJECT_GRAPH"
# Where a Keras optimizer's slot variables (Adam's m and v, RMSprop's
# averages) lie in a checkpoint; its iteration count and learning rate are
# saved under their own names.
_SLOTS = "optimizer/_variables/"


def is_moment(key: str, value: np.ndarray) -> bool:
    """Whether the checkpoint's tensor `key` is one that packing rounds."""
    return key.startswith(_SLOTS) and value.dtype == np.float32 and value.ndim > 0


def momentum_keys(graph: bytes) -> set[str]:
    """The checkpoint keys of the optimizer's first moments (Adam's m,
    RMSprop's momentum: the slots Keras names `..._momentum`) in a
    checkpoint with object graph `graph`."""
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    proto = trackable_object_graph_pb2.TrackableObjectGraph()
    proto.ParseFromString(graph)
    return {a.checkpoint_key for node in proto.nodes for a in node.attributes
            if a.checkpoint_key.startswith(_SLOTS) and a.full_name.endswith("_momentum")}


def to_bfloat16_bits(x: np.ndarray) -> np.ndarray:
    """float32 -> the uint16 bits of the nearest bfloat16 (ties to even)."""
    bits = np.ascontiguousarray(x, np.float32).view(np.uint32)
    rounded = bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))
    return (rounded >> np.uint32(16)).astype(np.uint16)


def from_bfloat16_bits(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)


# Below 2**LOG8_FLOOR a second moment's square root (1e-9) is under 1% of
# Adam's epsilon, so such moments are coded as that floor.
LOG8_FLOOR = -60.0


def to_log8(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative `x` as `(codes, [lo, hi])`: uint8 codes 1 to 255 of
    log2(x) spread evenly from lo (its smallest, at least LOG8_FLOOR) to hi
    (its largest), 0 for 0. `from_log8` gives each value back within a
    factor 2**((hi - lo) / 508) of itself (8% for Adam's v over the 3x640
    network's widest range, 4% for its square root, which Adam divides
    by), or 2**lo where it was smaller."""
    x = np.asarray(x, np.float32)
    if not np.all(np.isfinite(x)) or np.any(x < 0):
        raise ValueError("log8 codes non-negative finite values only")
    codes = np.zeros(x.shape, np.uint8)
    positive = x > 0
    if not positive.any():
        return codes, np.zeros(2)
    logs = np.log2(x[positive].astype(np.float64))
    hi = float(logs.max())
    lo = min(max(float(logs.min()), LOG8_FLOOR), hi)
    span = hi - lo
    codes[positive] = 1 + np.rint(np.clip(logs - lo, 0.0, span) * (254 / span if span else 0.0))
    return codes, np.array([lo, hi])


def from_log8(codes: np.ndarray, lo_hi: np.ndarray) -> np.ndarray:
    """`to_log8`'s codes back as float32."""
    lo, hi = float(lo_hi[0]), float(lo_hi[1])
    values = np.exp2(lo + (codes.astype(np.float64) - 1) * ((hi - lo) / 254))
    return np.where(codes == 0, 0.0, values).astype(np.float32)


def to_delta8(x: np.ndarray, near: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float32 `x` as int8 codes of its difference from `near` (of its
    shape), one scale a row (the first axis; one for a vector): `(codes,
    scales)`. `from_delta8` gives each value back within half its row's
    scale, 1/254 of the row's largest difference."""
    x, near = np.asarray(x, np.float32), np.asarray(near, np.float32)
    if x.shape != near.shape:
        raise ValueError(f"delta8 codes a tensor against one of its shape, not {x.shape} against {near.shape}")
    rows = x.shape[0] if x.ndim > 1 else 1
    difference = (x.astype(np.float64) - near).reshape(rows, -1)
    if not np.all(np.isfinite(difference)):
        raise ValueError("delta8 codes finite values only")
    scales = (np.abs(difference).max(axis=1, initial=0.0) / 127).astype(np.float32)
    steps = np.where(scales > 0, scales, 1).astype(np.float64)[:, None]
    codes = np.clip(np.rint(difference / steps), -127, 127).astype(np.int8)
    return codes.reshape(x.shape), scales


def from_delta8(codes: np.ndarray, scales: np.ndarray, near: np.ndarray) -> np.ndarray:
    """`to_delta8`'s codes back as float32, given the same `near`."""
    rows = codes.shape[0] if codes.ndim > 1 else 1
    difference = codes.reshape(rows, -1).astype(np.float32) * np.asarray(scales, np.float32)[:, None]
    return (np.asarray(near, np.float32) + difference.reshape(codes.shape)).astype(np.float32)


def leave_out_objects(graph: bytes, names: tuple[str, ...]) -> tuple[bytes, set[str]]:
    """A checkpoint's object graph without the root's children `names` (and
    what only they lead to), and the checkpoint keys of the tensors that go
    with them. The nodes keep their numbers; those left out keep nothing."""
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    if not names:
        return graph, set()
    proto = trackable_object_graph_pb2.TrackableObjectGraph()
    proto.ParseFromString(graph)
    root = proto.nodes[0]
    kept = [c for c in root.children if c.local_name not in names]
    del root.children[:]
    root.children.extend(kept)
    reachable, todo = {0}, [0]
    while todo:
        node = proto.nodes[todo.pop()]
        ids = [c.node_id for c in node.children] + [s.slot_variable_node_id for s in node.slot_variables]
        for i in ids:
            if i not in reachable:
                reachable.add(i)
                todo.append(i)
    dropped = set()
    for i, node in enumerate(proto.nodes):
        if i not in reachable:
            dropped.update(a.checkpoint_key for a in node.attributes)
            node.Clear()
    return proto.SerializeToString(), dropped


def stand_ins(graph: bytes, weights: str, average: str) -> dict[str, str]:
    """`{key: stand-in}`: for each tensor of the root's child `weights`
    (`model`) in a checkpoint with object graph `graph`, the checkpoint key
    of the tensor at the same place under the child `average` (`ema`).
    Matched by the object graph, not by the keys, whose names follow
    whichever path reaches a variable first (the optimizer's, for some)."""
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    proto = trackable_object_graph_pb2.TrackableObjectGraph()
    proto.ParseFromString(graph)
    roots = {c.local_name: c.node_id for c in proto.nodes[0].children}
    for name in (weights, average):
        if name not in roots:
            raise ValueError(f"the checkpoint has no {name!r}")
    found, todo, seen = {}, [(roots[weights], roots[average], weights)], set()
    while todo:
        mine, theirs, path = todo.pop()
        if mine in seen:
            continue
        seen.add(mine)
        keys = {a.name: a.checkpoint_key for a in proto.nodes[theirs].attributes}
        children = {c.local_name: c.node_id for c in proto.nodes[theirs].children}
        for attribute in proto.nodes[mine].attributes:
            if attribute.name not in keys:
                raise ValueError(f"the checkpoint's {average!r} has nothing where {path} has a tensor")
            found[attribute.checkpoint_key] = keys[attribute.name]
        for child in proto.nodes[mine].children:
            if child.local_name not in children:
                raise ValueError(f"the checkpoint's {average!r} has nothing where {path}/{child.local_name} is")
            todo.append((child.node_id, children[child.local_name], f"{path}/{child.local_name}"))
    return found


def pack(prefix: str, path: str, leave_out: tuple[str, ...] = (), weights_from: str | None = None,
         drop_momentum: bool = False, weights_near: str | None = None, log8_moments: bool = False) -> dict:
    """Packs the checkpoint `prefix` (`.../ckpt-N`) into `path`, replaced
    whole (a kill mid-write leaves any earlier file as it was), without the
    objects `leave_out` names (the root's children: a training checkpoint's
    `ema`, say). With `weights_from="ema"`, the model's weights are stored
    as the weights' moving average's (a run resumed from the file starts
    from the average). With `weights_near="ema"`, the average is kept as it
    is and the model's weights as int8 codes of their difference from it
    (`to_delta8`). With `drop_momentum`, the optimizer's first moments
    are kept as their shapes only and unpack as zeros; with `log8_moments`,
    its moments that are nowhere negative (Adam's second) are kept as
    `to_log8`'s codes instead of bfloat16 (see the module's docstring).
    Returns `{"tensors": n, "rounded": n, "zeroed": n, "coded": n, "bytes": size}`,
    `rounded` the moments in bfloat16, `coded` the tensors in 8-bit codes."""
    import tensorflow as tf

    if weights_from and weights_near:
        raise ValueError("pack the model's weights from the average or near it, not both")
    if weights_near in leave_out:
        raise ValueError(f"the weights are packed near {weights_near!r}, which is left out")
    reader = tf.train.load_checkpoint(prefix)
    keys, shapes = reader.get_variable_to_dtype_map(), reader.get_variable_to_shape_map()
    original = reader.get_tensor(_GRAPH)
    swapped = stand_ins(original, "model", weights_from) if weights_from else {}
    near = stand_ins(original, "model", weights_near) if weights_near else {}
    graph, dropped = leave_out_objects(original, tuple(leave_out))
    momenta = momentum_keys(original) if drop_momentum else set()
    if drop_momentum and not momenta:
        raise ValueError(f"{prefix}: no optimizer first moments (slots named ..._momentum) to leave out")
    arrays, rounded, zeroed, coded = {}, 0, 0, 0
    for key in sorted(keys):
        if key in dropped:
            continue
        value = graph if key == _GRAPH else reader.get_tensor(swapped.get(key, key))
        for other in (swapped.get(key), near.get(key)):
            if other is not None and (shapes[other], keys[other]) != (shapes[key], keys[key]):
                raise ValueError(f"{prefix}: {other} is {keys[other].name}{shapes[other]}, "
                                 f"unlike {key} ({keys[key].name}{shapes[key]})")
        if isinstance(value, bytes):
            arrays[_BYTES + key] = np.frombuffer(value, np.uint8)
            continue
        value = np.asarray(value)
        if value.dtype == object:
            raise ValueError(f"{prefix}: {key} is a {value.dtype} tensor of shape {value.shape}, which cannot be packed")
        if key in near:
            # The average, kept as it is: read once where it came first.
            reference = arrays[near[key]] if near[key] in arrays else reader.get_tensor(near[key])
            arrays[_DELTA8 + key], arrays[_DELTA8_SCALES + key] = to_delta8(value, reference)
            arrays[_DELTA8_NEAR + key] = np.frombuffer(near[key].encode(), np.uint8)
            coded += 1
        elif is_moment(key, value):
            if not np.all(np.isfinite(value)):
                raise ValueError(f"{prefix}: {key} is not finite")
            if key in momenta:
                arrays[_ZEROS + key] = np.asarray(value.shape, np.int64)
                zeroed += 1
            elif log8_moments and not np.any(value < 0):
                arrays[_LOG8 + key], arrays[_LOG8_RANGE + key] = to_log8(value)
                coded += 1
            else:
                arrays[_BFLOAT16 + key] = to_bfloat16_bits(value)
                rounded += 1
        else:
            arrays[key] = value
    tmp = path + ".tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return {"tensors": len(arrays), "rounded": rounded, "zeroed": zeroed, "coded": coded,
            "bytes": os.path.getsize(path)}


def unpack(path: str, prefix: str) -> str:
    """Writes the packed checkpoint `path` as the TensorFlow checkpoint
    `prefix` (its `.index` last, so that a cut-short write is no checkpoint)."""
    import tensorflow as tf

    names, tensors = [], []
    with np.load(path, allow_pickle=False) as data:
        files, plain = set(data.files), {}
        for name in data.files:
            if name.startswith((_LOG8_RANGE, _DELTA8_SCALES, _DELTA8_NEAR)):
                continue  # read with their codes
            value = data[name]
            if name.startswith(_BYTES):
                names.append(name[len(_BYTES):])
                tensors.append(tf.constant(value.tobytes()))
            elif name.startswith(_BFLOAT16):
                names.append(name[len(_BFLOAT16):])
                tensors.append(tf.constant(from_bfloat16_bits(value)))
            elif name.startswith(_ZEROS):
                names.append(name[len(_ZEROS):])
                tensors.append(tf.zeros(value, tf.float32))
            elif name.startswith(_LOG8):
                key = name[len(_LOG8):]
                names.append(key)
                tensors.append(tf.constant(from_log8(value, data[_LOG8_RANGE + key])))
            elif name.startswith(_DELTA8):
                key = name[len(_DELTA8):]
                near = data[_DELTA8_NEAR + key].tobytes().decode()
                if near not in files:
                    raise ValueError(f"{path}: {key} is coded against {near}, which is not kept as it is")
                names.append(key)
                reference = plain[near] if near in plain else data[near]
                tensors.append(tf.constant(from_delta8(value, data[_DELTA8_SCALES + key], reference)))
            else:
                names.append(name)
                tensors.append(tf.constant(value))
                plain[name] = value  # what delta8 codes may be against, read once
    if _GRAPH not in names:
        raise ValueError(f"{path}: not a packed checkpoint (no object graph)")
    tmp = prefix + ".unpacking"
    tf.raw_ops.SaveV2(prefix=tmp, tensor_names=names, shape_and_slices=[""] * len(names), tensors=tensors)
    data_suffix = ".data-00000-of-00001"
    os.replace(tmp + data_suffix, prefix + data_suffix)
    os.replace(tmp + ".index", prefix + ".index")
    return prefix


def _numbered(directory: str, pattern: re.Pattern) -> dict:
    """`{N: path}` of the files in `directory` whose names match `pattern`
    (N its first group); none if there is no such folder."""
    found = {}
    for name in os.listdir(directory) if os.path.isdir(directory) else []:
        match = pattern.fullmatch(name)
        if match:
            found[int(match.group(1))] = os.path.join(directory, name)
    return found


def packed_checkpoints(directory: str) -> dict:
    """`{step: path}` of the packed checkpoints in `directory`."""
    return _numbered(directory, PACKED)


def checkpoint_prefixes(directory: str) -> dict:
    """`{step: prefix}` of the TensorFlow checkpoints `ckpt-N` in `directory`."""
    return {step: path[: -len(".index")] for step, path in _numbered(directory, CHECKPOINT).items()}


def unpack_into(directory: str, out_dir: str | None = None) -> str | None:
    """Unpacks the newest packed checkpoint of `directory` as `ckpt-N` in
    `out_dir` (by default beside it), unless a checkpoint of that step or a
    later one is already there; returns the prefix written, or None."""
    packed = packed_checkpoints(directory)
    if not packed:
        return None
    step = max(packed)
    out_dir = out_dir or directory
    if any(n >= step for n in checkpoint_prefixes(out_dir)):
        return None
    return unpack(packed[step], os.path.join(out_dir, f"ckpt-{step}"))
