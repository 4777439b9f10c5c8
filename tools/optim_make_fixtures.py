#!/usr/bin/env python3
"""Reference optimizer steps in plain PyTorch for tests/test_optim_reference.c.

Run with the Debian python that has torch:  /usr/bin/python3 tools/optim_make_fixtures.py
Writes tests/fixtures/optim/reference.json. AdamW is torch.optim.AdamW itself; Muon / Pion are
written out here from the published rules (torch 1.13 has no torch.optim.Muon):
  M <- mu M + G (sum form) or mu M + (1-mu) G (ema form); Nesterov input G + mu M / (1-mu) G + mu M;
  X = M / (||M||_F + 1e-7) on the short side; X <- aX + (bA + cA^2) X, A = X X^T per schedule step;
  W <- W (1 - lr wd) - lr * s * X, s = sqrt(max(1, r/c)) (original) or f sqrt(max(r, c)).
Per-head: q/k/v rows split into heads of head_dim rows, o columns into heads of head_dim columns.
"""
import json
import math
import os

import torch

torch.manual_seed(1234)
MUON = [(3.4445, -4.7750, 2.0315)] * 5


def pion_schedule(kp):
    return [(1.875, -1.25, 0.375)] * kp + [(0.0, 2.5, -1.5)] * (5 - kp)


def ns(G, sched, eps=1e-7):
    X = G / (G.norm() + eps)
    tr = G.shape[0] > G.shape[1]
    if tr:
        X = X.T
    for a, b, c in sched:
        a, b, c = (torch.tensor(v, dtype=torch.float32) for v in (a, b, c))
        A = X @ X.T
        B = b * A + c * (A @ A)
        X = a * X + B @ X
    return X.T if tr else X


def scale_of(r, c, mode, f):
    return math.sqrt(max(1.0, r / c)) if mode == "original" else f * math.sqrt(max(r, c))


def muon_like(W, grads, sched, lr, wd, mu, nesterov, form, mode, f, heads=None):
    """heads: None, ("rows", H, hd) or ("cols", H, hd)."""
    W = W.clone()
    M = torch.zeros_like(W)
    for G in grads:
        gk = (1 - mu) if form == "ema" else 1.0
        M = mu * M + gk * G
        U_in = gk * G + mu * M if nesterov else M
        if heads is None:
            U = ns(U_in, sched)
            s = scale_of(W.shape[0], W.shape[1], mode, f)
        elif heads[0] == "rows":
            _, H, hd = heads
            U = torch.cat([ns(b, sched) for b in U_in.view(H, hd, -1)], 0)
            s = scale_of(hd, W.shape[1], mode, f)
        else:
            _, H, hd = heads
            blocks = U_in.view(W.shape[0], H, hd).permute(1, 0, 2)
            U = torch.stack([ns(b, sched) for b in blocks], 0).permute(1, 0, 2).reshape(W.shape)
            s = scale_of(W.shape[0], hd, mode, f)
        W = W * (1 - lr * wd) - lr * s * U
    return W


def flat(t):
    return [float(x) for x in t.flatten().tolist()]


def case_muon(name, rows, cols, steps, sched_name, kp, lr, wd, mu, nesterov, form, mode, f, heads=None):
    W = torch.randn(rows, cols) * 0.1
    grads = [torch.randn(rows, cols) for _ in range(steps)]
    sched = MUON if sched_name == "muon" else pion_schedule(kp)
    out = muon_like(W, grads, sched, lr, wd, mu, nesterov, form, mode, f, heads)
    return {
        "name": name, "optimizer": sched_name, "kp": kp, "rows": rows, "cols": cols, "lr": lr,
        "weight_decay": wd, "momentum": mu, "nesterov": nesterov, "momentum_form": form, "scale": mode,
        "pion_scale_factor": f, "heads": heads[0] if heads else "none",
        "num_heads": heads[1] if heads else 0, "head_dim": heads[2] if heads else 0,
        "w0": flat(W), "grads": [flat(g) for g in grads], "expected": flat(out),
    }


def case_adamw(steps=3):
    p = torch.nn.Parameter(torch.randn(5, 7))
    p0 = p.detach().clone()
    lr, betas, eps, wd = 1e-2, (0.9, 0.99), 1e-8, 0.1
    opt = torch.optim.AdamW([p], lr=lr, betas=betas, eps=eps, weight_decay=wd)
    grads = []
    for _ in range(steps):
        g = torch.randn(5, 7)
        grads.append(g)
        p.grad = g.clone()
        opt.step()
    return {"rows": 5, "cols": 7, "lr": lr, "betas": list(betas), "eps": eps, "weight_decay": wd,
            "w0": flat(p0), "grads": [flat(g) for g in grads], "expected": flat(p.detach())}


def main():
    cases = [
        case_muon("muon_wide_sum_nesterov", 8, 12, 3, "muon", 0, 0.02, 0.01, 0.95, True, "sum", "original", 0.2),
        case_muon("muon_tall_match_rms", 12, 8, 3, "muon", 0, 0.02, 0.01, 0.95, True, "sum", "match_rms_adamw", 0.2),
        case_muon("muon_ema_plain", 10, 6, 3, "muon", 0, 0.05, 0.0, 0.9, False, "ema", "original", 0.2),
        case_muon("pion_kp0", 8, 12, 3, "pion", 0, 0.02, 0.01, 0.95, True, "sum", "match_rms_adamw", 0.2),
        case_muon("pion_kp2_f5", 12, 8, 3, "pion", 2, 0.01, 0.01, 0.95, True, "ema", "match_rms_adamw", 5.0),
        case_muon("pion_kp1_heads_rows", 12, 10, 3, "pion", 1, 0.02, 0.01, 0.95, True, "sum", "match_rms_adamw",
                  0.2, ("rows", 3, 4)),
        case_muon("pion_kp0_heads_cols", 10, 12, 3, "pion", 0, 0.02, 0.01, 0.95, True, "sum", "match_rms_adamw",
                  0.2, ("cols", 3, 4)),
        case_muon("muon_heads_rows", 8, 16, 2, "muon", 0, 0.02, 0.01, 0.95, True, "sum", "original", 0.2,
                  ("rows", 2, 4)),
    ]
    out = {"generator": "tools/optim_make_fixtures.py", "torch": torch.__version__, "adamw": case_adamw(),
           "matrix_cases": cases}
    path = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "optim", "reference.json")
    with open(path, "w") as fh:
        json.dump(out, fh)
    print("wrote", os.path.normpath(path))


if __name__ == "__main__":
    main()
