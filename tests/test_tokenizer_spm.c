// SentencePiece through the common Tokenizer interface: a tiny model trained by spm_train
// (tools/tokenizer_make_spm.sh) must give spm_encode's ids, decode back, and stream.
#include "core/fileio.h"
#include "core/json.h"
#include "policy/tokenizer.h"
#include "test.h"

static Tokenizer *spm;

static void test_spm_load(void) {
    CHECK(spm);
    CHECK(!strcmp(tokenizer_kind_name(spm), "sentencepiece"));
    CHECK(tokenizer_vocab_size(spm) == 500);
    CHECK(tokenizer_token_id(spm, "</s>") == 2);
    CHECK(tokenizer_token_id(spm, "<s>") == 1);
    CHECK(tokenizer_token_id(spm, "no-such-piece") == -1);
    const int *eos;
    CHECK(tokenizer_eos_ids(spm, &eos) == 1 && eos[0] == 2);
    CHECK(tokenizer_pad_id(spm) == 3);
    CHECK(tokenizer_is_special(spm, 2) && !tokenizer_is_special(spm, 300));
    CHECK(!strcmp(chat_template_family(spm), "plain"));
}

static void test_spm_matches_spm_encode(void) {
    CHECK(spm);
    Error err;
    char *data = file_read_all("tests/fixtures/tokenizer/spm_ids.jsonl", NULL, &err);
    CHECK_MSG(data, "%s", err.msg);
    int lines = 0;
    for (char *p = data, *nl; (nl = strchr(p, '\n')); p = nl + 1) {
        *nl = 0;
        cJSON *row = json_parse_text(p, "spm_ids.jsonl", &err);
        CHECK_MSG(row, "%s", err.msg);
        const char *text = cJSON_GetObjectItem(row, "text")->valuestring;
        const cJSON *want = cJSON_GetObjectItem(row, "ids");
        int *ids, n;
        CHECK_MSG(tokenizer_encode(spm, text, strlen(text), &ids, &n, &err) == 0, "%s", err.msg);
        CHECK_MSG(n == cJSON_GetArraySize(want), "line %d: %d ids, want %d", lines + 1, n, cJSON_GetArraySize(want));
        int k = 0;
        for (const cJSON *it = want->child; it; it = it->next, k++) CHECK(ids[k] == it->valueint);
        // Decode: SentencePiece drops the leading space and collapses runs of spaces; check the
        // streaming decode gives exactly what whole decode gives.
        char *back;
        CHECK(tokenizer_decode(spm, ids, n, 0, &back, &err) == 0);
        TokenStream *s = token_stream_new(spm);
        char acc[1024] = "";
        for (int i = 0; i < n; i++) strcat(acc, token_stream_push(s, ids[i]));
        strcat(acc, token_stream_flush(s));
        CHECK_MSG(!strcmp(acc, back), "line %d: stream '%s' vs decode '%s'", lines + 1, acc, back);
        token_stream_free(s);
        free(back);
        free(ids);
        cJSON_Delete(row);
        lines++;
    }
    free(data);
    CHECK(lines == 8);
}

static void test_spm_roundtrip_plain_text(void) {
    CHECK(spm);
    Error err;
    const char *text = "Janet has 3 apples and buys 12 more.";
    int *ids, n;
    CHECK(tokenizer_encode(spm, text, strlen(text), &ids, &n, &err) == 0);
    char *back;
    CHECK(tokenizer_decode(spm, ids, n, 1, &back, &err) == 0);
    CHECK(!strcmp(back, text));
    free(back);
    // Byte-fallback pieces of one emoji: the stream holds them until the character is whole.
    const char *emoji = "\xF0\x9F\x98\x80";
    free(ids);
    CHECK(tokenizer_encode(spm, emoji, 4, &ids, &n, &err) == 0);
    CHECK(n >= 4);
    TokenStream *s = token_stream_new(spm);
    char acc[64] = "";
    for (int i = 0; i < n; i++) {
        const char *piece = token_stream_push(s, ids[i]);
        CHECK(!strstr(piece, "\xEF\xBF\xBD"));  // never a replacement character mid-way
        strcat(acc, piece);
    }
    CHECK(!strcmp(acc, emoji));
    token_stream_free(s);
    free(ids);
}

static void test_spm_bad_input(void) {
    CHECK(spm);
    Error err;
    int *ids, n;
    CHECK(tokenizer_encode(spm, "ab\xff", 3, &ids, &n, &err) == -1);
    CHECK(strstr(err.msg, "UTF-8"));
    int bad[] = {5, 500};
    char *s;
    CHECK(tokenizer_decode(spm, bad, 2, 0, &s, &err) == -1);
    CHECK(strstr(err.msg, "500"));
    Tokenizer *t;
    char dir[] = "/tmp/pionrl_tokspm_XXXXXX";
    CHECK(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/tokenizer.model", dir);
    CHECK(file_write_atomic(path, "not a protobuf", 14, &err) == 0);
    CHECK(tokenizer_load(dir, &t, &err) == -1);
    CHECK(strstr(err.msg, "tokenizer.model"));
    unlink(path);
    rmdir(dir);
}

int main(void) {
    Error err;
    if (tokenizer_load("tests/fixtures/tokenizer/spm", &spm, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        spm = NULL;
    }
    RUN(test_spm_load);
    RUN(test_spm_matches_spm_encode);
    RUN(test_spm_roundtrip_plain_text);
    RUN(test_spm_bad_input);
    tokenizer_free(spm);
    return test_summary("test_tokenizer_spm");
}
