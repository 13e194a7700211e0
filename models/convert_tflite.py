"""Convert a TFLite vision model to ONNX, or check a conversion against a TFLite runtime.

    python convert_tflite.py model.tflite model.onnx
    python convert_tflite.py --check model.tflite model.onnx   # needs ai-edge-litert and onnxruntime

Covers the operators of the models Candor uses (MediaPipe face mesh and iris, FER mini-Xception):
CONV_2D, DEPTHWISE_CONV_2D, MAX_POOL_2D, ADD, PRELU, PAD, MEAN, SOFTMAX, RESHAPE and DEQUANTIZE. Anything else
stops the conversion with the operator's name, so a new model never converts silently wrong.

TFLite is channels-last (NHWC), ONNX's convolutions channels-first (NCHW). Inputs and outputs keep their TFLite
shapes (callers feed NHWC images), except that their first dimension, TFLite's batch of 1, becomes `batch`, so
one call can analyse the frames of many sessions; inside, every 4-D activation is NCHW, with one Transpose at each 4-D input and
output. Weights are stored as float32: fp16 tensors behind DEQUANTIZE are folded, int8 weights (per-channel
scale and zero point) are dequantised. `--check` runs both models on the same inputs and compares them.
"""

import sys

import model_cli
import numpy as np
import onnx
import tflite
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
TO_NCHW = (0, 3, 1, 2)
TO_NHWC = (0, 2, 3, 1)
NHWC_AXIS_IN_NCHW = {0: 0, 1: 2, 2: 3, 3: 1}
DTYPES = {
    tflite.TensorType.FLOAT32: np.float32,
    tflite.TensorType.FLOAT16: np.float16,
    tflite.TensorType.INT8: np.int8,
    tflite.TensorType.UINT8: np.uint8,
    tflite.TensorType.INT32: np.int32,
    tflite.TensorType.INT64: np.int64,
}
OPERATOR_NAMES = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}


class ConversionError(Exception):
    pass


def options(op, kind):
    """The operator's builtin options table as the given generated class."""
    table = op.BuiltinOptions()
    if table is None:
        return None
    parsed = kind()
    parsed.Init(table.Bytes, table.Pos)
    return parsed


class Converter:
    def __init__(self, data: bytes):
        if len(data) < 8 or data[4:8] != b"TFL3":
            raise ConversionError("not a TFLite model (no TFL3 identifier)")
        self.model = tflite.Model.GetRootAsModel(data, 0)
        if self.model.SubgraphsLength() != 1:
            raise ConversionError("only single-subgraph models are supported")
        self.graph = self.model.Subgraphs(0)
        self.nodes = []
        self.initializers = []
        self.constants = {}  # tensor index -> numpy array (TFLite layout)
        self.names = {}  # tensor index -> ONNX value name
        self.nchw = set()  # ONNX value names held channels-first
        self.used_names = set()

    # ---- tensors -------------------------------------------------------------------------------------------

    def tensor(self, index):
        return self.graph.Tensors(index)

    def shape(self, index):
        return [int(d) for d in self.tensor(index).ShapeAsNumpy()]

    def unique(self, base):
        name, n = base, 1
        while name in self.used_names:
            name, n = f"{base}_{n}", n + 1
        self.used_names.add(name)
        return name

    def value_name(self, index):
        if index not in self.names:
            self.names[index] = self.unique(self.tensor(index).Name().decode())
        return self.names[index]

    def constant(self, index):
        """The tensor's value if it is constant (float32 unless it holds integers), else None."""
        if index in self.constants:
            return self.constants[index]
        tensor = self.tensor(index)
        buffer = self.model.Buffers(tensor.Buffer())
        if buffer is None or buffer.DataLength() == 0:
            return None
        dtype = DTYPES.get(tensor.Type())
        if dtype is None:
            raise ConversionError(f"tensor {tensor.Name().decode()}: unsupported type {tensor.Type()}")
        array = np.frombuffer(buffer.DataAsNumpy().tobytes(), dtype=dtype).reshape(self.shape(index))
        quantization = tensor.Quantization()
        if dtype in (np.int8, np.uint8) and quantization is not None and quantization.ScaleLength():
            array = dequantize(array, quantization)
        elif dtype == np.float16:
            array = array.astype(np.float32)
        self.constants[index] = array
        return array

    def add_initializer(self, base, array):
        name = self.unique(base)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def activation(self, index):
        """The ONNX name of a non-constant input, which must already have been produced."""
        if index not in self.names:
            raise ConversionError(f"tensor {self.tensor(index).Name().decode()} is used before it is produced")
        return self.names[index]

    def operand(self, index, like_nchw):
        """An input that may be constant; constants broadcast against an NCHW activation are re-laid out."""
        array = self.constant(index)
        if array is None:
            return self.activation(index)
        if like_nchw:
            array = array.reshape((1,) * (4 - array.ndim) + array.shape).transpose(TO_NCHW)
        return self.add_initializer(self.tensor(index).Name().decode(), array.astype(np.float32))

    def node(self, op_type, inputs, outputs, **attributes):
        self.nodes.append(helper.make_node(op_type, inputs, outputs, name=outputs[0], **attributes))

    def to_layout(self, name, nchw):
        """`name` transposed if needed so that it is channels-first (nchw=True) or channels-last."""
        if (name in self.nchw) == nchw:
            return name
        out = self.unique(f"{name}_{'nchw' if nchw else 'nhwc'}")
        self.node("Transpose", [name], [out], perm=list(TO_NCHW if nchw else TO_NHWC))
        if nchw:
            self.nchw.add(out)
        return out

    def fused(self, result_index, raw, activation):
        """Emit the fused activation (if any) that turns `raw` into the operator's output tensor."""
        out = self.value_name(result_index)
        if activation == tflite.ActivationFunctionType.NONE:
            self.nodes[-1].output[0] = out
            self.nodes[-1].name = out
        elif activation == tflite.ActivationFunctionType.RELU:
            self.node("Relu", [raw], [out])
        elif activation == tflite.ActivationFunctionType.RELU6:
            low = self.add_initializer("zero", np.array(0, np.float32))
            high = self.add_initializer("six", np.array(6, np.float32))
            self.node("Clip", [raw, low, high], [out])
        elif activation == tflite.ActivationFunctionType.TANH:
            self.node("Tanh", [raw], [out])
        else:
            raise ConversionError(f"fused activation {activation} is not supported")
        return out

    # ---- operators ------------------------------------------------------------------------------------------

    def convert(self):
        for position in range(self.graph.OutputsLength()):  # keep output names free for the final nodes
            self.used_names.add(self.tensor(self.graph.Outputs(position)).Name().decode())
        for position in range(self.graph.InputsLength()):
            index = self.graph.Inputs(position)
            name = self.value_name(index)
            if len(self.shape(index)) == 4:
                self.names[index] = self.to_layout(name, nchw=True)

        for position in range(self.graph.OperatorsLength()):
            op = self.graph.Operators(position)
            code = self.model.OperatorCodes(op.OpcodeIndex())
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            operator = OPERATOR_NAMES.get(builtin, str(builtin))
            handler = getattr(self, f"op_{operator.lower()}", None)
            if handler is None:
                raise ConversionError(f"operator {operator} is not supported")
            inputs = [int(i) for i in op.InputsAsNumpy()]
            outputs = [int(i) for i in op.OutputsAsNumpy()]
            handler(op, inputs, outputs)

        graph_outputs = []
        for position in range(self.graph.OutputsLength()):
            index = self.graph.Outputs(position)
            produced = self.activation(index)
            final = self.tensor(index).Name().decode()
            if produced in self.nchw:
                self.node("Transpose", [produced], [final], perm=list(TO_NHWC))
            else:
                self.node("Identity", [produced], [final])
            graph_outputs.append(helper.make_tensor_value_info(final, TensorProto.FLOAT, batched(self.shape(index))))

        graph_inputs = [
            helper.make_tensor_value_info(self.tensor(i).Name().decode(), TensorProto.FLOAT, batched(self.shape(i)))
            for i in (self.graph.Inputs(p) for p in range(self.graph.InputsLength()))
        ]
        graph = helper.make_graph(self.nodes, "candor", graph_inputs, graph_outputs, self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="candor convert_tflite")
        model.ir_version = 8
        onnx.checker.check_model(model)
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        for output, expected in zip(inferred.graph.output, graph_outputs):
            if output.type != expected.type:
                raise ConversionError(f"output {output.name}: inferred {output.type}, TFLite says {expected.type}")
        return model

    def op_dequantize(self, op, inputs, outputs):
        array = self.constant(inputs[0])
        if array is None:
            raise ConversionError("DEQUANTIZE of a non-constant tensor is not supported")
        self.constants[outputs[0]] = array.astype(np.float32)

    def convolution(self, op, inputs, outputs, weights, group, opts):
        x = self.activation(inputs[0])
        if x not in self.nchw:
            raise ConversionError(f"convolution input {x} is not an image")
        kernel = weights.shape[2:]
        strides = [opts.StrideH(), opts.StrideW()]
        dilations = [opts.DilationHFactor(), opts.DilationWFactor()]
        pads = padding(opts.Padding(), self.shape(inputs[0])[1:3], kernel, strides, dilations)
        names = [x, self.add_initializer(self.tensor(inputs[1]).Name().decode(), weights)]
        if len(inputs) > 2 and inputs[2] >= 0:
            bias = self.constant(inputs[2])
            names.append(self.add_initializer(self.tensor(inputs[2]).Name().decode(), bias.astype(np.float32)))
        raw = self.unique(f"{self.tensor(outputs[0]).Name().decode()}_raw")
        self.node("Conv", names, [raw], kernel_shape=list(kernel), strides=strides, dilations=dilations,
                  pads=pads, group=group)
        self.nchw.add(self.fused(outputs[0], raw, opts.FusedActivationFunction()))

    def op_conv_2d(self, op, inputs, outputs):
        weights = self.constant(inputs[1]).astype(np.float32).transpose(TO_NCHW)  # OHWI -> OIHW
        self.convolution(op, inputs, outputs, weights, 1, options(op, tflite.Conv2DOptions))

    def op_depthwise_conv_2d(self, op, inputs, outputs):
        weights = self.constant(inputs[1]).astype(np.float32).transpose(3, 0, 1, 2)  # 1HW(C*M) -> (C*M)1HW
        channels = self.shape(inputs[0])[3]
        self.convolution(op, inputs, outputs, weights, channels, options(op, tflite.DepthwiseConv2DOptions))

    def op_max_pool_2d(self, op, inputs, outputs):
        opts = options(op, tflite.Pool2DOptions)
        x = self.to_layout(self.activation(inputs[0]), nchw=True)
        kernel = [opts.FilterHeight(), opts.FilterWidth()]
        strides = [opts.StrideH(), opts.StrideW()]
        pads = padding(opts.Padding(), self.shape(inputs[0])[1:3], kernel, strides, [1, 1])
        raw = self.unique(f"{self.tensor(outputs[0]).Name().decode()}_raw")
        self.node("MaxPool", [x], [raw], kernel_shape=kernel, strides=strides, pads=pads)
        self.nchw.add(self.fused(outputs[0], raw, opts.FusedActivationFunction()))

    def op_add(self, op, inputs, outputs):
        opts = options(op, tflite.AddOptions)
        image = len(self.shape(outputs[0])) == 4 and any(
            self.constant(i) is None and self.names.get(i) in self.nchw for i in inputs)
        operands = [self.operand(i, like_nchw=image) for i in inputs]
        if image:
            operands = [self.to_layout(n, nchw=True) if self.constant(i) is None else n
                        for i, n in zip(inputs, operands)]
        raw = self.unique(f"{self.tensor(outputs[0]).Name().decode()}_raw")
        self.node("Add", operands, [raw])
        out = self.fused(outputs[0], raw, opts.FusedActivationFunction() if opts else 0)
        if image:
            self.nchw.add(out)

    def op_prelu(self, op, inputs, outputs):
        x = self.activation(inputs[0])
        image = x in self.nchw
        out = self.value_name(outputs[0])
        self.node("PRelu", [x, self.operand(inputs[1], like_nchw=image)], [out])
        if image:
            self.nchw.add(out)

    def op_pad(self, op, inputs, outputs):
        x = self.activation(inputs[0])
        paddings = self.constant(inputs[1])
        if paddings is None:
            raise ConversionError("PAD with computed paddings is not supported")
        paddings = paddings.astype(np.int64)
        if x in self.nchw:
            paddings = paddings[list(TO_NCHW)]
        pads = self.add_initializer("pads", np.concatenate([paddings[:, 0], paddings[:, 1]]))
        out = self.value_name(outputs[0])
        self.node("Pad", [x, pads], [out], mode="constant")
        if x in self.nchw:
            self.nchw.add(out)

    def op_mean(self, op, inputs, outputs):
        x = self.activation(inputs[0])
        axes = [int(a) % len(self.shape(inputs[0])) for a in np.atleast_1d(self.constant(inputs[1]))]
        keep = bool(options(op, tflite.ReducerOptions).KeepDims())
        if x in self.nchw:
            mapped = sorted(NHWC_AXIS_IN_NCHW[a] for a in axes)
            kept_nhwc = [a for a in range(4) if a not in axes]
            kept_nchw = [a for a in range(4) if a not in mapped]
            if not keep and [NHWC_AXIS_IN_NCHW[a] for a in kept_nhwc] != kept_nchw:
                x, mapped = self.to_layout(x, nchw=False), sorted(axes)
            axes = mapped
        out = self.value_name(outputs[0])
        self.node("ReduceMean", [x], [out], axes=axes, keepdims=int(keep))
        if keep and x in self.nchw:
            self.nchw.add(out)

    def op_softmax(self, op, inputs, outputs):
        if options(op, tflite.SoftmaxOptions).Beta() != 1.0:
            raise ConversionError("SOFTMAX with beta other than 1 is not supported")
        x = self.activation(inputs[0])
        out = self.value_name(outputs[0])
        self.node("Softmax", [x], [out], axis=1 if x in self.nchw else -1)
        if x in self.nchw:
            self.nchw.add(out)

    def op_reshape(self, op, inputs, outputs):
        x = self.to_layout(self.activation(inputs[0]), nchw=False)
        # -1 for the batch: the element count fills it in, whatever the batch.
        shape = self.add_initializer("shape", np.array(batched(self.shape(outputs[0]), -1), np.int64))
        out = self.value_name(outputs[0])
        if len(self.shape(outputs[0])) == 4:
            flat = self.unique(f"{out}_nhwc")
            self.node("Reshape", [x, shape], [flat])
            self.names[outputs[0]] = self.to_layout(flat, nchw=True)
        else:
            self.node("Reshape", [x, shape], [out])


def batched(shape, batch="batch"):
    """`shape` with its leading batch of 1 (if it has one) replaced by `batch`."""
    shape = list(shape)
    return [batch, *shape[1:]] if len(shape) > 1 and shape[0] == 1 else shape


def dequantize(array, quantization):
    scale = quantization.ScaleAsNumpy().astype(np.float32)
    zero = quantization.ZeroPointAsNumpy().astype(np.float32) if quantization.ZeroPointLength() else 0.0
    if np.size(scale) > 1:  # per-channel: broadcast along the quantised dimension
        view = [1] * array.ndim
        view[quantization.QuantizedDimension()] = -1
        scale = scale.reshape(view)
        zero = np.reshape(zero, view) if np.size(zero) > 1 else zero
    return (array.astype(np.float32) - zero) * scale


def padding(kind, size, kernel, strides, dilations):
    """ONNX pads [top, left, bottom, right] for TFLite's SAME (TensorFlow's rule: extra at the end) or VALID."""
    if kind == tflite.Padding.VALID:
        return [0, 0, 0, 0]
    begin, end = [], []
    for n, k, s, d in zip(size, kernel, strides, dilations):
        out = -(-n // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
        begin.append(total // 2)
        end.append(total - total // 2)
    return begin + end


def check(source, target, trials=8):
    """Largest output difference between the TFLite model and its conversion on seeded random inputs, and
    whether the conversion gives each input's outputs when they run as one batch.

    Hybrid TFLite models (int8 weights, float activations) quantise activations to int8 at run time, so their
    outputs differ from the float conversion by about that rounding: they pass with a looser bound and the same
    top class. Float models must agree to float rounding.
    """
    import onnxruntime
    from ai_edge_litert.interpreter import Interpreter

    hybrid = any(t.Type() == tflite.TensorType.INT8 for t in tensors(source))
    interpreter = Interpreter(model_path=source)
    interpreter.allocate_tensors()
    session = onnxruntime.InferenceSession(target, providers=["CPUExecutionProvider"])
    (tfl_input,) = interpreter.get_input_details()
    rng = np.random.default_rng(7)
    worst = {}  # output name -> (difference, bound)
    failures = []
    images, singles = [], []
    for _ in range(trials):
        image = rng.random(tfl_input["shape"], dtype=np.float32)  # [0, 1], as the face models expect
        if hybrid:
            image = image * 2 - 1  # FER's input range
        interpreter.set_tensor(tfl_input["index"], image)
        interpreter.invoke()
        converted = session.run(None, {session.get_inputs()[0].name: image})
        images.append(image)
        singles.append(converted)
        for detail, ours in zip(interpreter.get_output_details(), converted):
            name, reference = detail["name"], interpreter.get_tensor(detail["index"])
            bound = (5e-2 if hybrid else 1e-5) * max(1.0, float(np.abs(reference).max()))
            difference = float(np.abs(reference - ours).max())
            if difference / bound > worst.get(name, (0, 1))[0] / worst.get(name, (0, 1))[1]:
                worst[name] = (difference, bound)
            if hybrid and reference.ndim == 2 and reference.argmax(-1).tolist() != ours.argmax(-1).tolist():
                failures.append(f"{name}: top class differs")
    # Every input in one batch: each item's outputs as when it runs alone.
    batch = session.run(None, {session.get_inputs()[0].name: np.concatenate(images)})
    for position, output in enumerate(batch):
        alone = np.concatenate([single[position] for single in singles])
        if output.shape != alone.shape or not np.allclose(output, alone, rtol=1e-4, atol=1e-5):
            failures.append(f"output {position} differs in a batch of {trials}")
    print(f"{target}: a batch of {trials} gives each input's outputs")
    for name, (difference, bound) in worst.items():
        print(f"{target}: {name}: largest difference {difference:.1e} over {trials} inputs (bound {bound:.1e})")
        if difference > bound:
            failures.append(f"{name} differs by {difference:.1e}")
    return failures


def tensors(path):
    with open(path, "rb") as file:
        graph = tflite.Model.GetRootAsModel(file.read(), 0).Subgraphs(0)
    return [graph.Tensors(i) for i in range(graph.TensorsLength())]


def convert(source):
    with open(source, "rb") as file:
        return Converter(file.read()).convert()


if __name__ == "__main__":
    sys.exit(model_cli.main(sys.argv, "convert_tflite", __doc__, convert, check, (ConversionError, OSError)))
