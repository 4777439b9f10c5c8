// Chat templates: C rendering against Hugging Face's Jinja (fixture chat_cases.jsonl from
// tools/tokenizer_make_chat_fixtures.mjs), family detection, plain mode, unsupported templates,
// eos/pad from the config files.
#include <sys/stat.h>

#include "core/fileio.h"
#include "core/json.h"
#include "policy/tokenizer.h"
#include "test.h"


static char tmpdir[64];

// A tokenizer dir in /tmp: the tiny fixture tokenizer.json plus a chat_template.jinja (or none).
static Tokenizer *load_with_template(const char *template_name, Error *err) {
    char path[512], src[512];
    snprintf(path, sizeof path, "%s/tokenizer.json", tmpdir);
    size_t n;
    char *json = file_read_all("tests/fixtures/tokenizer/tiny/tokenizer.json", &n, err);
    if (!json || file_write_atomic(path, json, n, err)) {
        free(json);
        return NULL;
    }
    free(json);
    snprintf(path, sizeof path, "%s/chat_template.jinja", tmpdir);
    unlink(path);
    if (template_name) {
        snprintf(src, sizeof src, "tests/fixtures/tokenizer/chat_templates/%s.jinja", template_name);
        char *tpl = file_read_all(src, &n, err);
        if (!tpl || file_write_atomic(path, tpl, n, err)) {
            free(tpl);
            return NULL;
        }
        free(tpl);
    }
    Tokenizer *t;
    if (tokenizer_load(tmpdir, &t, err)) return NULL;
    return t;
}

static void test_chat_cases_match_jinja(void) {
    Error err;
    char *data = file_read_all("tests/fixtures/tokenizer/chat_cases.jsonl", NULL, &err);
    CHECK_MSG(data, "%s", err.msg);
    const char *names[] = {"qwen3", "qwen25", "qwen25_math", "qwen2"};
    Tokenizer *toks[4] = {0};
    for (int i = 0; i < 4; i++) {
        toks[i] = load_with_template(names[i], &err);
        CHECK_MSG(toks[i], "%s: %s", names[i], err.msg);
    }
    int line = 0, checked = 0;
    for (char *p = data, *nl; *p; p = nl + 1) {
        nl = strchr(p, '\n');
        if (!nl) break;
        *nl = 0;
        line++;
        cJSON *row = json_parse_text(p, "chat_cases.jsonl", &err);
        CHECK_MSG(row, "%s", err.msg);
        const char *name = cJSON_GetObjectItem(row, "template")->valuestring;
        Tokenizer *t = NULL;
        for (int i = 0; i < 4; i++)
            if (!strcmp(name, names[i])) t = toks[i];
        CHECK(t);
        const cJSON *msgs = cJSON_GetObjectItem(row, "messages");
        int n = cJSON_GetArraySize(msgs), k = 0;
        ChatMessage m[16];
        for (const cJSON *it = msgs->child; it; it = it->next, k++) {
            m[k].role = cJSON_GetObjectItem(it, "role")->valuestring;
            m[k].content = cJSON_GetObjectItem(it, "content")->valuestring;
        }
        int gen = cJSON_IsTrue(cJSON_GetObjectItem(row, "add_generation_prompt"));
        int think = cJSON_IsTrue(cJSON_GetObjectItem(row, "enable_thinking"));
        char *text;
        int rc = chat_template_render(t, m, n, gen, think, &text, &err);
        CHECK_MSG(rc == 0, "line %d: %s", line, err.msg);
        const char *want = cJSON_GetObjectItem(row, "text")->valuestring;
        if (strcmp(text, want)) {
            fprintf(stderr, "chat_cases.jsonl line %d (%s)\n--- got\n%s\n--- want\n%s\n", line, name, text, want);
            test_fail_at(__FILE__, __LINE__, "line %d: rendering differs from Jinja", line);
        }
        free(text);
        cJSON_Delete(row);
        checked++;
        if (test_state.state) break;
    }
    for (int i = 0; i < 4; i++) tokenizer_free(toks[i]);
    free(data);
    CHECK(checked >= 200);
}

static void test_family_detection(void) {
    Error err;
    const char *names[] = {"qwen3", "qwen25", "qwen2", NULL};
    const char *want[] = {"chatml-qwen3", "chatml", "chatml", "plain"};
    for (int i = 0; i < 4; i++) {
        Tokenizer *t = load_with_template(names[i], &err);
        CHECK_MSG(t, "%s", err.msg);
        CHECK_MSG(!strcmp(chat_template_family(t), want[i]), "%s: %s", names[i] ? names[i] : "none",
                  chat_template_family(t));
        tokenizer_free(t);
    }
}

static void test_plain_mode(void) {
    Error err;
    Tokenizer *t = load_with_template(NULL, &err);
    CHECK_MSG(t, "%s", err.msg);
    ChatMessage m[] = {{"system", "Solve: "}, {"user", "2+2="}};
    char *text;
    CHECK(chat_template_render(t, m, 2, 1, 0, &text, &err) == 0);
    CHECK(!strcmp(text, "Solve: 2+2="));
    free(text);
    CHECK(chat_template_render(t, m, 0, 1, 0, &text, &err) == 0);
    CHECK(!strcmp(text, ""));
    free(text);
    tokenizer_free(t);
}

static void test_unsupported_template(void) {
    Error err;
    Tokenizer *t = load_with_template("llama3", &err);
    CHECK_MSG(t, "%s", err.msg);  // loading works; rendering is refused
    CHECK(!strcmp(chat_template_family(t), "unsupported"));
    ChatMessage m[] = {{"user", "hi"}};
    char *text = (char *)1;
    CHECK(chat_template_render(t, m, 1, 1, 0, &text, &err) == -1);
    CHECK(text == NULL);
    CHECK(strstr(err.msg, "not supported") && strstr(err.msg, "ChatML"));
    tokenizer_free(t);
}

static void test_bad_messages(void) {
    Error err;
    Tokenizer *t = load_with_template("qwen3", &err);
    CHECK_MSG(t, "%s", err.msg);
    char *text;
    ChatMessage odd[] = {{"function", "x"}};
    CHECK(chat_template_render(t, odd, 1, 0, 0, &text, &err) == -1);
    CHECK(strstr(err.msg, "function"));
    ChatMessage null_content[] = {{"user", NULL}};
    CHECK(chat_template_render(t, null_content, 1, 0, 0, &text, &err) == -1);
    tokenizer_free(t);
}

static void test_eos_pad_from_configs(void) {
    Error err;
    Tokenizer *t;
    CHECK_MSG(tokenizer_load("tests/fixtures/tokenizer/tiny", &t, &err) == 0, "%s", err.msg);
    int eot = tokenizer_token_id(t, "<|endoftext|>"), end = tokenizer_token_id(t, "<|im_end|>");
    CHECK(eot == 265 && end == 267);
    const int *eos;
    int n = tokenizer_eos_ids(t, &eos);
    CHECK(n == 2);
    CHECK(eos[0] == end && eos[1] == eot);  // generation_config's order
    CHECK(tokenizer_pad_id(t) == eot);
    tokenizer_free(t);
}

// The real Qwen3 directory: template from tokenizer_config.json, thinking switch.
static void test_qwen3_shared_config(void) {
    if (!test_shared_path("tokenizers/qwen3/tokenizer_config.json")) {
        test_skip("../shared/tokenizers/qwen3 not present");
        return;
    }
    Error err;
    Tokenizer *t;
    CHECK_MSG(tokenizer_load("../shared/tokenizers/qwen3", &t, &err) == 0, "%s", err.msg);
    CHECK(!strcmp(chat_template_family(t), "chatml-qwen3"));
    ChatMessage m[] = {{"user", "What is 1+1?"}};
    char *text;
    CHECK(chat_template_render(t, m, 1, 1, 0, &text, &err) == 0);
    CHECK(!strcmp(text, "<|im_start|>user\nWhat is 1+1?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"));
    int *ids, n;
    CHECK(tokenizer_encode(t, text, strlen(text), &ids, &n, &err) == 0);
    CHECK(ids[0] == 151644 && ids[n - 4] == 151667 && ids[n - 3] == 271 && ids[n - 2] == 151668 && ids[n - 1] == 271);
    free(ids);
    free(text);
    CHECK(chat_template_render(t, m, 1, 1, 1, &text, &err) == 0);
    CHECK(!strcmp(text, "<|im_start|>user\nWhat is 1+1?<|im_end|>\n<|im_start|>assistant\n"));
    free(text);
    CHECK(tokenizer_pad_id(t) == 151643);
    tokenizer_free(t);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pionrl_tokchat_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_chat_cases_match_jinja);
    RUN(test_family_detection);
    RUN(test_plain_mode);
    RUN(test_unsupported_template);
    RUN(test_bad_messages);
    RUN(test_eos_pad_from_configs);
    RUN(test_qwen3_shared_config);
    char path[512];
    snprintf(path, sizeof path, "%s/tokenizer.json", tmpdir);
    unlink(path);
    snprintf(path, sizeof path, "%s/chat_template.jinja", tmpdir);
    unlink(path);
    rmdir(tmpdir);
    return test_summary("test_tokenizer_chat");
}
