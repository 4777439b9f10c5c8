#!/usr/bin/env python3
"""Writes synthetic run directories (metrics.jsonl + config.json) for trying `pionrl report`
without training: three optimizers on one made-up GSM8K run, one of which collapses and one of
which hits a NaN. Standard library only.

Usage: python3 tools/rl_synthetic_runs.py OUT_DIR [--steps N]
then:  ./pionrl report OUT_DIR/adamw OUT_DIR/muon OUT_DIR/pion --out report.html
"""
import json
import math
import os
import random
import sys


def run(out_dir, name, steps, seed, collapse_at=None, nan_at=None):
    rng = random.Random(seed)
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump({"optimizer": {"name": name, "lr": 1e-6}}, f)
    rate = {"adamw": 0.010, "muon": 0.016, "pion": 0.020}[name]
    with open(os.path.join(d, "metrics.jsonl"), "w") as f:
        for s in range(1, steps + 1):
            acc = 0.25 + 0.5 * (1 - math.exp(-rate * s)) + rng.gauss(0, 0.03)
            ent = 0.9 * math.exp(-0.004 * s) + 0.1 + rng.gauss(0, 0.02)
            length = 220 + 60 * math.sin(s / 40) + rng.gauss(0, 8)
            if collapse_at and s >= collapse_at:
                acc, ent, length = max(0.0, 0.02 + rng.gauss(0, 0.01)), 0.01, 9 + rng.random()
            line = {
                "step": s, "epoch": 0, "lr": 1e-6,
                "reward_mean": round(acc + 0.05, 4), "reward_std": 0.4, "accuracy": round(acc, 4),
                "entropy": round(ent, 4), "response_length_mean": round(length, 1),
                "response_length_max": 512, "truncation_rate": 0.02,
                "kl": round(0.001 * s ** 0.5 * (1 + rng.random()), 5),
                "grad_norm": round(abs(0.8 + rng.gauss(0, 0.2)) * (30 if s % 50 == 0 else 1), 4),
                "clip_fraction": round(abs(0.01 + rng.gauss(0, 0.004)), 4),
                "update_rms": {"model.layers.0.self_attn.q_proj.weight": 1e-6 * (1 + rng.random()),
                               "model.layers.0.mlp.up_proj.weight": 2e-6 * (1 + rng.random())},
                "tokens_per_s": round(1800 + rng.gauss(0, 50)), "loss": round(rng.gauss(0, 0.05), 4),
            }
            if s % 10 == 0:
                line.update({"snr": round(0.3 + rng.random(), 3), "erank": round(40 - 0.05 * s + rng.random(), 2),
                             "head_norm_spread": round(0.1 + 0.0005 * s, 4)})
            if s % 25 == 0:
                line["eval_accuracy"] = round(max(0.0, acc - 0.05) if not (collapse_at and s >= collapse_at) else 0.0, 4)
            if nan_at and s >= nan_at:
                line["loss"] = None
                line["grad_norm"] = None
                line["skipped_nonfinite"] = True
            f.write(json.dumps(line) + "\n")


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        sys.exit(2)
    out = sys.argv[1]
    steps = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[2] == "--steps" else 200
    run(out, "adamw", steps, 1)
    run(out, "muon", steps, 2, collapse_at=int(steps * 0.6))
    run(out, "pion", steps, 3, nan_at=int(steps * 0.9))
    print("wrote", ", ".join(os.path.join(out, n) for n in ("adamw", "muon", "pion")))


if __name__ == "__main__":
    main()
