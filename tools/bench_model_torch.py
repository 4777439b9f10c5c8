#!/usr/bin/python3
"""PyTorch peer for bench/bench_model.c: the same Qwen3 model written the way transformers'
modeling_qwen3 runs it in eager mode (nn.Linear modules, rotate-half RoPE, GQA by repeat_kv,
fp32 softmax, KV cache in generate), timed on the same shapes. Prints one JSON object.

usage: /usr/bin/python3 tools/bench_model_torch.py V D F L Hq Hkv hd B T P NEW THREADS
"""
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as Fn

V, D, FF, L, HQ, HKV, HD, B, T, P, NEW, THREADS = map(int, sys.argv[1:13])
torch.set_num_threads(THREADS)
torch.manual_seed(0)


class RMSNorm(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6))


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


class Layer(nn.Module):
    def __init__(self):
        super().__init__()
        self.q_proj = nn.Linear(D, HQ * HD, bias=False)
        self.k_proj = nn.Linear(D, HKV * HD, bias=False)
        self.v_proj = nn.Linear(D, HKV * HD, bias=False)
        self.o_proj = nn.Linear(HQ * HD, D, bias=False)
        self.q_norm, self.k_norm = RMSNorm(HD), RMSNorm(HD)
        self.gate_proj = nn.Linear(D, FF, bias=False)
        self.up_proj = nn.Linear(D, FF, bias=False)
        self.down_proj = nn.Linear(FF, D, bias=False)
        self.ln1, self.ln2 = RMSNorm(D), RMSNorm(D)

    def forward(self, x, cos, sin, cache=None):
        b, t, _ = x.shape
        h = self.ln1(x)
        q = self.q_norm(self.q_proj(h).view(b, t, HQ, HD)).transpose(1, 2)
        k = self.k_norm(self.k_proj(h).view(b, t, HKV, HD)).transpose(1, 2)
        v = self.v_proj(h).view(b, t, HKV, HD).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if cache is not None:
            if cache[0] is not None:
                k = torch.cat([cache[0], k], dim=2)
                v = torch.cat([cache[1], v], dim=2)
            cache[0], cache[1] = k, v
        rep = HQ // HKV
        kk = k.repeat_interleave(rep, dim=1)
        vv = v.repeat_interleave(rep, dim=1)
        s = (q @ kk.transpose(2, 3)) * HD ** -0.5
        tk = kk.shape[2]
        if t > 1:
            mask = torch.full((t, tk), float("-inf")).triu(tk - t + 1)
            s = s + mask
        a = torch.softmax(s.float(), dim=-1) @ vv
        x = x + self.o_proj(a.transpose(1, 2).reshape(b, t, HQ * HD))
        h = self.ln2(x)
        return x + self.down_proj(Fn.silu(self.gate_proj(h)) * self.up_proj(h))


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(V, D)
        self.layers = nn.ModuleList([Layer() for _ in range(L)])
        self.norm = RMSNorm(D)
        inv = 1.0 / (1e6 ** (torch.arange(0, HD, 2).float() / HD))
        self.register_buffer("inv", inv)

    def rope(self, pos):
        f = pos[:, None].float() * self.inv[None]
        e = torch.cat([f, f], dim=-1)
        return e.cos()[None, None], e.sin()[None, None]

    def forward(self, ids, start=0, caches=None):
        x = self.embed(ids)
        cos, sin = self.rope(torch.arange(start, start + ids.shape[1]))
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, None if caches is None else caches[i])
        return self.norm(x) @ self.embed.weight.t()  # tied lm_head


model = Model()
for p in model.parameters():
    if p.dim() == 2:
        nn.init.normal_(p, std=0.02)
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
