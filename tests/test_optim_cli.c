// `pionrl spectrum` end to end: runs the built binary (BUILD/pionrl, found beside this test's
// BUILD/tests/ directory) and checks its JSON output, the SVG, and usage errors.
#include <sys/wait.h>

#include "core/fileio.h"
#include "core/json.h"
#include "test.h"

static char pionrl[1024];

static int run(const char *args, char **out) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", pionrl, args);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += got;
        if (n + 1 >= cap) buf = realloc(buf, cap *= 2);
    }
    buf[n] = 0;
    int st = pclose(p);
    if (out) *out = buf;
    else free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int have_binary(void) {
    if (access(pionrl, X_OK) != 0) {
        test_skip("%s not built", pionrl);
        return 0;
    }
    return 1;
}

static void test_spectrum_json_matches_polynomials(void) {
    if (!have_binary()) return;
    const char *variants[] = {"--optimizer muon",        "--optimizer pion --kp 0", "--optimizer pion --kp 1",
                              "--optimizer pion --kp 2", "--optimizer pion --kp 3", "--optimizer pion --kp 4",
                              "--optimizer pion --kp 5"};
    for (int v = 0; v < 7; v++) {
        char args[256], *out = NULL;
        snprintf(args, sizeof args, "spectrum %s --json --points 32", variants[v]);
        CHECK_MSG(run(args, &out) == 0, "%s failed: %s", args, out);
        Error err;
        cJSON *j = json_parse_text(out, args, &err);
        CHECK_MSG(j != NULL, "%s: not JSON: %s", args, out);
        double e = cJSON_GetObjectItem(j, "max_abs_error")->valuedouble;
        CHECK_MSG(e <= 1e-3, "%s: measured map differs from the polynomial by %g", args, e);
        const cJSON *pts = cJSON_GetObjectItem(j, "points");
        CHECK(cJSON_GetArraySize(pts) == 32);
        // The last point is sigma = 1, a fixed point of every Pion step (a + b + c = 1).
        const cJSON *last = cJSON_GetArrayItem(pts, 31);
        CHECK_NEAR(cJSON_GetObjectItem(last, "sigma")->valuedouble, 1.0, 1e-12);
        if (v > 0) CHECK_NEAR(cJSON_GetObjectItem(last, "measured")->valuedouble, 1.0, 1e-3);
        cJSON_Delete(j);
        free(out);
    }
}

static void test_spectrum_svg_and_table(void) {
    if (!have_binary()) return;
    char svg[128];  // per process: other build trees may run this test at the same time
    snprintf(svg, sizeof svg, "/tmp/pionrl-test-spectrum-%d.svg", (int)getpid());
    char args[512], *out = NULL;
    snprintf(args, sizeof args, "spectrum --optimizer pion --kp 1 --points 16 --svg %s", svg);
    CHECK(run(args, &out) == 0);
    CHECK(strstr(out, "sigma_in") && strstr(out, "kp=1"));
    free(out);
    Error err;
    size_t n;
    char *text = file_read_all(svg, &n, &err);
    CHECK(text != NULL);
    CHECK(strncmp(text, "<svg ", 5) == 0 && strstr(text, "</svg>"));
    CHECK(strstr(text, "Muon") && strstr(text, "Pion kp=0") && strstr(text, "Pion kp=5"));
    free(text);
    remove(svg);
}

static void test_spectrum_usage_errors(void) {
    if (!have_binary()) return;
    struct {
        const char *args, *msg;
    } bad[] = {
        {"spectrum --optimizer adamw", "--optimizer must be muon or pion"},
        {"spectrum --kp 6", "--kp must be an integer in 0..5"},
        {"spectrum --kp x", "--kp must be an integer in 0..5"},
        {"spectrum --optimizer muon --kp 1", "--kp applies to --optimizer pion only"},
        {"spectrum --points 1", "--points must be an integer in 2..1024"},
        {"spectrum --frobnicate", "unknown or incomplete option '--frobnicate'"},
        {"spectrum --kp", "unknown or incomplete option '--kp'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *out = NULL;
        CHECK_MSG(run(bad[i].args, &out) == 2, "%s: expected exit 2", bad[i].args);
        CHECK_MSG(strstr(out, bad[i].msg), "%s: got '%s'", bad[i].args, out);
        free(out);
    }
    char *out = NULL;
    CHECK(run("spectrum --help", &out) == 0);
    CHECK(strstr(out, "--svg FILE") != NULL);
    free(out);
    CHECK(run("spectrum --svg /nonexistent-dir/x.svg --points 4", &out) == 1);
    CHECK(strstr(out, "cannot write") != NULL);
    free(out);
}

int main(int argc, char **argv) {
    // argv[0] is BUILD/tests/test_optim_cli; the binary is BUILD/pionrl.
    snprintf(pionrl, sizeof pionrl, "%s", argv[0]);
    char *slash = strrchr(pionrl, '/');
    if (slash) *slash = 0;
    slash = strrchr(pionrl, '/');
    if (slash) {
        *slash = 0;
        strncat(pionrl, "/pionrl", sizeof pionrl - strlen(pionrl) - 1);
    } else {
        snprintf(pionrl, sizeof pionrl, "./pionrl");
    }
    RUN(test_spectrum_json_matches_polynomials);
    RUN(test_spectrum_svg_and_table);
    RUN(test_spectrum_usage_errors);
    return test_summary("test_optim_cli");
}
