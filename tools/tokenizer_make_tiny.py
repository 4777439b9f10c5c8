#!/usr/bin/env python3
"""Writes tests/fixtures/tokenizer/tiny/: a tiny byte-level BPE tokenizer.json in the Qwen layout
(256 byte tokens, a handful of merges, ChatML added tokens), with tokenizer_config.json and
generation_config.json. Used by the tokenizer tests that must not depend on ../shared, and as the
base the malformed-file tests edit. Run from the repository root: python3 tools/tokenizer_make_tiny.py"""
import json
import os


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


b2u = bytes_to_unicode()
vocab = {b2u[b]: b for b in range(256)}
merges = []
for left, right in [(" ", "t"), ("h", "e"), (" t", "he"), ("i", "n"), (" ", "a"), ("a", "b"), ("ab", "ab"),
                    ("\n", "\n"), ("1", "2")]:
    l = "".join(b2u[c] for c in left.encode())
    r = "".join(b2u[c] for c in right.encode())
    vocab[l + r] = len(vocab)
    merges.append([l, r])
added = []
for i, (content, special) in enumerate([("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True),
                                         ("<think>", False), ("</think>", False)]):
    added.append({"id": len(vocab) + i, "content": content, "single_word": False, "lstrip": False,
                  "rstrip": False, "normalized": False, "special": special})
regex = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
         "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")
tok = {
    "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
    "normalizer": {"type": "NFC"},
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]},
    "post_processor": None,
    "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
    "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
              "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
              "vocab": vocab, "merges": merges},
}
out = "tests/fixtures/tokenizer/tiny"
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
    json.dump(tok, f, ensure_ascii=False, indent=1)
with open(os.path.join(out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
    json.dump({"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "bos_token": None}, f, indent=1)
with open(os.path.join(out, "generation_config.json"), "w", encoding="utf-8") as f:
    json.dump({"eos_token_id": [len(vocab) + 2, len(vocab)], "pad_token_id": len(vocab)}, f, indent=1)
print("wrote", out, "with", len(vocab), "vocab tokens and", len(added), "added tokens")
