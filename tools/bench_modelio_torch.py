#!/usr/bin/python3
"""Peer for bench/bench_modelio.c: loads a safetensors file into fp32 torch tensors the way the
safetensors package's torch loader followed by .float() does (memory map, one tensor view per
header entry, dtype conversion), and prints {"load_s": best seconds, "params": n} as JSON.

usage: /usr/bin/python3 tools/bench_modelio_torch.py FILE [repeats]
"""
import json
import mmap
import struct
import sys
import time

import numpy as np
import torch

NP = {"F32": np.float32, "F16": np.float16, "BF16": np.int16, "F64": np.float64}


def load(path):
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    (n,) = struct.unpack("<Q", mm[:8])
    header = json.loads(mm[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        arr = np.frombuffer(mm, dtype=NP[info["dtype"]], count=(e - b) // np.dtype(NP[info["dtype"]]).itemsize,
                            offset=base + b)
        t = torch.from_numpy(arr.copy())
        if info["dtype"] == "BF16":
            t = t.view(torch.bfloat16)
        out[name] = t.reshape(info["shape"]).float()
    return out


def main():
    path = sys.argv[1]
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    torch.set_num_threads(torch.get_num_threads())
    best, params = 1e30, 0
    for _ in range(reps):
        t0 = time.perf_counter()
        w = load(path)
        best = min(best, time.perf_counter() - t0)
        params = sum(v.numel() for v in w.values())
        del w
    print(json.dumps({"load_s": best, "params": params, "torch": torch.__version__,
                      "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
