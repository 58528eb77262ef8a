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
         drop_momentum: bool = False) -> dict:
    """Packs the checkpoint `prefix` (`.../ckpt-N`) into `path`, replaced
    whole (a kill mid-write leaves any earlier file as it was), without the
    objects `leave_out` names (the root's children: a training checkpoint's
    `ema`, say). With `weights_from="ema"`, the model's weights are stored
    as the weights' moving average's (a run resumed from the file starts
    from the average). With `drop_momentum`, the optimizer's first moments
    are kept as their shapes only and unpack as zeros (see the module's
    docstring). Returns `{"tensors": n, "rounded": n, "zeroed": n, "bytes": size}`."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(prefix)
    keys, shapes = reader.get_variable_to_dtype_map(), reader.get_variable_to_shape_map()
    original = reader.get_tensor(_GRAPH)
    swapped = stand_ins(original, "model", weights_from) if weights_from else {}
    graph, dropped = leave_out_objects(original, tuple(leave_out))
    momenta = momentum_keys(original) if drop_momentum else set()
    if drop_momentum and not momenta:
        raise ValueError(f"{prefix}: no optimizer first moments (slots named ..._momentum) to leave out")
    arrays, rounded, zeroed = {}, 0, 0
    for key in sorted(keys):
        if key in dropped:
            continue
        value = graph if key == _GRAPH else reader.get_tensor(swapped.get(key, key))
        if key in swapped and (shapes[swapped[key]], keys[swapped[key]]) != (shapes[key], keys[key]):
            raise ValueError(f"{prefix}: {swapped[key]} is {keys[swapped[key]].name}{shapes[swapped[key]]}, "
                             f"unlike {key} ({keys[key].name}{shapes[key]})")
        if isinstance(value, bytes):
            arrays[_BYTES + key] = np.frombuffer(value, np.uint8)
            continue
        value = np.asarray(value)
        if value.dtype == object:
            raise ValueError(f"{prefix}: {key} is a {value.dtype} tensor of shape {value.shape}, which cannot be packed")
        if is_moment(key, value):
            if not np.all(np.isfinite(value)):
                raise ValueError(f"{prefix}: {key} is not finite")
            if key in momenta:
                arrays[_ZEROS + key] = np.asarray(value.shape, np.int64)
                zeroed += 1
                continue
            arrays[_BFLOAT16 + key] = to_bfloat16_bits(value)
            rounded += 1
        else:
            arrays[key] = value
    tmp = path + ".tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return {"tensors": len(arrays), "rounded": rounded, "zeroed": zeroed,
            "bytes": os.path.getsize(path)}


def unpack(path: str, prefix: str) -> str:
    """Writes the packed checkpoint `path` as the TensorFlow checkpoint
    `prefix` (its `.index` last, so that a cut-short write is no checkpoint)."""
    import tensorflow as tf

    names, tensors = [], []
    with np.load(path, allow_pickle=False) as data:
        for name in data.files:
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
            else:
                names.append(name)
                tensors.append(tf.constant(value))
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
