"""The frame reader's one-pass op (trainer_module/ops/frame_records.cc) against TensorFlow's
parser and against protobuf's own reading of records encoded every way protobuf allows."""

import glob
import os

import numpy as np
import pytest
import tensorflow as tf

from trainer_module.features import FeatureSpec
from trainer_module.frame_records import (
    FRAME_RECORDS_OP_VARIABLE,
    decode_frame_records,
    has_frame_records_op,
)
from trainer_module.reader import parse_frame_examples

SPEC = FeatureSpec.from_flags("rgb,audio", "1024,128")
REAL_FRAMES = os.path.join(os.path.dirname(__file__), "..", "data", "sample", "frame")


def test_the_environment_image_has_the_op():
    assert os.environ.get(FRAME_RECORDS_OP_VARIABLE), "env.Dockerfile sets it"
    assert has_frame_records_op()


def _as_dense(value):
    return tf.sparse.to_dense(value) if isinstance(value, tf.SparseTensor) else value


@pytest.mark.parametrize("max_frames", [300, 50])
def test_the_op_reads_real_shards_as_tensorflows_parser(max_frames):
    files = sorted(glob.glob(os.path.join(REAL_FRAMES, "*", "*.tfrecord")))
    serialized = next(iter(tf.data.TFRecordDataset(files).batch(64)))
    by_tensorflow = parse_frame_examples(serialized, SPEC, with_labels=True,
                                         max_frames=max_frames, with_ids=True)
    by_op = parse_frame_examples(serialized, SPEC, with_labels=True, max_frames=max_frames,
                                 with_ids=True, in_saved_model=False)
    assert set(by_op) == set(by_tensorflow)
    for key, value in by_tensorflow.items():
        np.testing.assert_array_equal(_as_dense(by_op[key]), _as_dense(value), err_msg=key)
    assert by_op["rgb"].shape[1] == min(max_frames, 300)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field; its length a varint padded to 3 bytes, as protobuf allows."""
    n = len(payload)
    return bytes([number << 3 | 2, n & 0x7F | 0x80, n >> 7 & 0x7F | 0x80, n >> 14]) + payload


def _unusual_record(rng: np.random.Generator, frames: int) -> tuple[bytes, dict]:
    """A SequenceExample no TensorFlow writer makes, and the frames protobuf reads from it:
    padded varints, an empty BytesList before each frame's, an unknown field, the feature
    lists in two fields, and a first 'rgb' entry that the second one replaces."""
    codes = {"rgb": rng.integers(0, 256, (frames, 1024), np.uint8),
             "audio": rng.integers(0, 256, (frames, 128), np.uint8)}

    def feature_list(rows):
        return b"".join(_field(1, _field(1, b"") + _field(1, _field(1, row.tobytes())))
                        + bytes([15 << 3, 7]) for row in rows)

    def entry(name, rows):
        return _field(1, _field(1, name.encode()) + _field(2, feature_list(rows)))

    record = (_field(1, b"")
              + _field(2, entry("rgb", codes["rgb"][:1]) + entry("audio", codes["audio"]))
              + _field(2, entry("rgb", codes["rgb"])))
    return record, codes


def test_the_op_reads_every_encoding_as_protobuf_does():
    rng = np.random.default_rng(0)
    records, expected = zip(*[_unusual_record(rng, frames) for frames in (3, 7, 1)], strict=True)
    for record, codes in zip(records, expected, strict=True):
        parsed = tf.train.SequenceExample.FromString(record)  # protobuf's reading
        for name, rows in codes.items():
            frames = parsed.feature_lists.feature_list[name].feature
            assert [f.bytes_list.value[0] for f in frames] == [row.tobytes() for row in rows]
    (rgb, audio), num_frames = decode_frame_records(tf.constant(records), SPEC.names,
                                                    SPEC.sizes, max_frames=5)
    np.testing.assert_array_equal(num_frames, [3, 5, 1])
    assert rgb.shape == (3, 5, 1024) and audio.shape == (3, 5, 128)
    for video, codes in enumerate(expected):
        length = int(num_frames[video])
        np.testing.assert_array_equal(rgb[video, :length], codes["rgb"][:length])
        np.testing.assert_array_equal(audio[video, :length], codes["audio"][:length])
        assert (rgb[video, length:].numpy() == codes["rgb"][length - 1]).all(), (
            "past its last frame a video repeats it")


def _sequence(rgb_sizes: list[int], audio_sizes: list[int]) -> bytes:
    sequence = tf.train.SequenceExample()
    for name, sizes in (("rgb", rgb_sizes), ("audio", audio_sizes)):
        for size in sizes:
            sequence.feature_lists.feature_list[name].feature.add().bytes_list.value.append(
                b"\x01" * size)
    return sequence.SerializeToString()


@pytest.mark.parametrize("in_saved_model", [True, False])
@pytest.mark.parametrize("record, message", [
    (_sequence([1024], [100]), "frame feature 'audio': each frame must be 128 bytes"),
    (_sequence([1024, 1024], [128]),
     "frame feature 'audio': each video needs as many frames of it as of 'rgb'"),
])
def test_bad_frames_name_the_feature_on_both_paths(in_saved_model, record, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        parse_frame_examples(tf.constant([record]), SPEC, in_saved_model=in_saved_model)


@pytest.mark.parametrize("record", [b"\x12\x05abc", b"\x12", b"\x0b\x00"])
def test_a_record_that_is_not_a_sequence_example_is_named(record):
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="record 1 of the batch is not a serialized tf.SequenceExample"):
        decode_frame_records(tf.constant([_sequence([1024], [128]), record]), SPEC.names,
                             SPEC.sizes, max_frames=300)


def test_without_the_op_the_reader_parses_with_tensorflow_and_says_so(monkeypatch, caplog):
    from trainer_module import frame_records

    files = sorted(glob.glob(os.path.join(REAL_FRAMES, "*", "*.tfrecord")))
    serialized = next(iter(tf.data.TFRecordDataset(files).batch(4)))
    by_op = parse_frame_examples(serialized, SPEC, in_saved_model=False)
    monkeypatch.delenv(FRAME_RECORDS_OP_VARIABLE)
    frame_records._decode_frame_records.cache_clear()
    try:
        with caplog.at_level("WARNING"):
            by_tensorflow = parse_frame_examples(serialized, SPEC, in_saved_model=False)
        assert not has_frame_records_op()
        assert f"{FRAME_RECORDS_OP_VARIABLE} is not set" in caplog.text
        for key, value in by_op.items():
            np.testing.assert_array_equal(by_tensorflow[key], value, err_msg=key)

        monkeypatch.setenv(FRAME_RECORDS_OP_VARIABLE, "/nowhere/frame_records.so")
        frame_records._decode_frame_records.cache_clear()
        with pytest.raises(FileNotFoundError, match=f"{FRAME_RECORDS_OP_VARIABLE}=/nowhere"):
            has_frame_records_op()
    finally:
        frame_records._decode_frame_records.cache_clear()
