#!/usr/bin/env python3
"""Convert a CTranslate2 Whisper model (model.bin, vocabulary.txt, config.json) into a whisper.cpp ggml file.

    convert_whisper.py SOURCE_DIR OUTPUT_FILE [--q8_0]

Lossless by default: weights stay fp16 (whisper.cpp's own choice keeps biases, norms, positional embeddings and the conv
biases in fp32, which fp16 values convert to exactly). The file holds, in order: the hyper-parameters, the 80-bin
mel filter bank whisper was trained with (librosa's Slaney mel for 16 kHz, n_fft 400, computed here), the
tokenizer (each token's bytes) and every tensor under its whisper.cpp name. CTranslate2 fuses the attention
projections (q|k|v for self-attention, k|v for cross-attention); they are split back here.

With --q8_0 the matrices (attention, MLP, token embedding) are stored in ggml's Q8_0 instead: blocks of 32
values as one fp16 scale and 32 signed bytes, about half the size; the convolutions stay fp16 and the rest fp32,
as whisper.cpp expects of a Q8_0 model.
"""

import re
import struct
import sys
from pathlib import Path

import numpy as np

GGML_MAGIC = 0x67676D6C
GGML_TYPE_F32, GGML_TYPE_F16, GGML_TYPE_Q8_0 = 0, 1, 8
# The model's file type as whisper.cpp reads it: ggml's ftype plus 1000 x its quantization format version (2).
FTYPE_F16, FTYPE_Q8_0 = 1, 2 * 1000 + 7
Q8_0_BLOCK = 32
CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def read_ct2(path: Path) -> dict[str, np.ndarray]:
    data = path.read_bytes()
    pos = 0

    def take(fmt):
        nonlocal pos
        values = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return values

    def string():
        nonlocal pos
        (length,) = take("<H")
        text = data[pos:pos + length].rstrip(b"\0").decode()
        pos += length
        return text

    (version,) = take("<I")
    if version != 6:
        raise SystemExit(f"unsupported CTranslate2 model version {version}")
    if string() != "WhisperSpec":
        raise SystemExit("not a CTranslate2 Whisper model")
    take("<I")  # spec revision
    (count,) = take("<I")
    tensors = {}
    for _ in range(count):
        name = string()
        (rank,) = take("<B")
        shape = take(f"<{rank}I") if rank else ()
        (dtype,) = take("<B")
        (size,) = take("<I")
        array = np.frombuffer(data, dtype=CT2_DTYPES[dtype], count=size // np.dtype(CT2_DTYPES[dtype]).itemsize, offset=pos)
        tensors[name] = array.reshape(shape) if shape else array
        pos += size
    return tensors


def mel_filters(rate=16000, n_fft=400, n_mels=80) -> np.ndarray:
    """librosa.filters.mel(sr=rate, n_fft=n_fft, n_mels=n_mels) with Slaney's mel scale and area normalisation."""
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, np.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp

    def hz_to_mel(f):
        return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, f / f_sp)

    def mel_to_hz(m):
        return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)

    fft_freqs = np.linspace(0, rate / 2, 1 + n_fft // 2)
    mel_freqs = mel_to_hz(np.linspace(hz_to_mel(np.array(0.0)), hz_to_mel(np.array(rate / 2)), n_mels + 2))
    spacing = np.diff(mel_freqs)
    ramps = np.subtract.outer(mel_freqs, fft_freqs)
    weights = np.zeros((n_mels, len(fft_freqs)))
    for i in range(n_mels):
        lower = -ramps[i] / spacing[i]
        upper = ramps[i + 2] / spacing[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_freqs[2:n_mels + 2] - mel_freqs[:n_mels]))[:, None]
    return weights.astype(np.float32)


def byte_decoder() -> dict[str, int]:
    """The inverse of GPT-2's bytes-to-unicode table used by byte-level BPE vocabularies."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, codes)}


def layer_count(ct2: dict[str, np.ndarray], stack: str) -> int:
    pattern = re.compile(rf"^{stack}/layer_(\d+)/")
    return 1 + max(int(m.group(1)) for k in ct2 if (m := pattern.match(k)))


def scalar(array: np.ndarray) -> int:
    return int(np.asarray(array).reshape(-1)[0])


def whisper_cpp_tensors(ct2: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
    out = []

    def linear(prefix, name, bias=True):
        out.append((f"{name}.weight", ct2[f"{prefix}/weight"]))
        if bias:
            out.append((f"{name}.bias", ct2[f"{prefix}/bias"]))

    def norm(prefix, name):
        out.append((f"{name}.weight", ct2[f"{prefix}/gamma"]))
        out.append((f"{name}.bias", ct2[f"{prefix}/beta"]))

    def split(prefix, parts):
        weight, bias = ct2[f"{prefix}/weight"], ct2[f"{prefix}/bias"]
        n = weight.shape[0] // len(parts)
        for k, name in enumerate(parts):
            out.append((f"{name}.weight", weight[k * n:(k + 1) * n]))
            if not name.endswith(".key"):  # whisper's key projections have no bias (CTranslate2 stores zeros)
                out.append((f"{name}.bias", bias[k * n:(k + 1) * n]))

    out.append(("encoder.positional_embedding", ct2["encoder/position_encodings/encodings"]))
    for conv in ("conv1", "conv2"):
        out.append((f"encoder.{conv}.weight", ct2[f"encoder/{conv}/weight"]))
        out.append((f"encoder.{conv}.bias", ct2[f"encoder/{conv}/bias"].reshape(-1, 1)))
    for i in range(layer_count(ct2, "encoder")):
        src, dst = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        norm(f"{src}/self_attention/layer_norm", f"{dst}.attn_ln")
        split(f"{src}/self_attention/linear_0", [f"{dst}.attn.query", f"{dst}.attn.key", f"{dst}.attn.value"])
        linear(f"{src}/self_attention/linear_1", f"{dst}.attn.out")
        norm(f"{src}/ffn/layer_norm", f"{dst}.mlp_ln")
        linear(f"{src}/ffn/linear_0", f"{dst}.mlp.0")
        linear(f"{src}/ffn/linear_1", f"{dst}.mlp.2")
    norm("encoder/layer_norm", "encoder.ln_post")

    out.append(("decoder.positional_embedding", ct2["decoder/position_encodings/encodings"]))
    out.append(("decoder.token_embedding.weight", ct2["decoder/embeddings/weight"]))
    for i in range(layer_count(ct2, "decoder")):
        src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        norm(f"{src}/self_attention/layer_norm", f"{dst}.attn_ln")
        split(f"{src}/self_attention/linear_0", [f"{dst}.attn.query", f"{dst}.attn.key", f"{dst}.attn.value"])
        linear(f"{src}/self_attention/linear_1", f"{dst}.attn.out")
        norm(f"{src}/attention/layer_norm", f"{dst}.cross_attn_ln")
        linear(f"{src}/attention/linear_0", f"{dst}.cross_attn.query")
        split(f"{src}/attention/linear_1", [f"{dst}.cross_attn.key", f"{dst}.cross_attn.value"])
        linear(f"{src}/attention/linear_2", f"{dst}.cross_attn.out")
        norm(f"{src}/ffn/layer_norm", f"{dst}.mlp_ln")
        linear(f"{src}/ffn/linear_0", f"{dst}.mlp.0")
        linear(f"{src}/ffn/linear_1", f"{dst}.mlp.2")
    norm("decoder/layer_norm", "decoder.ln")
    return out


def q8_0(tensor: np.ndarray) -> bytes:
    """ggml's Q8_0 of a matrix whose rows are a multiple of 32 long: per block, scale = max |x| / 127 (fp16) and
    the values divided by it, rounded half away from zero, as signed bytes."""
    blocks = tensor.astype(np.float32).reshape(-1, Q8_0_BLOCK)
    scale = np.abs(blocks).max(axis=1) / 127.0
    inverse = np.divide(1.0, scale, out=np.zeros_like(scale), where=scale > 0)
    scaled = blocks * inverse[:, None]
    values = (np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)).astype(np.int8)
    packed = np.empty(len(blocks), dtype=[("d", "<f2"), ("qs", "i1", Q8_0_BLOCK)])
    packed["d"], packed["qs"] = scale.astype(np.float16), values
    return packed.tobytes()


def encode(name: str, tensor: np.ndarray, quantize: bool) -> tuple[int, bytes]:
    """The ggml type and bytes of one tensor."""
    if tensor.ndim < 2 or name in ("encoder.conv1.bias", "encoder.conv2.bias", "encoder.positional_embedding",
                                   "decoder.positional_embedding"):
        return GGML_TYPE_F32, np.ascontiguousarray(tensor.astype(np.float32)).tobytes()
    if quantize and tensor.ndim == 2 and tensor.shape[-1] % Q8_0_BLOCK == 0:
        return GGML_TYPE_Q8_0, q8_0(np.ascontiguousarray(tensor))
    return GGML_TYPE_F16, np.ascontiguousarray(tensor.astype(np.float16)).tobytes()


def main(source: Path, output: Path, quantize: bool = False) -> None:
    ct2 = read_ct2(source / "model.bin")
    vocabulary = (source / "vocabulary.txt").read_text(encoding="utf-8").split("\n")
    if vocabulary and vocabulary[-1] == "":
        vocabulary.pop()
    n_vocab, d_model = ct2["decoder/embeddings/weight"].shape
    n_mels = ct2["encoder/conv1/weight"].shape[1]
    hparams = [
        n_vocab,
        ct2["encoder/position_encodings/encodings"].shape[0],
        d_model,
        scalar(ct2["encoder/num_heads"]),
        layer_count(ct2, "encoder"),
        ct2["decoder/position_encodings/encodings"].shape[0],
        d_model,
        scalar(ct2["decoder/num_heads"]),
        layer_count(ct2, "decoder"),
        n_mels,
        FTYPE_Q8_0 if quantize else FTYPE_F16,
    ]
    decoder = byte_decoder()
    with output.open("wb") as f:
        f.write(struct.pack("<I", GGML_MAGIC))
        f.write(struct.pack("<11i", *hparams))
        filters = mel_filters(n_mels=n_mels)
        f.write(struct.pack("<ii", *filters.shape))
        f.write(filters.tobytes())
        f.write(struct.pack("<i", len(vocabulary)))
        for token in vocabulary:
            raw = bytes(decoder[c] for c in token) if all(c in decoder for c in token) else token.encode()
            f.write(struct.pack("<i", len(raw)))
            f.write(raw)
        for name, tensor in whisper_cpp_tensors(ct2):
            ggml_type, data = encode(name, tensor, quantize)
            encoded = name.encode()
            f.write(struct.pack("<iii", tensor.ndim, len(encoded), ggml_type))
            f.write(struct.pack(f"<{tensor.ndim}i", *reversed(tensor.shape)))
            f.write(encoded)
            f.write(data)
    print(f"converted {len(ct2)} CTranslate2 variables, {len(vocabulary)} tokens -> {output}", file=sys.stderr)


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if a != "--q8_0"]
    if len(arguments) != 2:
        raise SystemExit(__doc__)
    main(Path(arguments[0]), Path(arguments[1]), quantize="--q8_0" in sys.argv)
