#!/usr/bin/env python3
"""PyTorch peer for bench/bench_optim.c: one Muon step (sum-form Nesterov momentum, 5 Newton-Schulz
steps, decoupled decay, 0.2 sqrt(max(r, c)) scale) in float32 on the CPU, on the shapes given as
arguments: "RxC" for a whole matrix, "HxRxC" for H per-head row blocks run as one batched matmul.
Prints one JSON object {shape: best_ms}. Run with /usr/bin/python3 (the one with torch).
Usage: optim_bench_torch.py THREADS REPS SHAPE...
"""
import json
import sys
import time

import torch


def ns(X, steps=5, eps=1e-7):
    # X: (..., r, c) with r <= c; per-matrix Frobenius normalisation as in the C code.
    X = X / (X.norm(dim=(-2, -1), keepdim=True) + eps)
    for _ in range(steps):
        A = X @ X.transpose(-2, -1)
        B = -4.7750 * A + 2.0315 * (A @ A)
        X = 3.4445 * X + B @ X
    return X


def muon_step(W, M, G, heads, lr=1e-3, wd=0.01, mu=0.95):
    M.mul_(mu).add_(G)
    U = G + mu * M
    if heads:
        h, r, c = heads
        U = ns(U.view(h, r, c)).view(W.shape)
        scale = 0.2 * max(r, c) ** 0.5
    else:
        r, c = W.shape
        tr = r > c
        X = ns(U.T if tr else U)
        U = X.T if tr else X
        scale = 0.2 * max(r, c) ** 0.5
    W.mul_(1 - lr * wd).add_(U, alpha=-lr * scale)


def main():
    threads, reps = int(sys.argv[1]), int(sys.argv[2])
    torch.set_num_threads(threads)
    out = {}
    for shape in sys.argv[3:]:
        dims = [int(x) for x in shape.split("x")]
        heads = dims if len(dims) == 3 else None
        rows, cols = (dims[0] * dims[1], dims[2]) if heads else (dims[0], dims[1])
        W = torch.randn(rows, cols) * 0.02
        G = torch.randn(rows, cols)
        M = torch.zeros(rows, cols)
        best = float("inf")
        for _ in range(reps):
            t0 = time.perf_counter()
            muon_step(W, M, G, heads)
            best = min(best, time.perf_counter() - t0)
        out[shape] = best * 1e3
    print(json.dumps(out))


if __name__ == "__main__":
    main()
