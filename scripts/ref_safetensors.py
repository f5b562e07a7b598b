#!/usr/bin/python3
"""Reference safetensors files written by PyTorch + the standard library (no safetensors package).

Writes into tests/data/safetensors/:
  torch_mixed.safetensors   tensors of dtypes F32, F64, F16, BF16, I64, U8 (and an empty one)
                            made by torch; tests/test_safetensors.c checks every value.
  expected_writer.safetensors  the file uakd's writer must reproduce byte for byte from the same
                            inputs (compact JSON header, metadata first, spaces to a multiple of
                            8, data_crc32 = zlib.crc32 of the data section).
With --verify FILE it instead loads a file written by uakd and prints each tensor as torch sees
it, checking the layout rules (offsets contiguous from 0, no trailing bytes, data_crc32).

Run: /usr/bin/python3 scripts/ref_safetensors.py [--verify FILE]
"""
import json
import os
import struct
import sys
import zlib

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "safetensors")
DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
          torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8"}
TORCH = {v: k for k, v in DTYPES.items()}


def tensor_bytes(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: reinterpret the bits
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def dump(tensors, metadata, checksum=False):
    """tensors: list of (name, torch tensor) in order. Returns the file bytes."""
    header, blobs, off = {}, [], 0
    if metadata or checksum:
        header["__metadata__"] = dict(metadata)
    for name, t in tensors:
        b = tensor_bytes(t)
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    data = b"".join(blobs)
    if checksum:
        header["__metadata__"]["data_crc32"] = "%08x" % zlib.crc32(data)
    h = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def load(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    pos = 0
    for name, e in sorted(header.items(), key=lambda kv: tuple(kv[1]["data_offsets"])):
        b, end = e["data_offsets"]
        assert b == pos, f"{name}: hole or overlap at {b} (expected {pos})"
        pos = end
    assert pos == len(data), f"{len(data) - pos} trailing bytes"
    if "data_crc32" in meta:
        assert meta["data_crc32"] == "%08x" % zlib.crc32(data), "data_crc32 mismatch"
    out = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        dt = TORCH[e["dtype"]]
        buf = bytearray(data[b:end])
        if dt == torch.bfloat16:
            t = torch.frombuffer(buf, dtype=torch.int16).view(torch.bfloat16) if buf else torch.empty(0, dtype=dt)
        else:
            t = torch.frombuffer(buf, dtype=dt) if buf else torch.empty(0, dtype=dt)
        out[name] = t.reshape(e["shape"])
    return out, meta


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--verify":
        tensors, meta = load(sys.argv[2])
        print("metadata:", meta)
        for k, t in tensors.items():
            print(k, t.dtype, tuple(t.shape), t.flatten()[:8].tolist())
        return
    os.makedirs(OUT, exist_ok=True)
    mixed = [
        ("backbone.stem.conv.weight", (torch.arange(6, dtype=torch.float32) - 2.5).div(4).reshape(2, 3, 1, 1)),
        ("backbone.stem.bn.running_var", torch.tensor([0.1, 1.0 / 3.0, -2.5e-8], dtype=torch.float64)),
        ("head.half", torch.tensor([[1.0, -0.5], [65504.0, 2.0 ** -24]], dtype=torch.float16)),
        ("head.bf16", torch.tensor([1.5, -256.0, 2.0 ** -7, float("inf")], dtype=torch.bfloat16)),
        ("step", torch.tensor(123456789012, dtype=torch.int64)),
        ("mask", torch.tensor([0, 1, 2, 255], dtype=torch.uint8)),
        ("empty", torch.zeros(0, dtype=torch.float32)),
    ]
    with open(os.path.join(OUT, "torch_mixed.safetensors"), "wb") as f:
        f.write(dump(mixed, {"format": "test", "note": "written by scripts/ref_safetensors.py"}))
    # Same inputs as test_writer_matches_python in tests/test_safetensors.c.
    expected = [
        ("backbone.stage3.unit2.conv1.weight", (torch.arange(18, dtype=torch.float32) * 0.25 - 1).reshape(2, 1, 3, 3)),
        ("backbone.stage3.unit2.bn1.running_var", torch.tensor([1.0, 2.0], dtype=torch.float32)),
        ("backbone.stage3.unit2.bn1.num_batches_tracked", torch.tensor(7, dtype=torch.int64)),
    ]
    meta = {"format": "uakd-test", "format_version": "1", "note": "quote \" backslash \\ tab \t"}
    with open(os.path.join(OUT, "expected_writer.safetensors"), "wb") as f:
        f.write(dump(expected, meta, checksum=True))
    # Round trip through our own loader as a self-check.
    back, _ = load(os.path.join(OUT, "torch_mixed.safetensors"))
    for name, t in mixed:
        assert torch.equal(back[name], t), name
    print("wrote", OUT)


if __name__ == "__main__":
    main()
