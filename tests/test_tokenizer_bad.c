// Malformed tokenizer files: each edit of the tiny fixture tokenizer.json (or its config files)
// must give a clear error that names the file and the field, never a crash.
#include "core/fileio.h"
#include "core/json.h"
#include "policy/tokenizer.h"
#include "test.h"

static char dir[64];
static char *tiny_json;  // the fixture text

static void write_file(const char *name, const char *text) {
    char path[256];
    Error err;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (file_write_atomic(path, text, strlen(text), &err)) fprintf(stderr, "%s\n", err.msg);
}

static void remove_file(const char *name) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
}

// Loads dir and expects failure with all of the given substrings in the message.
static int load_fails_with(const char *a, const char *b) {
    Tokenizer *t = NULL;
    Error err = {{0}};
    if (tokenizer_load(dir, &t, &err) == 0) {
        tokenizer_free(t);
        test_fail_at(__FILE__, __LINE__, "load succeeded; expected an error with '%s'", a);
        return 0;
    }
    if (t) test_fail_at(__FILE__, __LINE__, "failed load left *out set");
    if (!strstr(err.msg, a) || (b && !strstr(err.msg, b))) {
        test_fail_at(__FILE__, __LINE__, "error '%s' lacks '%s'%s%s", err.msg, a, b ? " / " : "", b ? b : "");
        return 0;
    }
    return 1;
}

// Parses the fixture, lets edit change it, writes it as tokenizer.json.
static void write_edited(void (*edit)(cJSON *root)) {
    cJSON *root = cJSON_Parse(tiny_json);
    edit(root);
    char *text = cJSON_PrintUnformatted(root);
    write_file("tokenizer.json", text);
    free(text);
    cJSON_Delete(root);
}

static cJSON *model(cJSON *root) { return cJSON_GetObjectItemCaseSensitive(root, "model"); }

static void e_no_model(cJSON *r) { cJSON_DeleteItemFromObjectCaseSensitive(r, "model"); }
static void e_wordpiece(cJSON *r) { cJSON_ReplaceItemInObjectCaseSensitive(model(r), "type", cJSON_CreateString("WordPiece")); }
static void e_no_vocab(cJSON *r) { cJSON_DeleteItemFromObjectCaseSensitive(model(r), "vocab"); }
static void e_no_merges(cJSON *r) { cJSON_DeleteItemFromObjectCaseSensitive(model(r), "merges"); }
static void e_bad_id(cJSON *r) {
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(model(r), "vocab"), "a", cJSON_CreateString("x"));
}
static void e_negative_id(cJSON *r) {
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(model(r), "vocab"), "a", cJSON_CreateNumber(-3));
}
static void e_huge_id(cJSON *r) {
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(model(r), "vocab"), "a", cJSON_CreateNumber(1e12));
}
static void e_same_id(cJSON *r) {
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(model(r), "vocab"), "a", cJSON_CreateNumber(98));
}
static void e_missing_byte(cJSON *r) { cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(model(r), "vocab"), "a"); }
static void e_not_bytelevel(cJSON *r) {
    cJSON_AddNumberToObject(cJSON_GetObjectItemCaseSensitive(model(r), "vocab"), "\xe4\xb8\xad", 400);
}
static void e_merge_unknown(cJSON *r) {
    cJSON *m = cJSON_CreateStringArray((const char *[]){"zzzz", "a"}, 2);
    cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(model(r), "merges"), m);
}
static void e_merge_result_unknown(cJSON *r) {
    cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(model(r), "merges"), cJSON_CreateStringArray((const char *[]){"q", "q"}, 2));
}
static void e_merge_bad_string(cJSON *r) {
    cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(model(r), "merges"), cJSON_CreateString("abc"));
}
static void e_merge_number(cJSON *r) { cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(model(r), "merges"), cJSON_CreateNumber(5)); }
static void e_bad_regex(cJSON *r) {
    cJSON *split = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "pre_tokenizer"), "pretokenizers"), 0);
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(split, "pattern"), "Regex", cJSON_CreateString("(\\p{L}+"));
}
static void e_metaspace(cJSON *r) {
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "type", "Metaspace");
    cJSON_ReplaceItemInObjectCaseSensitive(r, "pre_tokenizer", p);
}
static void e_no_pretok(cJSON *r) { cJSON_ReplaceItemInObjectCaseSensitive(r, "pre_tokenizer", cJSON_CreateNull()); }
static void e_nfkc(cJSON *r) {
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "normalizer"), "type", cJSON_CreateString("NFKC"));
}
static void e_decoder(cJSON *r) {
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "decoder"), "type", cJSON_CreateString("Metaspace"));
}
static void e_added_no_id(cJSON *r) {
    cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r, "added_tokens"), 0), "id");
}
static void e_added_empty(cJSON *r) {
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r, "added_tokens"), 1), "content",
                              cJSON_CreateString(""));
}
static void e_added_clash(cJSON *r) {
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r, "added_tokens"), 1), "id", cJSON_CreateNumber(97));
}
static void e_dropout(cJSON *r) { cJSON_ReplaceItemInObjectCaseSensitive(model(r), "dropout", cJSON_CreateNumber(0.1)); }

static void test_malformed_tokenizer_json(void) {
    struct {
        void (*edit)(cJSON *);
        const char *a, *b;
    } cases[] = {
        {e_no_model, "tokenizer.json", "missing \"model\""},
        {e_wordpiece, "model.type", "WordPiece"},
        {e_no_vocab, "model.vocab", "missing"},
        {e_no_merges, "model.merges", "missing"},
        {e_bad_id, "model.vocab[\"a\"]", "not a valid id"},
        {e_negative_id, "model.vocab[\"a\"]", "not a valid id"},
        {e_huge_id, "model.vocab[\"a\"]", "not a valid id"},
        {e_same_id, "tokenizer.json", "two different tokens"},
        {e_missing_byte, "no token for byte 0x61", NULL},
        {e_not_bytelevel, "byte-level form", "id 400"},
        {e_merge_unknown, "model.merges[9]", "\"zzzz\" is not in model.vocab"},
        {e_merge_result_unknown, "model.merges[9]", "merged token \"qq\""},
        {e_merge_bad_string, "model.merges[9]", "not two tokens"},
        {e_merge_number, "model.merges[9]", "neither"},
        {e_bad_regex, "regex does not compile", "tokenizer.json"},
        {e_metaspace, "pre_tokenizer type 'Metaspace'", "not supported"},
        {e_no_pretok, "pre_tokenizer is missing", NULL},
        {e_nfkc, "normalizer type 'NFKC'", "not supported"},
        {e_decoder, "decoder type 'Metaspace'", "not supported"},
        {e_added_no_id, "added_tokens[0].id", NULL},
        {e_added_empty, "added_tokens[1].content", NULL},
        {e_added_clash, "id 97", "two different tokens"},
        {e_dropout, "dropout", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_edited(cases[i].edit);
        if (!load_fails_with(cases[i].a, cases[i].b)) {
            fprintf(stderr, "malformed case %zu\n", i);
            return;
        }
    }
}

static void test_broken_json_text(void) {
    write_file("tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {");
    CHECK(load_fails_with("tokenizer.json", "invalid JSON"));
    write_file("tokenizer.json", "");
    CHECK(load_fails_with("tokenizer.json", "invalid JSON"));
    write_file("tokenizer.json", "[1, 2, 3]");
    CHECK(load_fails_with("tokenizer.json", NULL));
    write_file("tokenizer.json", "null");
    CHECK(load_fails_with("tokenizer.json", NULL));
    // Truncated in the middle of the fixture.
    char *half = strndup(tiny_json, strlen(tiny_json) / 2);
    write_file("tokenizer.json", half);
    free(half);
    CHECK(load_fails_with("invalid JSON", NULL));
}

static void test_bad_config_files(void) {
    write_file("tokenizer.json", tiny_json);
    write_file("tokenizer_config.json", "{\"eos_token\": \"<|nope|>\"}");
    CHECK(load_fails_with("tokenizer_config.json", "eos_token \"<|nope|>\""));
    write_file("tokenizer_config.json", "{\"eos_token\": 5}");
    CHECK(load_fails_with("tokenizer_config.json", "eos_token"));
    write_file("tokenizer_config.json", "{\"chat_template\": 12}");
    CHECK(load_fails_with("tokenizer_config.json", "chat_template"));
    write_file("tokenizer_config.json", "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"x\"}]}");
    CHECK(load_fails_with("tokenizer_config.json", "default"));
    write_file("tokenizer_config.json", "{\"eos_token\": {\"content\": \"<|im_end|>\"}}");
    write_file("generation_config.json", "{\"eos_token_id\": [267, 99999]}");
    CHECK(load_fails_with("generation_config.json", "eos_token_id"));
    write_file("generation_config.json", "{\"eos_token_id\": \"x\"}");
    CHECK(load_fails_with("generation_config.json", "eos_token_id"));
    write_file("generation_config.json", "{oops");
    CHECK(load_fails_with("generation_config.json", "invalid JSON"));
    remove_file("generation_config.json");
    // {"content": ...} form of eos_token is accepted.
    Tokenizer *t;
    Error err;
    CHECK_MSG(tokenizer_load(dir, &t, &err) == 0, "%s", err.msg);
    tokenizer_free(t);
    remove_file("tokenizer_config.json");
}

static void test_missing_files(void) {
    remove_file("tokenizer.json");
    CHECK(load_fails_with("no tokenizer.json or tokenizer.model", NULL));
    Tokenizer *t = (Tokenizer *)1;
    Error err;
    CHECK(tokenizer_load("/nonexistent/pionrl/tok", &t, &err) == -1);
    CHECK(t == NULL);
    CHECK(strstr(err.msg, "/nonexistent/pionrl/tok"));
}

// The tiny tokenizer itself: merges and added tokens as designed.
static void test_tiny_encode(void) {
    Tokenizer *t;
    Error err;
    CHECK_MSG(tokenizer_load("tests/fixtures/tokenizer/tiny", &t, &err) == 0, "%s", err.msg);
    int *ids, n;
    const char *text = "the abab<|im_end|>\n\n12";
    CHECK(tokenizer_encode(t, text, strlen(text), &ids, &n, &err) == 0);
    // "the" is not " the": t h e -> t + he; " abab" -> " " (Ġa merges first? rank 4 vs ab 5)...
    char *back;
    CHECK(tokenizer_decode(t, ids, n, 0, &back, &err) == 0);
    CHECK(!strcmp(back, text));
    int im_end = tokenizer_token_id(t, "<|im_end|>");
    int found = 0;
    for (int i = 0; i < n; i++) found += ids[i] == im_end;
    CHECK(found == 1);
    free(back);
    free(ids);
    const char *the = " the";
    CHECK(tokenizer_encode(t, the, 4, &ids, &n, &err) == 0);
    CHECK(n == 1 && ids[0] == tokenizer_token_id(t, "\xC4\xA0the"));
    free(ids);
    tokenizer_free(t);
}

static void e_string_merges(cJSON *r) {
    // Older files write merges as "left right" strings.
    cJSON *merges = cJSON_GetObjectItemCaseSensitive(model(r), "merges");
    cJSON *strs = cJSON_CreateArray();
    for (cJSON *m = merges->child; m; m = m->next) {
        char buf[64];
        snprintf(buf, sizeof buf, "%s %s", m->child->valuestring, m->child->next->valuestring);
        cJSON_AddItemToArray(strs, cJSON_CreateString(buf));
    }
    cJSON_ReplaceItemInObjectCaseSensitive(model(r), "merges", strs);
}

static void e_gpt2_pretokenizer(cJSON *r) {
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "type", "ByteLevel");
    cJSON_AddBoolToObject(p, "add_prefix_space", 1);
    cJSON_AddBoolToObject(p, "use_regex", 1);
    cJSON_ReplaceItemInObjectCaseSensitive(r, "pre_tokenizer", p);
}

static int *encode_in_dir(const char *text, int *n) {
    Tokenizer *t;
    Error err;
    int *ids = NULL;
    if (tokenizer_load(dir, &t, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return NULL;
    }
    if (tokenizer_encode(t, text, strlen(text), &ids, n, &err)) ids = NULL;
    tokenizer_free(t);
    return ids;
}

static void test_other_valid_layouts(void) {
    const char *text = "the abab in 12 the";
    int n1, n2;
    write_file("tokenizer.json", tiny_json);
    int *a = encode_in_dir(text, &n1);
    write_edited(e_string_merges);
    int *b = encode_in_dir(text, &n2);
    CHECK(a && b && n1 == n2 && !memcmp(a, b, n1 * sizeof *a));
    free(a);
    free(b);
    // GPT-2 layout: ByteLevel with its own regex and a prefix space: "the" becomes " the" (one id).
    write_edited(e_gpt2_pretokenizer);
    a = encode_in_dir("the", &n1);
    CHECK(a && n1 == 1);
    free(a);
    remove_file("tokenizer.json");
}

// Without ../shared: bad input and streaming on the tiny tokenizer, where every non-ASCII character
// is several byte tokens.
static void test_tiny_bad_input_and_stream(void) {
    Tokenizer *t;
    Error err;
    CHECK_MSG(tokenizer_load("tests/fixtures/tokenizer/tiny", &t, &err) == 0, "%s", err.msg);
    int *ids = NULL, n = -1;
    const char *bad[] = {"abc\xff", "\xc3", "\xe2\x82", "\xed\xa0\x80", "\xc0\xaf", "ok\xf5\x80\x80\x80", "\x80"};
    for (int i = 0; i < 7; i++) {
        CHECK(tokenizer_encode(t, bad[i], strlen(bad[i]), &ids, &n, &err) == -1);
        CHECK(strstr(err.msg, "not valid UTF-8"));
        CHECK(ids == NULL && n == 0);
    }
    const char *text = "caf\xc3\xa9 \xe4\xbd\xa0\xf0\x9f\x98\x80!";
    CHECK(tokenizer_encode(t, text, strlen(text), &ids, &n, &err) == 0);
    TokenStream *s = token_stream_new(t);
    char acc[64] = "";
    for (int i = 0; i < n; i++) {
        const char *piece = token_stream_push(s, ids[i]);
        // A piece never ends inside a character.
        size_t k = strlen(piece);
        if (k) CHECK(((unsigned char)piece[k - 1] & 0xC0) != 0xC0);
        strcat(acc, piece);
    }
    CHECK(!strcmp(token_stream_flush(s), ""));
    CHECK(!strcmp(acc, text));
    token_stream_free(s);
    // Cut after the first byte of the emoji: whole decode and stream + flush both end in U+FFFD.
    int cut = n - 4;
    char *whole;
    CHECK(tokenizer_decode(t, ids, cut, 0, &whole, &err) == 0);
    s = token_stream_new(t);
    acc[0] = 0;
    for (int i = 0; i < cut; i++) strcat(acc, token_stream_push(s, ids[i]));
    strcat(acc, token_stream_flush(s));
    CHECK(!strcmp(acc, whole));
    CHECK(strstr(whole, "\xEF\xBF\xBD"));
    free(whole);
    token_stream_free(s);
    free(ids);
    int out_of_range[] = {5, 270};
    char *txt = (char *)1;
    CHECK(tokenizer_decode(t, out_of_range, 2, 0, &txt, &err) == -1);
    CHECK(txt == NULL && strstr(err.msg, "270"));
    tokenizer_free(t);
}

int main(void) {
    Error err;
    tiny_json = file_read_all("tests/fixtures/tokenizer/tiny/tokenizer.json", NULL, &err);
    if (!tiny_json) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    snprintf(dir, sizeof dir, "/tmp/pionrl_tokbad_XXXXXX");
    if (!mkdtemp(dir)) return 1;
    RUN(test_malformed_tokenizer_json);
    RUN(test_broken_json_text);
    RUN(test_bad_config_files);
    RUN(test_missing_files);
    RUN(test_tiny_encode);
    RUN(test_tiny_bad_input_and_stream);
    RUN(test_other_valid_layouts);
    remove_file("tokenizer.json");
    remove_file("tokenizer_config.json");
    remove_file("generation_config.json");
    rmdir(dir);
    free(tiny_json);
    return test_summary("test_tokenizer_bad");
}
