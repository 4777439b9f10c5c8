#!/usr/bin/python3
"""Writes tests/fixtures/rl/loss_fixtures.json: GRPO (TRL loss types) and GMPO (verl geo_mean)
losses and their gradients d loss / d logp computed with PyTorch autograd in float64, plus
group-relative advantages, for tests/test_rl_loss.c.

The loss expressions below restate TRL's GRPOTrainer._compute_loss (trl/trainer/grpo_trainer.py)
and verl's compute_policy_loss_geo_mean (verl/trainer/ppo/core_algos.py) in a few lines each.
Inputs are rounded to float32 so the C float path sees the same numbers.

Run: /usr/bin/python3 tools/rl_make_loss_fixtures.py   (needs python3-torch)
"""
import json
import os

import torch

torch.manual_seed(1234)
B, T = 6, 7
MAX_COMPLETION_LENGTH = 9


def f32(x):
    return x.to(torch.float32).to(torch.float64)


lengths = [7, 4, 0, 1, 6, 3]  # row 2 is an empty completion
mask = torch.zeros(B, T, dtype=torch.float64)
for i, n in enumerate(lengths):
    mask[i, :n] = 1
old = f32(-torch.rand(B, T, dtype=torch.float64) * 3 - 0.05)
logp = f32(old + torch.randn(B, T, dtype=torch.float64) * 0.35)
logp = torch.minimum(logp, torch.full_like(logp, -1e-3))
ref = f32(old + torch.randn(B, T, dtype=torch.float64) * 0.2)
adv = f32(torch.tensor([1.2, -0.7, 0.9, 0.0, -1.5, 0.45], dtype=torch.float64))


def grpo_loss(lp, loss_type, eps_low, eps_high, delta, beta):
    coef_1 = torch.exp(lp - old)
    coef_2 = torch.clamp(coef_1, 1 - eps_low, 1 + eps_high)
    if delta is not None:
        coef_1 = torch.clamp(coef_1, max=delta)
    a = adv.unsqueeze(1)
    per_token_loss = -torch.min(coef_1 * a, coef_2 * a)
    if beta != 0.0:
        per_token_kl = torch.exp(ref - lp) - (ref - lp) - 1
        per_token_loss = per_token_loss + beta * per_token_kl
    if loss_type == "grpo":
        return ((per_token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    if loss_type == "bnpo":
        return (per_token_loss * mask).sum() / mask.sum().clamp(min=1.0)
    if loss_type == "dr_grpo":
        return (per_token_loss * mask).sum() / (per_token_loss.size(0) * MAX_COMPLETION_LENGTH)
    if loss_type == "dapo":
        return (per_token_loss * mask).sum() / mask.sum()
    raise ValueError(loss_type)


def gmpo_loss(lp, eps_low, eps_high, beta):
    negative_approx_kl = lp - old
    advantages = adv.unsqueeze(1).expand(B, T)
    sgn = torch.sign(advantages)
    clamped = torch.clamp(negative_approx_kl, -eps_low, eps_high)
    kl_min = sgn * torch.min(sgn * negative_approx_kl, sgn * clamped)
    msum = mask.sum(dim=-1)
    ratio = torch.exp((kl_min * mask).sum(dim=-1) / (msum + 1e-8))
    advantage = (advantages * mask).sum(dim=-1) / (msum + 1e-8)
    loss = torch.mean(-advantage * ratio)
    if beta != 0.0:
        kl = torch.exp(ref - lp) - (ref - lp) - 1
        loss = loss + beta * (kl * mask).sum() / mask.sum()
    return loss


cases = []
grpo_settings = [
    ("grpo", 0.2, 0.2, None, 0.0),
    ("bnpo", 0.2, 0.2, None, 0.0),
    ("dr_grpo", 0.2, 0.2, None, 0.0),
    ("dapo", 0.2, 0.28, None, 0.0),
    ("grpo", 0.2, 0.28, None, 0.04),
    ("dapo", 0.2, 0.2, 1.25, 0.04),
    ("dr_grpo", 0.1, 0.3, 1.5, 0.1),
]
for loss_type, el, eh, delta, beta in grpo_settings:
    lp = logp.clone().requires_grad_(True)
    loss = grpo_loss(lp, loss_type, el, eh, delta, beta)
    loss.backward()
    cases.append({"loss_type": loss_type, "eps_low": el, "eps_high": eh, "delta": delta or 0.0, "beta": beta,
                  "loss": loss.item(), "grad": lp.grad.flatten().tolist()})
for el, eh, beta in [(0.4, 0.4, 0.0), (0.2, 0.3, 0.0), (0.4, 0.4, 0.05)]:
    lp = logp.clone().requires_grad_(True)
    loss = gmpo_loss(lp, el, eh, beta)
    loss.backward()
    cases.append({"loss_type": "gmpo", "eps_low": el, "eps_high": eh, "delta": 0.0, "beta": beta,
                  "loss": loss.item(), "grad": lp.grad.flatten().tolist()})

# Advantages as TRL computes them (group mean, unbiased std, + 1e-4), 3 groups of 4; the third
# group has equal rewards.
rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.5, 1.0, 0.0, 0.25, 1.0, 1.0, 1.0, 1.0], dtype=torch.float64)
G = 4
grouped = rewards.view(-1, G)
mean = grouped.mean(dim=1).repeat_interleave(G)
std_group = grouped.std(dim=1).repeat_interleave(G)
adv_group = (rewards - mean) / (std_group + 1e-4)
adv_batch = (rewards - mean) / (rewards.std() + 1e-4)
adv_none = rewards - mean

out = {
    "num_seq": B, "max_len": T, "max_completion_length": MAX_COMPLETION_LENGTH,
    "logp": logp.flatten().tolist(), "old_logp": old.flatten().tolist(), "ref_logp": ref.flatten().tolist(),
    "mask": mask.flatten().tolist(), "adv": adv.tolist(), "cases": cases,
    "advantage": {"group_size": G, "rewards": rewards.tolist(), "group": adv_group.tolist(),
                  "batch": adv_batch.tolist(), "none": adv_none.tolist()},
}
here = os.path.dirname(os.path.abspath(__file__))
path = os.path.join(here, "..", "tests", "fixtures", "rl", "loss_fixtures.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
print("wrote", os.path.normpath(path), "with", len(cases), "loss cases")
