#!/usr/bin/python3
"""PyTorch peer for bench/bench_rl_step.c: one GRPO step on a small Qwen3 (tools/torch_qwen.py),
phase by phase, the way TRL's GRPOTrainer does it in eager PyTorch on a CPU:

  generate  P prompts repeated G times (HF generate's num_return_sequences), KV cache, prefill with
            lm_head on the last position only, then NEW - 1 one-token decode calls; multinomial
            sampling at temperature TEMP, no EOS, so every completion has NEW tokens
  score     reward = 1 when the last completion token is even, else 0 (the same rule as the C
            side); group advantages (r - mean) / (unbiased std + 1e-4)
  train     micro-batches of MB sequences: forward with logits only on the completion positions
            (logits_to_keep), log_softmax(logits / TEMP), entropy under no_grad, GRPO loss with the
            ratio against the detached log-probs, clip eps, 'dapo' aggregation (token sum / all
            completion tokens of the step), backward accumulating gradients
  optimizer clip_grad_norm_(1.0), torch.optim.AdamW(lr 1e-6, betas (0.9, 0.999), eps 1e-8, wd 0.01)

Runs WARMUP + STEPS steps and prints one JSON object: the per-step phase seconds and their medians
over the STEPS timed steps, tokens/s, the reward mean (a sanity check: about 0.5).

THREADS may list several thread counts ("1,2"): the steps are run at each, and the result is the
setting with the fastest median step (a user picks one thread count for a whole run). On a 2-core
machine torch at 1 thread is usually fastest: Debian's OpenBLAS under it runs its own 2 threads,
and torch's 2 intra-op threads on top of those oversubscribe the cores.

usage: /usr/bin/python3 tools/bench_rl_step_torch.py V D F L Hq Hkv hd P G PROMPT NEW MB TEMP EPS STEPS THREADS[,THREADS...]
"""
import json
import statistics
import sys
import time

import torch

from torch_qwen import Qwen3, init_normal

if len(sys.argv) != 17:
    sys.exit(__doc__.strip().splitlines()[-1])
V, D, FF, L, HQ, HKV, HD, P, G, PROMPT, NEW, MB = map(int, sys.argv[1:13])
TEMP, EPS = float(sys.argv[13]), float(sys.argv[14])
STEPS = int(sys.argv[15])
THREADS = [int(x) for x in sys.argv[16].split(",")]
S = P * G
WARMUP = 1
torch.manual_seed(0)

model = Qwen3(V, D, FF, L, HQ, HKV, HD)
init_normal(model, 0.02)
opt = torch.optim.AdamW(model.parameters(), lr=1e-6, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)


@torch.no_grad()
def generate(prompts):
    ids = prompts.repeat_interleave(G, dim=0)  # [S, PROMPT]
    caches = [[None, None] for _ in range(L)]
    logits = model(ids, 0, caches, keep=1)[:, -1]
    out = []
    for i in range(NEW):
        tok = torch.multinomial(torch.softmax(logits.float() / TEMP, dim=-1), 1)
        out.append(tok)
        if i + 1 < NEW:
            logits = model(tok, PROMPT + i, caches)[:, -1]
    return ids, torch.cat(out, dim=1)  # [S, PROMPT], [S, NEW]


def score(completions):
    rewards = (completions[:, -1] % 2 == 0).float()
    r = rewards.view(P, G)
    adv = (r - r.mean(dim=1, keepdim=True)) / (r.std(dim=1, keepdim=True) + 1e-4)
    return rewards, adv.reshape(S)


def train(seqs, adv):
    num_tokens = S * NEW  # dapo: every completion token of the step (no padding here)
    for s0 in range(0, S, MB):
        x = seqs[s0:s0 + MB]
        logits = model(x, keep=NEW + 1)[:, :-1].float() / TEMP  # predicts tokens PROMPT .. PROMPT+NEW-1
        logp_all = torch.log_softmax(logits, dim=-1)
        logp = logp_all.gather(-1, x[:, PROMPT:, None])[..., 0]
        with torch.no_grad():
            entropy = -(logp_all.exp() * logp_all).sum(-1)  # logged by TRL, not in the loss
        ratio = torch.exp(logp - logp.detach())
        a = adv[s0:s0 + MB, None]
        per_token = -torch.min(ratio * a, torch.clamp(ratio, 1 - EPS, 1 + EPS) * a)
        (per_token.sum() / num_tokens).backward()
    return entropy


def optimizer_step():
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)


def rl_step(step):
    torch.manual_seed(1000 + step)
    prompts = torch.randint(0, V, (P, PROMPT))
    t0 = time.perf_counter()
    ids, comp = generate(prompts)
    t1 = time.perf_counter()
    rewards, adv = score(comp)
    t2 = time.perf_counter()
    train(torch.cat([ids, comp], dim=1), adv)
    t3 = time.perf_counter()
    optimizer_step()
    t4 = time.perf_counter()
    return {"generate_s": t1 - t0, "score_s": t2 - t1, "train_s": t3 - t2, "optimizer_s": t4 - t3,
            "step_s": t4 - t0, "reward_mean": rewards.mean().item()}


runs = {}
for n in THREADS:
    torch.set_num_threads(n)
    steps = [rl_step(i) for i in range(WARMUP + STEPS)][WARMUP:]
    runs[n] = (steps, {k: statistics.median(s[k] for s in steps) for k in steps[0]})
best = min(runs, key=lambda n: runs[n][1]["step_s"])
steps, med = runs[best]
out = {"torch_version": torch.__version__, "threads": best, "warmup": WARMUP,
       "median_by_threads": {str(n): runs[n][1] for n in runs},
       "steps": steps, "median": med,
       "gen_tokens_per_s": S * NEW / med["generate_s"],
       "train_tokens_per_s": S * (PROMPT + NEW) / med["train_s"]}
print(json.dumps(out))
