// Offline parts of `pionrl download`: SHA-256 against the FIPS 180-4 test vectors, Hub listing
// parsing (both shapes) and path safety, \boxed{} extraction, and the data set converters
// (GSM8K, MATH from tar/JSONL/JSON arrays, MATH-500), with bad-input cases.
#include <ftw.h>
#include <stdint.h>
#include <sys/stat.h>

#include "core/fileio.h"
#include "core/hub.h"
#include "core/hub_dataset.h"
#include "core/sha256.h"
#include "test.h"

static char tmpdir[256];

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) { return remove(p); }
static void rm_tree(const char *dir) { nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

static const char *tmp_path(const char *name) {
    static char buf[8][512];
    static int k;
    char *out = buf[k++ % 8];
    snprintf(out, 512, "%s/%s", tmpdir, name);
    return out;
}

static void write_text(const char *path, const char *text) {
    Error e;
    file_write_atomic(path, text, strlen(text), &e);
}

static void test_sha256_vectors(void) {
    char hex[65];
    sha256_buffer_hex("", 0, hex);
    CHECK(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    sha256_buffer_hex("abc", 3, hex);
    CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha256_buffer_hex(m448, strlen(m448), hex);
    CHECK(!strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
    const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrs"
                       "mnopqrstnopqrstu";
    sha256_buffer_hex(m896, strlen(m896), hex);
    CHECK(!strcmp(hex, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"));
    // One million 'a', fed in uneven pieces to exercise the block buffering.
    Sha256 s;
    sha256_init(&s);
    char a[1000];
    memset(a, 'a', sizeof a);
    size_t done = 0, step = 1;
    while (done < 1000000) {
        size_t n = step < 1000000 - done ? step : 1000000 - done;
        if (n > sizeof a) n = sizeof a;
        sha256_update(&s, a, n);
        done += n;
        step = step * 7 % 997 + 1;
    }
    uint8_t d[32];
    sha256_final(&s, d);
    sha256_hex(d, hex);
    CHECK(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
}

static void test_sha256_file_prefix(void) {
    const char *p = tmp_path("abcfile");
    write_text(p, "abcdef");
    Sha256 s;
    Error e;
    sha256_init(&s);
    CHECK(sha256_update_file(&s, p, 3, &e) == 0);
    uint8_t d[32];
    char hex[65];
    sha256_final(&s, d);
    sha256_hex(d, hex);
    CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    sha256_init(&s);
    CHECK(sha256_update_file(&s, p, 10, &e) == -1);  // shorter than asked
    CHECK(sha256_file_hex(tmp_path("nope"), hex, &e) == -1);
    CHECK(strstr(e.msg, "cannot open"));
}

static const char *SHA_A = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

static void test_listing_revision_shape(void) {
    char text[2048];
    snprintf(text, sizeof text,
             "{\"id\":\"Qwen/Qwen3-0.6B\",\"sha\":\"0123456789abcdef0123456789abcdef01234567\",\"private\":false,"
             "\"siblings\":[{\"rfilename\":\"config.json\",\"size\":726,\"blobId\":"
             "\"1111111111111111111111111111111111111111\"},"
             "{\"rfilename\":\"model.safetensors\",\"size\":1503300328,\"blobId\":"
             "\"2222222222222222222222222222222222222222\",\"lfs\":{\"sha256\":\"%s\",\"size\":1503300328,"
             "\"pointerSize\":135}},{\"rfilename\":\"README.md\"}]}",
             SHA_A);
    HubRepo r;
    Error e;
    CHECK(hub_parse_listing(text, &r, &e) == 0);
    CHECK(r.n == 3);
    CHECK(!strcmp(r.commit, "0123456789abcdef0123456789abcdef01234567"));
    CHECK(!strcmp(r.files[0].path, "config.json") && r.files[0].size == 726 && !r.files[0].sha256[0]);
    CHECK(!strcmp(r.files[0].blob_id, "1111111111111111111111111111111111111111"));
    CHECK(r.files[1].size == 1503300328LL && !strcmp(r.files[1].sha256, SHA_A));
    CHECK(r.files[2].size == -1);
    hub_repo_free(&r);
}

static void test_listing_tree_shape(void) {
    char text[2048];
    snprintf(text, sizeof text,
             "[{\"type\":\"directory\",\"oid\":\"3333333333333333333333333333333333333333\",\"size\":0,\"path\":"
             "\"onnx\"},{\"type\":\"file\",\"oid\":\"4444444444444444444444444444444444444444\",\"size\":12,"
             "\"path\":\"onnx/x.onnx\"},{\"type\":\"file\",\"oid\":\"5555555555555555555555555555555555555555\","
             "\"size\":135,\"path\":\"model.safetensors\",\"lfs\":{\"oid\":\"sha256:%s\",\"size\":99,"
             "\"pointerSize\":135}}]",
             "ABCDEFABCDEFABCDEFABCDEFABCDEFABCDEFABCDEFABCDEFABCDEFABCDEFABCD");
    HubRepo r;
    Error e;
    CHECK(hub_parse_listing(text, &r, &e) == 0);
    CHECK(r.n == 2 && !r.commit[0]);
    CHECK(!strcmp(r.files[0].path, "onnx/x.onnx") && r.files[0].size == 12);
    CHECK(r.files[1].size == 99);  // lfs.size wins over the pointer size
    CHECK(!strcmp(r.files[1].sha256, "abcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcd"));
    hub_repo_free(&r);
}

static void test_listing_bad_inputs(void) {
    static const char *bad[] = {
        "not json",
        "42",
        "{\"sha\":\"0123456789abcdef0123456789abcdef01234567\"}",
        "{\"siblings\":[{\"size\":3}]}",
        "{\"siblings\":[{\"rfilename\":\"../etc/passwd\"}]}",
        "{\"siblings\":[{\"rfilename\":\"/abs\"}]}",
        "{\"siblings\":[{\"rfilename\":\"a//b\"}]}",
        "{\"siblings\":[{\"rfilename\":\"a\\\\b\"}]}",
        "{\"siblings\":[{\"rfilename\":\"x.incomplete\"}]}",
        "{\"siblings\":[{\"rfilename\":\"a\",\"size\":-5}]}",
        "{\"siblings\":[{\"rfilename\":\"a\",\"size\":\"12\"}]}",
        "{\"siblings\":[{\"rfilename\":\"a\",\"lfs\":{\"sha256\":\"xyz\"}}]}",
        "{\"siblings\":[{\"rfilename\":\"a\",\"lfs\":7}]}",
        "{\"siblings\":[{\"rfilename\":\"a\"},{\"rfilename\":\"a\"}]}",
        "{\"sha\":\"main\",\"siblings\":[]}",
        "[{\"type\":\"file\",\"path\":\"sub/../../x\"}]",
        NULL,
    };
    for (int i = 0; bad[i]; i++) {
        HubRepo r;
        Error e = {{0}};
        CHECK_MSG(hub_parse_listing(bad[i], &r, &e) == -1, "accepted bad listing %d: %s", i, bad[i]);
        CHECK_MSG(e.msg[0] != 0, "no message for listing %d", i);
    }
}

static void test_names(void) {
    CHECK(hub_valid_repo_id("Qwen/Qwen3-1.7B"));
    CHECK(hub_valid_repo_id("gpt2"));
    CHECK(hub_valid_repo_id("HuggingFaceH4/MATH-500"));
    CHECK(!hub_valid_repo_id(""));
    CHECK(!hub_valid_repo_id("a/b/c"));
    CHECK(!hub_valid_repo_id("../x"));
    CHECK(!hub_valid_repo_id("a/.."));
    CHECK(!hub_valid_repo_id("a b/c"));
    CHECK(!hub_valid_repo_id("/abs"));
    CHECK(!hub_valid_repo_id("org/"));
    CHECK(hub_valid_repo_path("model-00001-of-00002.safetensors"));
    CHECK(hub_valid_repo_path("sub/dir/file.bin"));
    CHECK(!hub_valid_repo_path("sub/./file"));
    CHECK(!hub_valid_repo_path("a\nb"));
    CHECK(hub_is_model_file("config.json"));
    CHECK(hub_is_model_file("generation_config.json"));
    CHECK(hub_is_model_file("tokenizer.json"));
    CHECK(hub_is_model_file("model.safetensors.index.json"));
    CHECK(hub_is_model_file("model-00002-of-00002.safetensors"));
    CHECK(!hub_is_model_file("README.md"));
    CHECK(!hub_is_model_file("pytorch_model.bin"));
    CHECK(!hub_is_model_file("onnx/model.safetensors"));
    char out[64];
    CHECK(hub_url_escape("refs/pr/1", 0, out, sizeof out) == 0 && !strcmp(out, "refs%2Fpr%2F1"));
    CHECK(hub_url_escape("a b/c+d.json", 1, out, sizeof out) == 0 && !strcmp(out, "a%20b/c%2Bd.json"));
    CHECK(hub_url_escape("0123456789", 0, out, 8) == -1);
    HubOptions o;
    hub_options_default(&o);
    snprintf(o.cache_dir, sizeof o.cache_dir, "/c");
    Error e;
    CHECK(hub_cache_repo_dir(&o, "Qwen/Qwen3-1.7B", out, sizeof out, &e) == 0);
    CHECK(!strcmp(out, "/c/models--Qwen--Qwen3-1.7B"));
    CHECK(hub_cache_repo_dir(&o, "bad id", out, sizeof out, &e) == -1);
    char b[32];
    hub_format_bytes(1234567, b, sizeof b);
    CHECK(!strcmp(b, "1.23 MB"));
}

static void test_options_env(void) {
    setenv("HF_ENDPOINT", "http://mirror.example/", 1);
    setenv("HF_TOKEN", "hf_abc", 1);
    setenv("HF_HUB_CACHE", "/tmp/hfcache", 1);
    setenv("HF_HUB_OFFLINE", "1", 1);
    HubOptions o;
    hub_options_default(&o);
    unsetenv("HF_ENDPOINT");
    unsetenv("HF_TOKEN");
    unsetenv("HF_HUB_CACHE");
    unsetenv("HF_HUB_OFFLINE");
    CHECK(!strcmp(o.endpoint, "http://mirror.example"));
    CHECK(!strcmp(o.token, "hf_abc"));
    CHECK(!strcmp(o.cache_dir, "/tmp/hfcache"));
    CHECK(o.offline == 1);
    setenv("HF_HOME", tmpdir, 1);
    write_text(tmp_path("token"), "hf_fromfile\n");
    hub_options_default(&o);
    unsetenv("HF_HOME");
    CHECK(!strcmp(o.token, "hf_fromfile"));
    CHECK(!strcmp(o.endpoint, "https://huggingface.co"));
    char want[512];
    snprintf(want, sizeof want, "%s/hub", tmpdir);
    CHECK(!strcmp(o.cache_dir, want));
    CHECK(o.offline == 0);
}

static void test_boxed(void) {
    char out[256];
    CHECK(math_last_boxed("so $\\boxed{42}$", out, sizeof out) == 0 && !strcmp(out, "42"));
    CHECK(math_last_boxed("\\boxed{1} then \\boxed{\\frac{1}{2}}", out, sizeof out) == 0 &&
          !strcmp(out, "\\frac{1}{2}"));
    CHECK(math_last_boxed("$\\boxed{\\{1,2\\}}$", out, sizeof out) == 0 && !strcmp(out, "\\{1,2\\}"));
    CHECK(math_last_boxed("$\\boxed{ 180\\text{ miles} }$", out, sizeof out) == 0 &&
          !strcmp(out, "180\\text{ miles}"));
    CHECK(math_last_boxed("$\\fbox{7}$", out, sizeof out) == 0 && !strcmp(out, "7"));
    CHECK(math_last_boxed("$\\boxed 6$.", out, sizeof out) == 0 && !strcmp(out, "6"));
    CHECK(math_last_boxed("no box", out, sizeof out) == -1);
    CHECK(math_last_boxed("\\boxed{unclosed", out, sizeof out) == -1);
    CHECK(math_last_boxed("\\boxed{}", out, sizeof out) == -1);
    CHECK(math_last_boxed("\\boxedx{1}", out, sizeof out) == -1);
    CHECK(math_last_boxed("\\boxed{123456}", out, 4) == -1);
}

static void test_convert_gsm8k(void) {
    const char *src = tmp_path("gsm.jsonl"), *dst = tmp_path("gsm_out.jsonl");
    write_text(src, "{\"question\": \"Q1 \\u2019?\", \"answer\": \"a\\n#### 5\", \"extra\": 1}\n\n"
                    "{\"question\": \"Q2\", \"answer\": \"#### 7\"}\n");
    long n = 0;
    Error e;
    CHECK(hub_convert_gsm8k(src, dst, &n, &e) == 0);
    CHECK(n == 2);
    char *t = file_read_all(dst, NULL, &e);
    CHECK(t);
    CHECK(!strcmp(t, "{\"question\":\"Q1 \xe2\x80\x99?\",\"answer\":\"a\\n#### 5\"}\n"
                     "{\"question\":\"Q2\",\"answer\":\"#### 7\"}\n"));
    free(t);
    write_text(src, "{\"question\": \"Q1\", \"answer\": \"#### 5\"}\n{\"question\": \"Q2\"}\n");
    CHECK(hub_convert_gsm8k(src, dst, &n, &e) == -1);
    CHECK(strstr(e.msg, "gsm.jsonl:2"));
    write_text(src, "{\"question\": \"Q1\", \"answer\": \"5\"}\n");
    CHECK(hub_convert_gsm8k(src, dst, &n, &e) == -1 && strstr(e.msg, "####"));
    write_text(src, "{\"question\": \"Q1\", \"answer\n");
    CHECK(hub_convert_gsm8k(src, dst, &n, &e) == -1 && strstr(e.msg, "invalid JSON"));
    write_text(src, "\n\n");
    CHECK(hub_convert_gsm8k(src, dst, &n, &e) == -1 && strstr(e.msg, "no records"));
    write_text(src, "[1,2]\n");
    CHECK(hub_convert_gsm8k(src, dst, &n, &e) == -1 && strstr(e.msg, "expected a JSON object"));
    CHECK(hub_convert_gsm8k(tmp_path("missing"), dst, &n, &e) == -1 && strstr(e.msg, "cannot open"));
}

static void check_math_tar(const char *fixture, int with_long) {
    char src[512];
    snprintf(src, sizeof src, "tests/fixtures/download/%s", fixture);
    if (!file_exists(src)) {
        test_skip("%s missing (tools/make_download_fixtures.sh)", src);
        return;
    }
    const char *dst = tmp_path("math_train.jsonl");
    long n = 0, skipped = 0;
    Error e;
    CHECK_MSG(hub_convert_math(src, "train", dst, &n, &skipped, &e) == 0, "%s", e.msg);
    CHECK_MSG(n == 4 + with_long && skipped == 1, "n=%ld skipped=%ld", n, skipped);
    char *t = file_read_all(dst, NULL, &e);
    CHECK(t);
    // Natural order: algebra/1, 2, 10, then the rest; fields as in ../shared/data/math.
    const char *first = "{\"problem\":\"What is $1+1$?\",\"solution\":\"We add: $1+1=\\\\boxed{2}$.\",\"answer\":\"2\","
                        "\"subject\":\"Algebra\",\"level\":\"Level 1\",\"unique_id\":\"train/algebra/1.json\"}\n";
    CHECK_MSG(!strncmp(t, first, strlen(first)), "got %.300s", t);
    char *a2 = strstr(t, "train/algebra/2.json"), *a10 = strstr(t, "train/algebra/10.json");
    CHECK(a2 && a10 && a2 < a10);
    CHECK(strstr(t, "\"answer\":\"\\\\{1,2\\\\}\""));
    CHECK(strstr(t, "\"answer\":\"\\\\frac{4}{2}\""));
    CHECK(strstr(t, "\"answer\":\"1\",\"subject\":\"Geometry\""));
    CHECK(!strstr(t, "prealgebra"));
    CHECK(!strstr(t, "test/"));
    if (with_long) CHECK(strstr(t, "one_hundred_bytes/4.json\"") && strstr(t, "\"answer\":\"24\""));
    free(t);
    CHECK(hub_convert_math(src, "test", dst, &n, &skipped, &e) == 0);
    CHECK(n == 1 && skipped == 0);
    t = file_read_all(dst, NULL, &e);
    CHECK(t && strstr(t, "\"answer\":\"6\"") && strstr(t, "\"unique_id\":\"test/algebra/7.json\""));
    free(t);
    CHECK(hub_convert_math(src, "validation", dst, &n, &skipped, &e) == -1 && strstr(e.msg, "no validation/"));
}

static void test_convert_math_ustar(void) { check_math_tar("math_ustar.tar", 0); }
static void test_convert_math_pax(void) { check_math_tar("math_pax.tar", 1); }
static void test_convert_math_gnu(void) { check_math_tar("math_gnu.tar", 1); }

static void test_convert_math_bad_tar(void) {
    const char *src = "tests/fixtures/download/math_ustar.tar";
    if (!file_exists(src)) {
        test_skip("fixture missing");
        return;
    }
    size_t len;
    Error e;
    char *t = file_read_all(src, &len, &e);
    CHECK(t);
    // Truncated archive: cut inside the second member's body.
    const char *cut = tmp_path("cut.tar");
    CHECK(file_write_atomic(cut, t, 512 * 3 + 100, &e) == 0);
    long n, s;
    CHECK(hub_convert_math(cut, "train", tmp_path("o.jsonl"), &n, &s, &e) == -1);
    CHECK_MSG(strstr(e.msg, "truncated") || strstr(e.msg, "corrupt") || strstr(e.msg, "invalid JSON"), "%s", e.msg);
    // Corrupt header checksum.
    t[100] ^= 0x55;
    const char *bad = tmp_path("bad.tar");
    CHECK(file_write_atomic(bad, t, len, &e) == 0);
    CHECK(hub_convert_math(bad, "train", tmp_path("o.jsonl"), &n, &s, &e) == -1 && strstr(e.msg, "checksum"));
    free(t);
}

static void test_convert_math_jsonl_and_array(void) {
    const char *src = tmp_path("m.jsonl"), *dst = tmp_path("m_out.jsonl");
    write_text(src, "{\"problem\":\"P\",\"solution\":\"s \\\\boxed{3}\",\"level\":\"Level 2\",\"type\":\"Algebra\"}\n"
                    "{\"problem\":\"Q\",\"answer\":\"x\",\"subject\":\"Geometry\",\"level\":5,\"unique_id\":\"u\"}\n");
    long n, s;
    Error e;
    CHECK(hub_convert_math(src, "train", dst, &n, &s, &e) == 0 && n == 2);
    char *t = file_read_all(dst, NULL, &e);
    CHECK(t && strstr(t, "\"answer\":\"3\",\"subject\":\"Algebra\",\"level\":\"Level 2\"}"));
    CHECK(strstr(t, "{\"problem\":\"Q\",\"answer\":\"x\",\"subject\":\"Geometry\",\"level\":5,\"unique_id\":\"u\"}"));
    free(t);
    write_text(src, "[{\"problem\":\"P\",\"solution\":\"\\\\boxed{9}\",\"type\":\"T\",\"level\":\"Level 1\"}]");
    CHECK(hub_convert_math(src, "train", dst, &n, &s, &e) == 0 && n == 1);
    write_text(src, "[{\"solution\":\"\\\\boxed{9}\"}]");
    CHECK(hub_convert_math(src, "train", dst, &n, &s, &e) == -1 && strstr(e.msg, "'problem'"));
    write_text(src, "[{\"problem\":\"P\",\"solution\":\"none\"}]");
    CHECK(hub_convert_math(src, "train", dst, &n, &s, &e) == -1 && strstr(e.msg, "no records"));
    write_text(src, "garbage");
    CHECK(hub_convert_math(src, "train", dst, &n, &s, &e) == -1 && strstr(e.msg, "not a tar"));
}

static void test_convert_math500(void) {
    const char *src = tmp_path("m500.jsonl"), *dst = tmp_path("m500_out.jsonl");
    write_text(src, "{\"problem\":\"P\",\"solution\":\"S\",\"answer\":\"\\\\frac12\",\"subject\":\"Algebra\","
                    "\"level\":2,\"unique_id\":\"test/algebra/1.json\",\"other\":true}\n");
    long n;
    Error e;
    CHECK(hub_convert_math500(src, dst, &n, &e) == 0 && n == 1);
    char *t = file_read_all(dst, NULL, &e);
    CHECK(t && !strcmp(t, "{\"problem\":\"P\",\"solution\":\"S\",\"answer\":\"\\\\frac12\",\"subject\":\"Algebra\","
                          "\"level\":2,\"unique_id\":\"test/algebra/1.json\"}\n"));
    free(t);
    write_text(src, "{\"problem\":\"P\"}\n");
    CHECK(hub_convert_math500(src, dst, &n, &e) == -1 && strstr(e.msg, "'answer'"));
    // The shared copy of MATH-500 passes through unchanged in content.
    const char *shared = test_shared_path("data/math/test500.jsonl");
    if (shared) {
        CHECK(hub_convert_math500(shared, dst, &n, &e) == 0 && n == 500);
    }
}

static void test_dataset_sources(void) {
    HubOptions o;
    hub_options_default(&o);
    snprintf(o.endpoint, sizeof o.endpoint, "http://mirror");
    char url[1024];
    Error e;
    CHECK(hub_dataset_source(&o, "gsm8k", "train", NULL, url, sizeof url, &e) == 0);
    CHECK(!strcmp(url, HUB_GSM8K_URL_BASE "/train.jsonl"));
    CHECK(hub_dataset_source(&o, "math500", "test", NULL, url, sizeof url, &e) == 0);
    CHECK(!strcmp(url, "http://mirror/datasets/HuggingFaceH4/MATH-500/resolve/main/test.jsonl"));
    CHECK(hub_dataset_source(&o, "math", "test", NULL, url, sizeof url, &e) == 0 && !strcmp(url, HUB_MATH_TAR_URL));
    setenv("PIONRL_GSM8K_TEST_URL", "http://env/test.jsonl", 1);
    CHECK(hub_dataset_source(&o, "gsm8k", "test", NULL, url, sizeof url, &e) == 0);
    CHECK(!strcmp(url, "http://env/test.jsonl"));
    const char *ov[] = {"test=http://flag/t.jsonl", NULL};
    CHECK(hub_dataset_source(&o, "gsm8k", "test", ov, url, sizeof url, &e) == 0 && !strcmp(url, "http://flag/t.jsonl"));
    unsetenv("PIONRL_GSM8K_TEST_URL");
    CHECK(hub_dataset_source(&o, "gsm8k", "valid", NULL, url, sizeof url, &e) == -1);
    CHECK(hub_dataset_source(&o, "mnist", "train", NULL, url, sizeof url, &e) == -1);
    CHECK(hub_dataset_known("math500") && !hub_dataset_known("Qwen/Qwen3-1.7B"));
    o.offline = 1;
    o.log = NULL;
    const char *badov[] = {"train", NULL};
    CHECK(hub_dataset_download(&o, "gsm8k", tmpdir, badov, 0, &e) == -1 && strstr(e.msg, "SPLIT=URL"));
    const char *badsplit[] = {"dev=http://x", NULL};
    CHECK(hub_dataset_download(&o, "gsm8k", tmpdir, badsplit, 0, &e) == -1 && strstr(e.msg, "no split"));
    CHECK(hub_dataset_download(&o, "gsm8k", tmpdir, NULL, 0, &e) == -1 && strstr(e.msg, "offline"));
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pionrl_dlconv_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_sha256_vectors);
    RUN(test_sha256_file_prefix);
    RUN(test_listing_revision_shape);
    RUN(test_listing_tree_shape);
    RUN(test_listing_bad_inputs);
    RUN(test_names);
    RUN(test_options_env);
    RUN(test_boxed);
    RUN(test_convert_gsm8k);
    RUN(test_convert_math_ustar);
    RUN(test_convert_math_pax);
    RUN(test_convert_math_gnu);
    RUN(test_convert_math_bad_tar);
    RUN(test_convert_math_jsonl_and_array);
    RUN(test_convert_math500);
    RUN(test_dataset_sources);
    rm_tree(tmpdir);
    return test_summary("test_download_convert");
}
