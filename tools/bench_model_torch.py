#!/usr/bin/python3
"""PyTorch peer for bench/bench_model.c: the same Qwen3 model written the way transformers'
modeling_qwen3 runs it in eager mode (tools/torch_qwen.py: nn.Linear modules, rotate-half RoPE,
GQA by repeat_kv, fp32 softmax, KV cache in generate), timed on the same shapes. Prints one JSON
object.

usage: /usr/bin/python3 tools/bench_model_torch.py V D F L Hq Hkv hd B T P NEW THREADS[,THREADS...] [bf16]

With several thread counts each is measured and the top-level numbers are the best of them, so
pionrl is compared against PyTorch's best setting on this machine (on 2 cores PyTorch's decode
is faster on one thread than on two). With "bf16" PyTorch's mixed precision is measured too, at the
best fp32 thread count: training under torch.autocast("cpu", bfloat16), decode with the model
cast to bfloat16 (bf16 weights, activations and KV cache; softmax and sampling in fp32).
"""
import copy
import json
import sys
import time

import torch

from torch_qwen import Qwen3, init_normal

V, D, FF, L, HQ, HKV, HD, B, T, P, NEW = map(int, sys.argv[1:12])
THREADS = [int(x) for x in sys.argv[12].split(",")]
BF16 = len(sys.argv) > 13 and sys.argv[13] == "bf16"
torch.manual_seed(0)

model = Qwen3(V, D, FF, L, HQ, HKV, HD)
init_normal(model, 0.02)
out = {"torch_version": torch.__version__}

# forward + backward of sum(w * logp) over B x T tokens
ids = torch.randint(0, V, (B, T))
w = torch.randn(B, T - 1)


def train_step(autocast=False):
    model.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        logits = model(ids)[:, :-1]
    logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, ids[:, 1:, None])[..., 0]
    (w * logp).sum().backward()


def time_train(reps=3, autocast=False):
    train_step(autocast)  # warm-up
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        train_step(autocast)
        best = min(best, time.perf_counter() - t0)
    return B * T / best

# batched decode with a KV cache: prompt P tokens, NEW sampled tokens, batch B
@torch.no_grad()
def generate(batch, net=model):
    prompt = torch.randint(0, V, (batch, P))
    caches = [[None, None] for _ in range(L)]
    logits = net(prompt, 0, caches)[:, -1].float()
    tok = torch.multinomial(torch.softmax(logits, -1), 1)
    for i in range(NEW - 1):
        logits = net(tok, P + i, caches)[:, -1].float()
        tok = torch.multinomial(torch.softmax(logits, -1), 1)


def time_decode(batch, reps=3, net=model):
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        generate(batch, net)
        best = min(best, time.perf_counter() - t0)
    return batch * NEW / best


# Same measurement protocol as bench_model.c: best of 3 training steps after a warm-up, best of 3
# generate calls per batch size after a small warm-up generate.
per_threads = {}
for n in THREADS:
    torch.set_num_threads(n)
    r = {"train_tokens_per_s": time_train()}
    generate(4)
    for batch in (16, 64):
        r[f"decode_b{batch}_tokens_per_s"] = time_decode(batch)
    per_threads[str(n)] = r
for key in ("train_tokens_per_s", "decode_b16_tokens_per_s", "decode_b64_tokens_per_s"):
    n = max(per_threads, key=lambda t: per_threads[t][key])
    out[key] = per_threads[n][key]
    out[key.replace("_tokens_per_s", "_best_threads")] = int(n)
out["by_threads"] = per_threads
if BF16:
    torch.set_num_threads(out["train_best_threads"])
    out["bf16_threads"] = out["train_best_threads"]
    out["bf16_train_tokens_per_s"] = time_train(autocast=True)
    half = copy.deepcopy(model).to(torch.bfloat16)
    generate(4, half)
    for batch in (16, 64):
        out[f"bf16_decode_b{batch}_tokens_per_s"] = time_decode(batch, net=half)
print(json.dumps(out))
