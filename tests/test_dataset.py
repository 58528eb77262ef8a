"""Preprocessing (offsets, glitches, normalisation, alphabet) and the tf.data pipeline."""

import numpy as np
import pytest

from hwtf.data import dataset as dataset_lib
from hwtf.data import strokes as strokes_lib


def _set(lengths, seed=0):
    rng = np.random.default_rng(seed)
    offsets = []
    for n in lengths:
        o = rng.normal(10, 30, size=(n, 3)).astype(np.float32)
        o[:, 2] = rng.random(n) < 0.1
        o[-1, 2] = 1
        offsets.append(o)
    texts = ["".join(rng.choice(list("abc de"), size=1 + n // 20)) for n in lengths]
    return dataset_lib.HandwritingSet([f"l{i}" for i in range(len(lengths))], texts, offsets)


def test_offsets_round_trip_with_pen_up_on_stroke_ends():
    strokes = [np.array([[0, 0], [1, 2], [3, 3]], np.float32), np.array([[10, 0]], np.float32),
               np.array([[11, 1], [12, -1]], np.float32)]
    offsets = strokes_lib.strokes_to_offsets(strokes)
    np.testing.assert_array_equal(offsets[:, 2], [0, 0, 1, 1, 0, 1])
    np.testing.assert_array_equal(offsets[0], [0, 0, 0])
    np.testing.assert_array_equal(offsets[3, :2], [7, -3])
    back = strokes_lib.offsets_to_strokes(offsets)
    for a, b in zip(back, strokes):
        np.testing.assert_array_equal(a, b - strokes[0][0])


def test_glitches_are_removed_and_dots_kept():
    stroke = np.array([[0, 0], [10, 0], [900, 0], [20, 0], [30, 0]], np.float32)  # one wild sample
    dot = np.array([[50, 50]], np.float32)
    cleaned = strokes_lib.remove_glitches([stroke, dot])
    assert [len(s) for s in cleaned] == [2, 2, 1]
    assert all(np.all(np.hypot(*np.diff(s, axis=0).T) <= strokes_lib.GLITCH_STEP) for s in cleaned if len(s) > 1)


def test_normalizer_fits_training_offsets_and_inverts():
    data = _set([50, 80, 120])
    norm = strokes_lib.Normalizer.fit(data.offsets)
    together = np.concatenate([norm.normalize(o) for o in data.offsets])
    np.testing.assert_allclose(together[:, :2].mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(together[:, :2].std(0), 1, atol=1e-5)
    np.testing.assert_array_equal(together[:, 2], np.concatenate(data.offsets)[:, 2])
    np.testing.assert_allclose(norm.denormalize(norm.normalize(data.offsets[0])), data.offsets[0], rtol=1e-5, atol=1e-4)
    assert strokes_lib.Normalizer.from_dict(norm.as_dict()) == norm
    with pytest.raises(ValueError, match="zero spread"):
        strokes_lib.Normalizer.fit([np.zeros((5, 3), np.float32)])


def test_alphabet_policy_for_unknown_characters():
    alphabet = strokes_lib.Alphabet.from_texts(["hello", "world"], min_count=1)
    assert alphabet.chars == "dehlorw" and len(alphabet) == 9
    ids = alphabet.encode("hello, wörld")
    assert ids[5] == ids[8] == strokes_lib.Alphabet.UNKNOWN
    assert alphabet.unknown_chars("hello, wörld") == ", ö"
    assert alphabet.decode(alphabet.encode("low")) == "low"
    rare = strokes_lib.Alphabet.from_texts(["aab"], min_count=2)
    assert rare.chars == "a"
    with pytest.raises(ValueError, match="repeated"):
        strokes_lib.Alphabet("aa")


def test_batches_are_padded_with_masks_from_lengths():
    data = _set([30, 45, 60, 75, 90, 105, 120, 135])
    alphabet = strokes_lib.Alphabet.from_texts(data.texts)
    norm = strokes_lib.Normalizer.fit(data.offsets)
    ds = dataset_lib.make_dataset(data, alphabet, norm, batch_size=3, shuffle=False, repeat=False, bucket=False)
    batches = list(ds.as_numpy_iterator())
    assert [len(b["lengths"]) for b in batches] == [3, 3, 2]
    first = batches[0]
    assert first["offsets"].shape == (3, 60, 3) and first["lengths"].tolist() == [30, 45, 60]
    np.testing.assert_array_equal(first["offsets"][0, 30:], 0)
    np.testing.assert_allclose(first["offsets"][1, :45], norm.normalize(data.offsets[1]), rtol=1e-6)
    assert first["chars"].shape[1] == first["char_lengths"].max()
    np.testing.assert_array_equal(first["chars"][0, : first["char_lengths"][0]], alphabet.encode(data.texts[0]))
    assert np.all(first["chars"][0, first["char_lengths"][0] :] == strokes_lib.Alphabet.PAD)


def test_bucketing_groups_similar_lengths_and_the_order_follows_the_seed():
    data = _set(list(range(20, 420, 10)))  # 40 lines
    alphabet = strokes_lib.Alphabet.from_texts(data.texts)
    norm = strokes_lib.Normalizer.fit(data.offsets)
    make = lambda seed: dataset_lib.make_dataset(data, alphabet, norm, batch_size=4, seed=seed)
    first = [b["lengths"].tolist() for b in make(1).take(12).as_numpy_iterator()]
    again = [b["lengths"].tolist() for b in make(1).take(12).as_numpy_iterator()]
    other = [b["lengths"].tolist() for b in make(2).take(12).as_numpy_iterator()]
    assert first == again and first != other
    # Buckets at the length quartiles: each batch spans at most a quarter of the range.
    assert all(max(b) - min(b) <= 110 for b in first)
    # A resumed run skips what it has seen and goes on in the same order.
    resumed = [b["lengths"].tolist() for b in make(1).skip(5).take(7).as_numpy_iterator()]
    assert resumed == first[5:]


def test_more_buckets_pad_less_and_validation_can_batch_by_length():
    lengths = [int(n) for n in np.random.default_rng(0).integers(20, 400, 64)]
    data = _set(lengths)
    alphabet = strokes_lib.Alphabet.from_texts(data.texts)
    norm = strokes_lib.Normalizer.fit(data.offsets)

    def padded(**kwargs):  # mean longest line of 48 batches of 4
        ds = dataset_lib.make_dataset(data, alphabet, norm, batch_size=4, seed=0, **kwargs)
        return np.mean([b["lengths"].max() for b in ds.take(48).as_numpy_iterator()])

    none, four, sixteen = padded(bucket=False), padded(buckets=4), padded(buckets=16)
    assert none > four > sixteen > np.mean(lengths)
    # Every line once, in order of length: the least padding a pass can have.
    ds = dataset_lib.make_dataset(data, alphabet, norm, batch_size=4, shuffle=False, repeat=False, bucket=False,
                                  by_length=True)
    batches = [b["lengths"].tolist() for b in ds.as_numpy_iterator()]
    assert sum(batches, []) == sorted(lengths)
    with pytest.raises(ValueError, match="cannot shuffle"):
        dataset_lib.make_dataset(data, alphabet, norm, batch_size=4, by_length=True)


def test_chunks_and_max_length():
    data = _set([100, 250])
    alphabet = strokes_lib.Alphabet.from_texts(data.texts)
    norm = strokes_lib.Normalizer.fit(data.offsets)
    ds = dataset_lib.make_dataset(data, alphabet, norm, batch_size=8, shuffle=False, repeat=False,
                                  bucket=False, chunk_length=100)
    (batch,) = list(ds.as_numpy_iterator())
    assert sorted(batch["lengths"].tolist()) == [50, 100, 100, 100]
    ds = dataset_lib.make_dataset(data, alphabet, norm, batch_size=8, shuffle=False, repeat=False,
                                  bucket=False, max_length=200)
    (batch,) = list(ds.as_numpy_iterator())
    assert batch["lengths"].tolist() == [100]
    with pytest.raises(ValueError, match="no lines left"):
        dataset_lib.make_dataset(data, alphabet, norm, batch_size=8, max_length=10)


def test_capital_runs_are_two_capitals_in_a_row():
    assert dataset_lib.has_capital_run("the BBC said")
    assert dataset_lib.has_capital_run("SCALE WAR REQUIRED MONEY ,")
    assert not dataset_lib.has_capital_run("The Time, Because I Said So")
    assert not dataset_lib.has_capital_run("A B C")


def test_repeat_lines_repeats_the_chosen_lines_and_keeps_the_rest_once():
    data = _set([30, 40, 50, 60])
    data.texts[1], data.texts[3] = "the BBC", "NATO and TV"
    repeated = dataset_lib.repeat_lines(data, dataset_lib.has_capital_run, 3)
    assert repeated.ids == ["l0", "l1", "l2", "l3", "l1", "l3", "l1", "l3"]
    assert repeated.texts[4] == "the BBC" and repeated.offsets[5] is data.offsets[3]
    assert dataset_lib.repeat_lines(data, dataset_lib.has_capital_run, 1).ids == data.ids
    with pytest.raises(ValueError, match="times=0: must be at least 1"):
        dataset_lib.repeat_lines(data, dataset_lib.has_capital_run, 0)


def test_load_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unknown dataset"):
        dataset_lib.load("mnist")
    with pytest.raises(ValueError, match="needs --data_dir"):
        dataset_lib.load("iamondb", ["trainset"])
    with pytest.raises(ValueError, match="unknown synthetic split"):
        dataset_lib.load("synthetic", ["trainset"], cache_dir="")
    with pytest.raises(ValueError, match="unknown IAM-OnDB split"):
        dataset_lib.load("iamondb", ["train"], data_dir="/nonexistent")


def test_synthetic_set_loads_through_the_cache(tmp_path):
    first = dataset_lib.load("synthetic", "train", cache_dir=str(tmp_path), num_lines=6)
    again = dataset_lib.load("synthetic", ["train"], cache_dir=str(tmp_path), num_lines=6)
    assert len(first) == 6 and first.ids == again.ids and first.texts == again.texts
    assert all(np.array_equal(a, b) for a, b in zip(first.offsets, again.offsets))
    assert len(list(tmp_path.glob("*.npz"))) == 1
