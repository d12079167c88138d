"""The few TensorFlow protobuf messages a frozen graph needs, built with protobuf alone (no TensorFlow).

``GraphDef``, ``NodeDef``, ``AttrValue``, ``TensorProto``, ``TensorShapeProto`` and the ``DataType`` enum,
declared with protobuf's descriptor API under the package ``tensorflow`` with TensorFlow's own field
numbers (``tensorflow/core/framework/*.proto``), so the bytes they serialise are a GraphDef that
TensorFlow and OpenVINO's TensorFlow front end read. Only the fields a TF.js graph model uses are declared;
a field missing here makes :func:`json_format.ParseDict` refuse the topology instead of dropping it.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message, message_factory

__all__ = ["DATA_TYPES", "GraphDef"]

_F = descriptor_pb2.FieldDescriptorProto

# tensorflow/core/framework/types.proto (the plain types; the _REF variants never appear in a frozen graph)
DATA_TYPES: dict[str, int] = {
    "DT_INVALID": 0, "DT_FLOAT": 1, "DT_DOUBLE": 2, "DT_INT32": 3, "DT_UINT8": 4, "DT_INT16": 5,
    "DT_INT8": 6, "DT_STRING": 7, "DT_COMPLEX64": 8, "DT_INT64": 9, "DT_BOOL": 10, "DT_QINT8": 11,
    "DT_QUINT8": 12, "DT_QINT32": 13, "DT_BFLOAT16": 14, "DT_QINT16": 15, "DT_QUINT16": 16, "DT_UINT16": 17,
    "DT_COMPLEX128": 18, "DT_HALF": 19, "DT_RESOURCE": 20, "DT_VARIANT": 21, "DT_UINT32": 22, "DT_UINT64": 23,
}  # fmt: skip

# message -> its fields: (name, number, type, repeated, message or enum type). Nested names use a dot.
_MESSAGES: dict[str, list[tuple[str, int, int, bool, str | None]]] = {
    "TensorShapeProto": [
        ("dim", 2, _F.TYPE_MESSAGE, True, "TensorShapeProto.Dim"),
        ("unknown_rank", 3, _F.TYPE_BOOL, False, None),
    ],
    "TensorShapeProto.Dim": [
        ("size", 1, _F.TYPE_INT64, False, None),
        ("name", 2, _F.TYPE_STRING, False, None),
    ],
    "TensorProto": [
        ("dtype", 1, _F.TYPE_ENUM, False, "DataType"),
        ("tensor_shape", 2, _F.TYPE_MESSAGE, False, "TensorShapeProto"),
        ("version_number", 3, _F.TYPE_INT32, False, None),
        ("tensor_content", 4, _F.TYPE_BYTES, False, None),
        ("float_val", 5, _F.TYPE_FLOAT, True, None),
        ("double_val", 6, _F.TYPE_DOUBLE, True, None),
        ("int_val", 7, _F.TYPE_INT32, True, None),
        ("string_val", 8, _F.TYPE_BYTES, True, None),
        ("int64_val", 10, _F.TYPE_INT64, True, None),
        ("bool_val", 11, _F.TYPE_BOOL, True, None),
        ("half_val", 13, _F.TYPE_INT32, True, None),
    ],
    "AttrValue": [  # one of: list, s, i, f, b, type, shape, tensor, placeholder
        ("list", 1, _F.TYPE_MESSAGE, False, "AttrValue.ListValue"),
        ("s", 2, _F.TYPE_BYTES, False, None),
        ("i", 3, _F.TYPE_INT64, False, None),
        ("f", 4, _F.TYPE_FLOAT, False, None),
        ("b", 5, _F.TYPE_BOOL, False, None),
        ("type", 6, _F.TYPE_ENUM, False, "DataType"),
        ("shape", 7, _F.TYPE_MESSAGE, False, "TensorShapeProto"),
        ("tensor", 8, _F.TYPE_MESSAGE, False, "TensorProto"),
        ("placeholder", 9, _F.TYPE_STRING, False, None),
    ],
    "AttrValue.ListValue": [
        ("s", 2, _F.TYPE_BYTES, True, None),
        ("i", 3, _F.TYPE_INT64, True, None),
        ("f", 4, _F.TYPE_FLOAT, True, None),
        ("b", 5, _F.TYPE_BOOL, True, None),
        ("type", 6, _F.TYPE_ENUM, True, "DataType"),
        ("shape", 7, _F.TYPE_MESSAGE, True, "TensorShapeProto"),
        ("tensor", 8, _F.TYPE_MESSAGE, True, "TensorProto"),
    ],
    "NodeDef": [
        ("name", 1, _F.TYPE_STRING, False, None),
        ("op", 2, _F.TYPE_STRING, False, None),
        ("input", 3, _F.TYPE_STRING, True, None),
        ("device", 4, _F.TYPE_STRING, False, None),
        ("attr", 5, _F.TYPE_MESSAGE, True, "NodeDef.AttrEntry"),
    ],
    "NodeDef.AttrEntry": [
        ("key", 1, _F.TYPE_STRING, False, None),
        ("value", 2, _F.TYPE_MESSAGE, False, "AttrValue"),
    ],
    "VersionDef": [
        ("producer", 1, _F.TYPE_INT32, False, None),
        ("min_consumer", 2, _F.TYPE_INT32, False, None),
        ("bad_consumers", 3, _F.TYPE_INT32, True, None),
    ],
    "GraphDef": [
        ("node", 1, _F.TYPE_MESSAGE, True, "NodeDef"),
        ("versions", 4, _F.TYPE_MESSAGE, False, "VersionDef"),
    ],
}
_ONEOF = {"AttrValue": "value"}
_MAP_ENTRIES = {"NodeDef.AttrEntry"}


def _file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    fd = descriptor_pb2.FileDescriptorProto(
        name="i3dmtn_tf_graph.proto", package="tensorflow", syntax="proto3"
    )
    enum = fd.enum_type.add(name="DataType")
    for name, number in DATA_TYPES.items():
        enum.value.add(name=name, number=number)
    declared: dict[str, descriptor_pb2.DescriptorProto] = {}
    for full_name, fields in _MESSAGES.items():
        outer, _, inner = full_name.rpartition(".")
        proto = declared[outer].nested_type.add(name=inner) if outer else fd.message_type.add(name=inner)
        declared[full_name] = proto
        if full_name in _ONEOF:
            proto.oneof_decl.add(name=_ONEOF[full_name])
        if full_name in _MAP_ENTRIES:
            proto.options.map_entry = True
        label = {True: _F.LABEL_REPEATED, False: _F.LABEL_OPTIONAL}
        for name, number, kind, repeated, type_name in fields:
            field = proto.field.add(name=name, number=number, type=kind, label=label[repeated])
            if type_name:
                field.type_name = f".tensorflow.{type_name}"
            if full_name in _ONEOF:
                field.oneof_index = 0
    return fd


def _message_class(name: str) -> type[message.Message]:
    pool = descriptor_pool.DescriptorPool()
    pool.Add(_file_descriptor())
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"tensorflow.{name}"))


GraphDef = _message_class("GraphDef")
