#!/usr/bin/env python3
"""Writes configs/{gsm8k,math}-{grpo,gmpo}-{adamw,muon,pion}.json: the published Qwen3-1.7B RLVR
comparison settings (docs/TRAINING.md explains each choice). Run from the repository root."""
import json

DATA = {
    "gsm8k": {"dataset": {"preset": "gsm8k", "path": "data/gsm8k/train.jsonl", "eval_path": "data/gsm8k/test.jsonl"},
              "reward": {"gsm8k": 1.0}, "max_new_tokens": 1024},
    "math": {"dataset": {"preset": "math", "path": "data/math/train.jsonl", "eval_path": "data/math/test500.jsonl",
                         "levels": "3-5"},
             "reward": {"math": 1.0}, "max_new_tokens": 2048},
}
LOSS = {
    "grpo": {"loss_type": "dapo", "epsilon": 0.2, "beta": 0.0, "scale_rewards": "group"},
    "gmpo": {"loss_type": "gmpo", "epsilon": 0.4, "beta": 0.0, "scale_rewards": "group"},
}
# One learning rate for all three (the published comparison uses 1e-6 for Pion and the baselines);
# Pion uses the RLVR recipe's scale factor 5.0 and suppression-only k_p = 0, per head.
OPTIM = {
    "adamw": {"name": "adamw", "lr": 1e-6, "weight_decay": 0.01},
    "muon": {"name": "muon", "lr": 1e-6, "weight_decay": 0.01, "momentum": 0.95, "nesterov": True,
             "scale": "match_rms_adamw", "per_head": False},
    "pion": {"name": "pion", "lr": 1e-6, "weight_decay": 0.01, "momentum": 0.95, "nesterov": True, "kp": 0,
             "per_head": True, "pion_scale_factor": 5.0},
}

for data, d in DATA.items():
    for loss, l in LOSS.items():
        for opt, o in OPTIM.items():
            name = f"{data}-{loss}-{opt}"
            cfg = {
                "description": f"Qwen3-1.7B RLVR on {data.upper()} with {loss.upper()} and {opt}: the published "
                               "optimizer comparison (GPU-sized; see docs/TRAINING.md)",
                "model": "models/Qwen3-1.7B",
                "run_dir": f"runs/{name}",
                "seed": 0,
                "steps": 500,
                "dataset": dict(d["dataset"], seed=0, eval_count=0),
                "rollout": {"prompts_per_step": 32, "group_size": 8, "max_new_tokens": d["max_new_tokens"],
                            "temperature": 1.0, "top_p": 1.0, "enable_thinking": False},
                "loss": l,
                "num_iterations": 1,
                "micro_batch_size": 8,
                "optimizer": dict(o, max_grad_norm=1.0, schedule={"type": "constant"},
                                  adamw={"lr": 1e-6, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01}),
                "reward": d["reward"],
                "eval": {"every": 25, "examples": 500, "samples": 0},
                "checkpoint": {"every": 25, "keep_last": 2},
                "diagnostics": {"every": 10, "snr_chunks": 4},
                "compare": {"optimizers": ["adamw", "muon", "pion"]},
            }
            with open(f"configs/{name}.json", "w") as f:
                json.dump(cfg, f, indent=2)
                f.write("\n")
print("wrote 12 configs")
