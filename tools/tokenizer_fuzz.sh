#!/usr/bin/env bash
# Builds the tokenizer fuzz harnesses (tests/fuzz/fuzz_tokenizer*.c) with clang's libFuzzer plus
# AddressSanitizer/UBSan into build-fuzz-tok/ and runs each for SECONDS (default 60).
#   tools/tokenizer_fuzz.sh [SECONDS]        (from the repository root)
set -euo pipefail
secs=${1:-60}
out=build-fuzz-tok
mkdir -p "$out/corpus_text" "$out/corpus_json"
CFLAGS="-std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined -Isrc"
srcs="src/policy/tokenizer.c src/policy/tokenizer_json.c src/policy/tokenizer_config.c src/policy/tokenizer_spm.c
      src/policy/tokenizer_stream.c src/policy/tokenizer_utf8.c src/policy/bpe.c src/policy/chat_template.c
      src/core/error.c src/core/fileio.c src/core/json.c"
clang++ -std=c++17 -g -O1 -fsanitize=address,undefined -Isrc -c src/policy/spm_shim.cc -o "$out/spm_shim.o"
libs="-lcjson -lpcre2-8 -lutf8proc -lsentencepiece -lstdc++ -lm -lpthread"
objs=""
for f in $srcs; do
  o="$out/$(basename "$f" .c).o"
  clang $CFLAGS -fsanitize=fuzzer-no-link -c "$f" -o "$o"
  objs="$objs $o"
done
for h in fuzz_tokenizer fuzz_tokenizer_json; do
  clang $CFLAGS -c tests/fuzz/$h.c -o "$out/$h.o"
  # Linked by clang++ so the C++ shim's sanitizer runtime comes along.
  clang++ -fsanitize=fuzzer,address,undefined -o "$out/$h" "$out/$h.o" $objs "$out/spm_shim.o" $libs
done
# Seeds: fixture texts for the encoder, the tiny tokenizer.json for the loader.
head -c 4000 tests/fixtures/tokenizer/qwen3_ids.jsonl > "$out/corpus_text/seed_jsonl"
printf '\x00Hello <|im_start|>user\n caf\xc3\xa9 \xf0\x9f\x98\x80 123' > "$out/corpus_text/seed_text"
printf '\x01\x01\x02\x03\xaa\xbb\x01\xff\xff\x02' > "$out/corpus_text/seed_ids"
cp tests/fixtures/tokenizer/tiny/tokenizer.json "$out/corpus_json/seed.json"
"$out/fuzz_tokenizer" -max_total_time="$secs" -max_len=4096 -print_final_stats=1 "$out/corpus_text"
"$out/fuzz_tokenizer_json" -max_total_time="$secs" -max_len=16384 -print_final_stats=1 "$out/corpus_json"
