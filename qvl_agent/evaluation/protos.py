"""The two protobuf messages the official AndroidControl files hold, declared at run time.

* ``tf.train.Example`` (tensorflow/core/example/example.proto, feature.proto): an Example
  holds Features, a map from feature name to a Feature, which is one of BytesList, FloatList
  (packed floats) or Int64List (packed int64s).
* ``AndroidAccessibilityForest`` (google-deepmind/android_env, android_env/proto/a11y/):
  windows -> tree -> nodes, each node with its ``bounds_in_screen`` (left, top, right,
  bottom) and its texts and flags.

Both are declared here field number for field number (no TensorFlow, no android_env, no
generated code), in a private descriptor pool. Two deliberate wire-compatible choices: text
fields are declared ``bytes`` and decoded leniently (a stray invalid UTF-8 sequence must not
lose the screen), and the feature map is declared as its wire form, a repeated key/value entry.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from qvl_agent.evaluation.samples import DatasetError

try:
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    from google.protobuf.message import DecodeError
except ImportError:  # pragma: no cover - the eval extra installs it
    descriptor_pb2 = None

    class DecodeError(Exception):  # type: ignore[no-redef]
        pass

FieldSpec = tuple[str, int, str, str | None, bool]  # name, number, type, message type, repeated

_TYPES = {"int32": 5, "int64": 3, "float": 2, "bool": 8, "bytes": 12, "message": 11}

EXAMPLE_MESSAGES: dict[str, list[FieldSpec]] = {
    "BytesList": [("value", 1, "bytes", None, True)],
    "FloatList": [("value", 1, "float", None, True)],
    "Int64List": [("value", 1, "int64", None, True)],
    "Feature": [("bytes_list", 1, "message", "BytesList", False),
                ("float_list", 2, "message", "FloatList", False),
                ("int64_list", 3, "message", "Int64List", False)],
    "FeatureEntry": [("key", 1, "bytes", None, False), ("value", 2, "message", "Feature", False)],
    "Features": [("feature", 1, "message", "FeatureEntry", True)],
    "Example": [("features", 1, "message", "Features", False)],
}

FOREST_MESSAGES: dict[str, list[FieldSpec]] = {
    "ProtoRect": [("left", 1, "int32", None, False), ("top", 2, "int32", None, False),
                  ("right", 3, "int32", None, False), ("bottom", 4, "int32", None, False)],
    "AndroidAccessibilityNodeInfo": [
        ("unique_id", 1, "int32", None, False),
        ("bounds_in_screen", 2, "message", "ProtoRect", False),
        ("class_name", 3, "bytes", None, False),
        ("content_description", 4, "bytes", None, False),
        ("hint_text", 5, "bytes", None, False),
        ("package_name", 6, "bytes", None, False),
        ("text", 7, "bytes", None, False),
        ("view_id_resource_name", 10, "bytes", None, False),
        ("is_checkable", 12, "bool", None, False),
        ("is_clickable", 14, "bool", None, False),
        ("is_editable", 15, "bool", None, False),
        ("is_enabled", 16, "bool", None, False),
        ("is_long_clickable", 19, "bool", None, False),
        ("is_scrollable", 21, "bool", None, False),
        ("is_visible_to_user", 23, "bool", None, False),
        ("child_ids", 25, "int32", None, True),
        ("depth", 27, "int32", None, False),
        ("tooltip_text", 31, "bytes", None, False),
    ],
    "AndroidAccessibilityTree": [("nodes", 1, "message", "AndroidAccessibilityNodeInfo", True)],
    "AndroidAccessibilityWindowInfo": [
        ("bounds_in_screen", 1, "message", "ProtoRect", False),
        ("display_id", 2, "int32", None, False),
        ("id", 3, "int32", None, False),
        ("layer", 4, "int32", None, False),
        ("title", 5, "bytes", None, False),
        ("window_type", 6, "int32", None, False),  # an enum on the wire: a varint
        ("tree", 11, "message", "AndroidAccessibilityTree", False),
    ],
    "AndroidAccessibilityForest": [
        ("windows", 1, "message", "AndroidAccessibilityWindowInfo", True),
    ],
}


class ProtoError(ValueError):
    """Bytes that are not the message they should be."""


def _declare(pool, package: str, messages: dict[str, list[FieldSpec]]) -> None:
    proto = descriptor_pb2.FileDescriptorProto(name=f"qvl_agent/{package}.proto", package=package,
                                               syntax="proto2")
    for name, fields in messages.items():
        message = proto.message_type.add(name=name)
        for field_name, number, kind, type_name, repeated in fields:
            field = message.field.add(name=field_name, number=number, type=_TYPES[kind],
                                      label=3 if repeated else 1)
            if type_name:
                field.type_name = f".{package}.{type_name}"
    pool.Add(proto)


@cache
def _classes() -> dict[str, Any]:
    if descriptor_pb2 is None:
        raise DatasetError("reading TFRecord files needs protobuf: pip install 'qvl-agent[eval]'")
    pool = descriptor_pool.DescriptorPool()
    _declare(pool, "tensorflow", EXAMPLE_MESSAGES)
    _declare(pool, "android_env", FOREST_MESSAGES)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(name))
            for name in ("tensorflow.Example", "android_env.AndroidAccessibilityForest")}


def parse_example(data: bytes) -> dict[str, list]:
    """A serialized ``tf.train.Example`` as {feature name: its list of values}."""
    example = _parse("tensorflow.Example", data)
    features: dict[str, list] = {}
    for entry in example.features.feature:
        kind = _kind(entry.value)
        values = list(getattr(entry.value, kind).value) if kind else []
        features[entry.key.decode("utf-8", "replace")] = values  # a map: the last entry wins
    return features


def _kind(feature) -> str | None:
    for name in ("bytes_list", "float_list", "int64_list"):
        if feature.HasField(name):
            return name
    return None


def parse_forest(data: bytes):
    """A serialized ``AndroidAccessibilityForest`` message."""
    return _parse("android_env.AndroidAccessibilityForest", data)


def _parse(name: str, data: bytes):
    message = _classes()[name]()
    try:
        message.ParseFromString(data)
    except DecodeError as error:
        raise ProtoError(f"not a serialized {name.split('.')[-1]}: {error}") from None
    return message


def text(value: bytes) -> str:
    return value.decode("utf-8", "replace")
