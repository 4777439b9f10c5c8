#!/usr/bin/python3
"""PyTorch peer for bench/bench_model.c: the same Qwen3 model written the way transformers'
modeling_qwen3 runs it in eager mode (tools/torch_qwen.py: nn.Linear modules, rotate-half RoPE,
GQA by repeat_kv, fp32 softmax, KV cache in generate), timed on the same shapes. Prints one JSON
object.

usage: /usr/bin/python3 tools/bench_model_torch.py V D F L Hq Hkv hd B T P NEW THREADS
"""
import json
import sys
import time

import torch

from torch_qwen import Qwen3, init_normal

V, D, FF, L, HQ, HKV, HD, B, T, P, NEW, THREADS = map(int, sys.argv[1:13])
torch.set_num_threads(THREADS)
torch.manual_seed(0)

model = Qwen3(V, D, FF, L, HQ, HKV, HD)
init_normal(model, 0.02)
out = {"torch_version": torch.__version__, "threads": torch.get_num_threads()}

# forward + backward of sum(w * logp) over B x T tokens
ids = torch.randint(0, V, (B, T))
w = torch.randn(B, T - 1)


def train_step():
    model.zero_grad(set_to_none=True)
    logits = model(ids)[:, :-1]
    logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, ids[:, 1:, None])[..., 0]
    (w * logp).sum().backward()


train_step()
reps = 3
t0 = time.perf_counter()
for _ in range(reps):
    train_step()
dt = (time.perf_counter() - t0) / reps
out["train_tokens_per_s"] = B * T / dt
out["train_step_s"] = dt

# batched decode with a KV cache: prompt P tokens, NEW sampled tokens, batch B
@torch.no_grad()
def generate(batch):
    prompt = torch.randint(0, V, (batch, P))
    caches = [[None, None] for _ in range(L)]
    logits = model(prompt, 0, caches)[:, -1]
    tok = torch.multinomial(torch.softmax(logits, -1), 1)
    for i in range(NEW - 1):
        logits = model(tok, P + i, caches)[:, -1]
        tok = torch.multinomial(torch.softmax(logits, -1), 1)


generate(4)
for batch in (16, 64):
    t0 = time.perf_counter()
    generate(batch)
    dt = time.perf_counter() - t0
    out[f"decode_b{batch}_tokens_per_s"] = batch * NEW / dt
print(json.dumps(out))
