#!/usr/bin/python3
"""PyTorch peer for bench/bench_rl.c: times the GRPO (TRL) / GMPO (verl geo_mean) loss forward +
backward on CPU in float32 for a [B, T] batch and prints one JSON object {loss_type: seconds}.

Usage: /usr/bin/python3 tools/rl_bench_loss_torch.py B T REPS
"""
import json
import sys
import time

import torch


def grpo(lp, old, adv, mask, loss_type, max_len):
    coef_1 = torch.exp(lp - old)
    coef_2 = torch.clamp(coef_1, 0.8, 1.2)
    a = adv.unsqueeze(1)
    ptl = -torch.min(coef_1 * a, coef_2 * a)
    if loss_type == "grpo":
        return ((ptl * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    if loss_type == "dr_grpo":
        return (ptl * mask).sum() / (ptl.size(0) * max_len)
    return (ptl * mask).sum() / mask.sum().clamp(min=1.0)


def gmpo(lp, old, adv, mask):
    d = lp - old
    a = adv.unsqueeze(1).expand_as(d)
    s = torch.sign(a)
    c = torch.clamp(d, -0.4, 0.4)
    dm = s * torch.min(s * d, s * c)
    ms = mask.sum(-1)
    ratio = torch.exp((dm * mask).sum(-1) / (ms + 1e-8))
    return torch.mean(-((a * mask).sum(-1) / (ms + 1e-8)) * ratio)


def main():
    B, T, reps = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    torch.manual_seed(0)
    old = -torch.rand(B, T) * 3
    logp = old + torch.randn(B, T) * 0.3
    adv = torch.randn(B)
    lengths = torch.randint(1, T + 1, (B,))
    mask = (torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)).float()
    out = {"torch_version": torch.__version__, "threads": torch.get_num_threads()}
    for name in ["grpo", "bnpo", "dr_grpo", "dapo", "gmpo"]:
        best = float("inf")
        for _ in range(reps):
            lp = logp.clone().requires_grad_(True)
            t0 = time.perf_counter()
            loss = gmpo(lp, old, adv, mask) if name == "gmpo" else grpo(lp, old, adv, mask, name, T)
            loss.backward()
            best = min(best, time.perf_counter() - t0)
        out[name] = best
    print(json.dumps(out))


if __name__ == "__main__":
    main()
