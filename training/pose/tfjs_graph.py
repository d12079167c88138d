"""A TF.js graph model (``model.json`` and the weight files beside it) as the bytes of a TensorFlow GraphDef.

No TensorFlow: the messages come from :mod:`training.pose.tf_proto`. :func:`graph_def_from_tfjs`

1. parses ``modelTopology`` (``node``, ``versions``) into a GraphDef; a field it does not know is refused;
2. turns each weight of ``weightsManifest`` into the value of its ``Const`` node, reading the group's
   files (``paths``, relative to the JSON) as one buffer in manifest order and dequantising as TF.js does
   (``uint8`` / ``uint16``: ``q * scale + min``; ``float16``: a half float; rounded for ``int32``);
3. rewrites the fused ops TF.js's converter made (``_FusedConv2D``, ``FusedDepthwiseConv2dNative``,
   ``_FusedMatMul`` with ``fused_ops`` ``[BiasAdd]`` or ``[BiasAdd, <activation>]``) as the plain op, a
   ``BiasAdd`` and the activation, the last keeping the fused node's name so its consumers still find it.

The result is what OpenVINO's TensorFlow front end reads (``openvino.convert_model("graph.pb")``).
Every problem is a :class:`TfjsGraphError` of one line naming the file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from google.protobuf import json_format, message

from training.pose.tf_proto import DATA_TYPES, GraphDef

__all__ = ["TfjsGraphError", "graph_def_from_tfjs"]


class TfjsGraphError(ValueError):
    """A TF.js graph model this converter cannot turn into a GraphDef (one line naming the file)."""


# fused op -> the plain op it is made of (before its BiasAdd and activation)
_PLAIN_OPS = {
    "_FusedConv2D": "Conv2D",
    "FusedDepthwiseConv2dNative": "DepthwiseConv2dNative",
    "_FusedMatMul": "MatMul",
}
# activations that take one input and only the attribute T
_ACTIVATIONS = ("Relu", "Relu6", "Elu", "Sigmoid", "Tanh")
# attributes of the fused node that belong to the plain op (those it lacks are skipped)
_PLAIN_ATTRS = (
    "T",
    "strides",
    "padding",
    "data_format",
    "dilations",
    "explicit_paddings",
    "transpose_a",
    "transpose_b",
)

_WEIGHT_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}
_QUANTISED_DTYPES = {"uint8": np.uint8, "uint16": np.uint16, "float16": np.float16}
_TF_TYPES = {np.dtype(np.float32): "DT_FLOAT", np.dtype(np.int32): "DT_INT32", np.dtype(np.bool_): "DT_BOOL"}


def graph_def_from_tfjs(model_json: Path) -> bytes:
    """The serialised GraphDef of the TF.js graph model ``model_json`` (its weight files beside it)."""
    model_json = Path(model_json)
    document = _read_document(model_json)
    graph = _parse_topology(model_json, document["modelTopology"])
    _set_weights(model_json, graph, document["weightsManifest"])
    return _unfused(model_json, graph).SerializeToString()


def _read_document(model_json: Path) -> dict[str, Any]:
    try:
        document = json.loads(model_json.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TfjsGraphError(f"{model_json}: cannot read ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TfjsGraphError(f"{model_json}: not JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("format", "graph-model") != "graph-model":
        raise TfjsGraphError(f"{model_json}: not a TF.js graph model (format {document.get('format')!r})")
    for key, kind in (("modelTopology", dict), ("weightsManifest", list)):
        if not isinstance(document.get(key), kind):
            raise TfjsGraphError(f"{model_json}: expected a TF.js graph model with {key} ({kind.__name__})")
    return document


def _parse_topology(model_json: Path, topology: dict[str, Any]) -> message.Message:
    # "library" holds function definitions, which a frozen graph model does not use
    if topology.get("library", {}).get("function"):
        raise TfjsGraphError(
            f"{model_json}: modelTopology.library holds functions; only frozen graphs are read"
        )
    fields = {k: v for k, v in topology.items() if k in ("node", "versions")}
    try:
        return json_format.ParseDict(fields, GraphDef())
    except json_format.ParseError as exc:
        raise TfjsGraphError(
            f"{model_json}: modelTopology is not a GraphDef this converter reads ({exc})"
        ) from None


def _set_weights(model_json: Path, graph: message.Message, manifest: list[dict[str, Any]]) -> None:
    nodes = {node.name: node for node in graph.node}
    valued: set[str] = set()
    for group in manifest:
        buffer = _group_buffer(model_json, group)
        offset = 0
        for weight in group["weights"]:
            array, offset = _decode_weight(model_json, weight, buffer, offset)
            node = nodes.get(weight["name"])
            if node is None:
                node = graph.node.add(name=weight["name"], op="Const")
            elif node.op != "Const":
                raise TfjsGraphError(
                    f"{model_json}: weight {weight['name']!r} names a {node.op} node, not a Const"
                )
            _set_const(node, array)
            valued.add(node.name)
    missing = sorted(n.name for n in graph.node if n.op == "Const" and n.name not in valued)
    if missing:
        raise TfjsGraphError(
            f"{model_json}: weightsManifest has no value for {len(missing)} Const(s): {missing[0]!r}"
        )


def _group_buffer(model_json: Path, group: dict[str, Any]) -> bytes:
    """The group's weight files, joined; refused when shorter than its weights need."""
    paths = [_weight_path(model_json, p) for p in group.get("paths", [])]
    need = sum(_stored_size(model_json, w) for w in group.get("weights", []))
    try:
        buffer = b"".join(p.read_bytes() for p in paths)
    except OSError as exc:
        raise TfjsGraphError(
            f"{model_json}: cannot read weight file {exc.filename} ({exc.strerror})"
        ) from None
    if len(buffer) < need:
        names = ", ".join(p.name for p in paths)
        raise TfjsGraphError(
            f"{model_json}: weight file(s) {names} hold {len(buffer)} bytes, the weightsManifest needs {need}"
        )
    return buffer


def _weight_path(model_json: Path, name: str) -> Path:
    relative = PurePosixPath(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise TfjsGraphError(f"{model_json}: weight path {name!r} leaves the model's folder")
    return model_json.parent / relative


def _stored_size(model_json: Path, weight: dict[str, Any]) -> int:
    return _count(weight) * np.dtype(_stored_dtype(model_json, weight)).itemsize


def _count(weight: dict[str, Any]) -> int:
    return math.prod(int(s) for s in weight["shape"])


def _stored_dtype(model_json: Path, weight: dict[str, Any]) -> type:
    quantization = weight.get("quantization")
    table, dtype = (
        (_QUANTISED_DTYPES, quantization["dtype"]) if quantization else (_WEIGHT_DTYPES, weight["dtype"])
    )
    if dtype not in table or weight["dtype"] not in _WEIGHT_DTYPES:
        kind = f"quantised as {dtype}" if quantization else dtype
        raise TfjsGraphError(
            f"{model_json}: weight {weight['name']!r}: unknown dtype {weight['dtype']} ({kind})"
        )
    return table[dtype]


def _decode_weight(
    model_json: Path, weight: dict[str, Any], buffer: bytes, offset: int
) -> tuple[np.ndarray, int]:
    """The weight's values as its own dtype and shape, and the offset after it."""
    stored = np.frombuffer(buffer, _stored_dtype(model_json, weight), _count(weight), offset)
    offset += stored.nbytes
    quantization = weight.get("quantization")
    if quantization and quantization["dtype"] == "float16":
        values = stored.astype(np.float32)
    elif quantization:
        scale, low = np.float32(quantization["scale"]), np.float32(quantization["min"])
        values = stored.astype(np.float32) * scale + low
    else:
        values = stored
    dtype = _WEIGHT_DTYPES[weight["dtype"]]
    if quantization and dtype is np.int32:
        values = np.round(values)
    return values.astype(dtype).reshape([int(s) for s in weight["shape"]]), offset


def _set_const(node: message.Message, array: np.ndarray) -> None:
    tf_type = DATA_TYPES[_TF_TYPES[array.dtype]]
    node.attr["dtype"].type = tf_type
    tensor = node.attr["value"].tensor
    tensor.Clear()
    tensor.dtype = tf_type
    tensor.tensor_shape.SetInParent()  # a scalar's shape is present and empty
    for size in array.shape:
        tensor.tensor_shape.dim.add(size=size)
    tensor.tensor_content = np.ascontiguousarray(array).tobytes()


def _unfused(model_json: Path, graph: message.Message) -> message.Message:
    """A copy of ``graph`` with each fused node replaced by its plain op, BiasAdd and activation."""
    names = {node.name for node in graph.node}
    out = GraphDef()
    out.versions.CopyFrom(graph.versions)
    for node in graph.node:
        if node.op in _PLAIN_OPS:
            _add_unfused(model_json, node, names, out)
        else:
            out.node.append(node)
    return out


def _add_unfused(model_json: Path, node: message.Message, names: set[str], out: message.Message) -> None:
    """Add to ``out`` the plain op, BiasAdd and activation that the fused ``node`` stands for."""
    fused_ops = [s.decode() for s in node.attr["fused_ops"].list.s]
    activation = fused_ops[1:]
    if (
        fused_ops[:1] != ["BiasAdd"]
        or len(activation) > 1
        or (activation and activation[0] not in _ACTIVATIONS)
        or node.attr["num_args"].i != 1
        or len(node.input) != 3
    ):
        raise TfjsGraphError(
            f"{model_json}: node {node.name!r}: {node.op} with fused_ops {fused_ops} and "
            f"{len(node.input)} inputs is not supported (expected BiasAdd, optionally then one of "
            f"{', '.join(_ACTIVATIONS)}, on 3 inputs)"
        )
    plain_name = f"{node.name}/unfused_{_PLAIN_OPS[node.op]}"
    bias_name = f"{node.name}/unfused_BiasAdd" if activation else node.name
    for name in (plain_name, bias_name):
        if name != node.name and name in names:
            raise TfjsGraphError(f"{model_json}: cannot unfuse {node.name!r}: the graph already has {name!r}")
    plain = out.node.add(name=plain_name, op=_PLAIN_OPS[node.op], input=node.input[:2])
    for key in _PLAIN_ATTRS:
        if key in node.attr and not (key == "explicit_paddings" and not node.attr[key].list.i):
            plain.attr[key].CopyFrom(node.attr[key])
    bias = out.node.add(name=bias_name, op="BiasAdd", input=[plain_name, node.input[2]])
    bias.attr["T"].CopyFrom(node.attr["T"])
    if "data_format" in node.attr:
        bias.attr["data_format"].CopyFrom(node.attr["data_format"])
    if activation:
        act = out.node.add(name=node.name, op=activation[0], input=[bias_name])
        act.attr["T"].CopyFrom(node.attr["T"])
