// Checker sets and plug-in checkers: weights from JSON, parallel batches, counts; .so plug-ins
// (built here with cc), command checkers, and HTTP checkers against a server this test starts on
// 127.0.0.1 (fork + sockets; every wait is bounded by alarm() so nothing can hang).
#include "test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "core/json.h"
#include "reward/reward.h"

// ---- weighted sets ----

static void test_set_from_json(void) {
    Error err = {{0}};
    RewardOptions opt;
    reward_options_default(&opt);
    opt.threads = 2;
    cJSON *w = cJSON_Parse("{\"math\": 1.0, \"format\": 0.1}");
    RewardSet *set = reward_set_from_json(w, &opt, "reward", &err);
    cJSON_Delete(w);
    CHECK_MSG(set, "%s", err.msg);
    CHECK(reward_set_size(set) == 2);
    CHECK(!strcmp(reward_set_name(set, 0), "math"));
    CHECK_NEAR(reward_set_weight(set, 1), 0.1, 1e-12);
    const char *comps[3] = {"so \\boxed{\\frac12}", "so \\boxed{3}", "no answer"};
    const char *answers[3] = {"0.5", "0.5", "0.5"};
    double total[3];
    RewardResult res[6];
    CHECK(reward_set_score_batch(set, 3, NULL, comps, answers, total, res, &err) == 0);
    CHECK_NEAR(total[0], 1.1, 1e-12);
    CHECK_NEAR(total[1], 0.1, 1e-12);
    CHECK_NEAR(total[2], 0.0, 1e-12);
    CHECK(res[0].score == 1 && res[1].score == 1 && res[2].score == 0 && res[3].score == 1);
    CHECK(!strcmp(res[0].pred, "\\frac12"));
    RewardCounts c;
    reward_set_counts(set, 0, &c);
    CHECK(c.calls == 3 && c.failures == 0 && c.timeouts == 0);
    reward_set_reset_counts(set);
    reward_set_counts(set, 0, &c);
    CHECK(c.calls == 0);
    reward_set_free(set);
}

static void test_set_bad_configs(void) {
    const char *bad[] = {"{\"mathh\": 1.0}", "{\"math\": \"one\"}", "{}", "[1]", "{\"math\": 1, \"math\": 2}",
                         "{\"plugin:\": 1}", "{\"cmd:\": 1}", "{\"http://\": 1}", "{\"plugin:/nonexistent/x.so\": 1}"};
    const char *want[] = {"unknown checker 'mathh'", "weight must be a finite number", "no checkers",
                          "expected an object", "given twice", "needs a path", "needs a command", "has no host",
                          "/nonexistent/x.so"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        Error err = {{0}};
        cJSON *w = cJSON_Parse(bad[i]);
        CHECK(w);
        RewardSet *set = reward_set_from_json(w, NULL, "config.reward", &err);
        cJSON_Delete(w);
        CHECK_MSG(!set, "'%s' accepted", bad[i]);
        CHECK_MSG(strstr(err.msg, want[i]), "'%s': message '%s' lacks '%s'", bad[i], err.msg, want[i]);
    }
    // Options: unknown keys and bad ranges.
    RewardOptions opt;
    reward_options_default(&opt);
    const char *bad_opts[] = {"{\"thread\": 2}", "{\"timeout_s\": 0}", "{\"retries\": -1}", "{\"threads\": \"2\"}"};
    for (size_t i = 0; i < sizeof bad_opts / sizeof bad_opts[0]; i++) {
        Error err = {{0}};
        cJSON *o = cJSON_Parse(bad_opts[i]);
        CHECK(reward_options_from_json(o, &opt, "reward_options", &err) == -1);
        CHECK_MSG(strstr(err.msg, "reward_options"), "message '%s'", err.msg);
        cJSON_Delete(o);
    }
    Error err = {{0}};
    cJSON *o = cJSON_Parse("{\"threads\": 3, \"thinking\": true, \"retries\": 1}");
    CHECK(reward_options_from_json(o, &opt, "reward_options", &err) == 0);
    CHECK(opt.threads == 3 && opt.thinking == 1 && opt.retries == 1);
    cJSON_Delete(o);
}

// Parallel batches give the same results as one thread, in order.
static void test_batch_parallel_matches_serial(void) {
    enum { N = 1200 };  // enough items that built-in checkers use several threads
    static char comp[N][64], ans[N][32];
    const char *cp[N], *ap[N];
    for (int i = 0; i < N; i++) {
        snprintf(comp[i], sizeof comp[i], "work ... \\boxed{\\frac{%d}{%d}}", i, 4);
        snprintf(ans[i], sizeof ans[i], "%g", (i % 3 == 0) ? i / 4.0 : i / 4.0 + 1);
        cp[i] = comp[i];
        ap[i] = ans[i];
    }
    double t1[N], t4[N];
    Error err = {{0}};
    RewardOptions opt;
    reward_options_default(&opt);
    opt.threads = 1;
    RewardSet *s1 = reward_set_create(&opt, &err);
    CHECK(reward_set_add(s1, "math", 1.0, &err) == 0);
    opt.threads = 4;
    RewardSet *s4 = reward_set_create(&opt, &err);
    CHECK(reward_set_add(s4, "math", 1.0, &err) == 0);
    CHECK(reward_set_score_batch(s1, N, NULL, cp, ap, t1, NULL, &err) == 0);
    CHECK(reward_set_score_batch(s4, N, NULL, cp, ap, t4, NULL, &err) == 0);
    for (int i = 0; i < N; i++) {
        CHECK(t1[i] == t4[i]);
        CHECK(t1[i] == (i % 3 == 0 ? 1.0 : 0.0));
    }
    RewardCounts c;
    reward_set_counts(s4, 0, &c);
    CHECK(c.calls == N);
    CHECK(reward_set_score_batch(s4, -1, NULL, cp, ap, t4, NULL, &err) == -1);
    CHECK(reward_set_score_batch(s4, 0, NULL, NULL, NULL, NULL, NULL, &err) == 0);
    reward_set_free(s1);
    reward_set_free(s4);
}

// ---- shared-library plug-ins ----

static char tmpdir[256];

static const char *build_plugin(const char *src, const char *name) {
    static char out[8][512];
    static int k;
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/pionrl_reward_test_XXXXXX");
        if (!mkdtemp(tmpdir)) return NULL;
    }
    char *path = out[k++ % 8];
    snprintf(path, 512, "%s/%s", tmpdir, name);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cc -shared -fPIC -O1 -Isrc -o %s %s 2>&1", path, src);
    return system(cmd) == 0 ? path : NULL;
}

static void test_plugin_example(void) {
    const char *so = build_plugin("examples/reward_plugin/exact_match.c", "exact_match.so");
    if (!so) {
        test_skip("cc could not build the example plug-in");
        return;
    }
    char spec[600];
    snprintf(spec, sizeof spec, "plugin:%s", so);
    Error err = {{0}};
    RewardChecker *c = reward_checker_create(spec, NULL, &err);
    CHECK_MSG(c, "%s", err.msg);
    RewardResult r;
    reward_checker_score(c, "q", "reasoning\n  42  \n", "42", &r);
    CHECK(r.status == REWARD_OK && r.score == 1);
    CHECK(!strcmp(r.pred, "42"));
    CHECK(strstr(r.reason, "matches"));
    reward_checker_score(c, NULL, "41", "42", &r);
    CHECK(r.status == REWARD_OK && r.score == 0);
    reward_checker_free(c);
}

static void test_plugin_failures(void) {
    const char *bad = build_plugin("tests/fixtures/reward/bad_plugin.c", "bad.so");
    const char *nosym = build_plugin("tests/fixtures/reward/no_symbol_plugin.c", "nosym.so");
    if (!bad || !nosym) {
        test_skip("cc could not build the test plug-ins");
        return;
    }
    char spec[600];
    Error err = {{0}};
    snprintf(spec, sizeof spec, "plugin:%s", nosym);
    CHECK(reward_checker_create(spec, NULL, &err) == NULL);
    CHECK_MSG(strstr(err.msg, "pionrl_reward_score"), "%s", err.msg);
    snprintf(spec, sizeof spec, "plugin:%s/missing.so", tmpdir);
    CHECK(reward_checker_create(spec, NULL, &err) == NULL);
    CHECK_MSG(strstr(err.msg, "missing.so"), "%s", err.msg);
    CHECK(reward_checker_create("plugin:tests/fixtures/reward/bad_plugin.c", NULL, &err) == NULL);  // not a .so

    RewardOptions opt;
    reward_options_default(&opt);
    opt.threads = 3;
    RewardSet *set = reward_set_create(&opt, &err);
    snprintf(spec, sizeof spec, "plugin:%s", bad);
    CHECK_MSG(reward_set_add(set, spec, 2.0, &err) == 0, "%s", err.msg);
    const char *comps[4] = {"a", "b", "c", "d"};
    const char *answers[4] = {"ok", "error", "nan", "inf"};
    double total[4];
    RewardResult res[4];
    CHECK(reward_set_score_batch(set, 4, NULL, comps, answers, total, res, &err) == 0);
    CHECK_NEAR(total[0], 0.5, 1e-12);
    for (int i = 1; i < 4; i++) {
        CHECK(res[i].status == REWARD_FAILED);
        CHECK(total[i] == 0);
    }
    CHECK(strstr(res[1].reason, "returned -1"));
    CHECK(strstr(res[2].reason, "non-finite"));
    RewardCounts c;
    reward_set_counts(set, 0, &c);
    CHECK(c.calls == 4 && c.failures == 3 && c.timeouts == 0);
    reward_set_free(set);
}

// ---- command checkers ----

static void test_cmd_checker(void) {
    RewardOptions opt;
    reward_options_default(&opt);
    opt.timeout_s = 0.5;
    opt.parallel_requests = 4;
    Error err = {{0}};
    RewardSet *set = reward_set_create(&opt, &err);
    CHECK(reward_set_add(set, "cmd:grep -q '\"answer\":\"42\"' && echo '{\"score\": 1, \"reason\": \"saw 42\"}' || "
                              "echo '{\"score\": 0}'",
                         1.0, &err) == 0);
    const char *comps[6] = {"x", "y", "z", "w", "v", "u"};
    const char *answers[6] = {"42", "41", "42", "0", "42", "x\"y\\n"};
    double total[6];
    RewardResult res[6];
    CHECK(reward_set_score_batch(set, 6, NULL, comps, answers, total, res, &err) == 0);
    const double want[6] = {1, 0, 1, 0, 1, 0};
    for (int i = 0; i < 6; i++) {
        CHECK_MSG(res[i].status == REWARD_OK, "item %d: %s", i, res[i].reason);
        CHECK(total[i] == want[i]);
    }
    CHECK(!strcmp(res[0].reason, "saw 42"));
    reward_set_free(set);

    // Failures: exit status, garbage, missing score, timeout; a command that ignores a 1 MB stdin.
    struct {
        const char *spec;
        int status;
        const char *reason;
    } cases[] = {
        {"cmd:cat >/dev/null; exit 3", REWARD_FAILED, "exit status 3"},
        {"cmd:cat >/dev/null; echo 'not json'", REWARD_FAILED, "not JSON"},
        {"cmd:cat >/dev/null; echo '{\"points\": 1}'", REWARD_FAILED, "no finite number"},
        {"cmd:cat >/dev/null; echo '[1]'", REWARD_FAILED, "not a JSON object"},
        {"cmd:sleep 5", REWARD_TIMEOUT, "timed out"},
        {"cmd:echo '{\"score\": 0.75}'", REWARD_OK, ""},
        {"cmd:echo '{\"score\": true}'", REWARD_OK, ""},
        {"cmd:echo '{\"score\": \"1\"}'", REWARD_FAILED, "no finite number"},
        {"cmd:/nonexistent/program", REWARD_FAILED, "exit status 127"},
    };
    char *big = malloc(1 << 20);
    memset(big, 'a', (1 << 20) - 1);
    big[(1 << 20) - 1] = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        RewardChecker *c = reward_checker_create(cases[i].spec, &opt, &err);
        CHECK_MSG(c, "%s", err.msg);
        RewardResult r;
        reward_checker_score(c, "p", big, "a", &r);
        CHECK_MSG(r.status == cases[i].status, "'%s': status %d (%s)", cases[i].spec, r.status, r.reason);
        CHECK_MSG(strstr(r.reason, cases[i].reason), "'%s': reason '%s'", cases[i].spec, r.reason);
        if (r.status == REWARD_OK) CHECK(r.score == (strstr(cases[i].spec, "true") ? 1.0 : 0.75));
        else CHECK(r.score == 0);
        RewardCounts cnt;
        reward_checker_counts(c, &cnt);
        CHECK(cnt.calls == 1);
        CHECK(cnt.timeouts == (cases[i].status == REWARD_TIMEOUT));
        CHECK(cnt.failures == (cases[i].status == REWARD_FAILED));
        reward_checker_free(c);
    }
    free(big);
}

// ---- HTTP checkers against a local server ----

static pid_t server_pid;
static int server_port;
static int *flaky_counter;  // shared with the server processes: [0] flaky calls, [1] active, [2] max active

static void http_reply(int fd, int code, const char *body) {
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                     code, strlen(body));
    if (write(fd, head, (size_t)n) < 0 || write(fd, body, strlen(body)) < 0) _exit(1);
}

// One request per connection: read headers and body (bounded), answer by path.
static void serve_one(int fd) {
    alarm(10);
    static char buf[1 << 21];
    size_t got = 0;
    char *body = NULL;
    long want = -1;
    for (;;) {
        ssize_t r = read(fd, buf + got, sizeof buf - 1 - got);
        if (r <= 0) break;
        got += (size_t)r;
        buf[got] = 0;
        if (!body) {
            char *e = strstr(buf, "\r\n\r\n");
            if (e) {
                body = e + 4;
                char *cl = strcasestr(buf, "Content-Length:");
                want = cl ? atol(cl + 15) : 0;
            }
        }
        if (body && (long)(got - (size_t)(body - buf)) >= want) break;
        if (got >= sizeof buf - 1) break;
    }
    if (!body) _exit(1);
    char path[64] = {0};
    sscanf(buf, "POST %63s", path);
    if (!strcmp(path, "/500")) {
        http_reply(fd, 500, "{\"error\": \"boom\"}");
    } else if (!strcmp(path, "/404")) {
        __atomic_fetch_add(&flaky_counter[0], 1, __ATOMIC_SEQ_CST);  // counts attempts: 4xx is not retried
        http_reply(fd, 404, "{\"error\": \"no such checker\"}");
    } else if (!strcmp(path, "/bad")) {
        http_reply(fd, 200, "{\"score\": 1,,");
    } else if (!strcmp(path, "/noscore")) {
        http_reply(fd, 200, "{\"result\": 1}");
    } else if (!strcmp(path, "/slow")) {
        sleep(3);
        http_reply(fd, 200, "{\"score\": 1}");
    } else if (!strcmp(path, "/flaky") && __atomic_fetch_add(flaky_counter, 1, __ATOMIC_SEQ_CST) % 2 == 0) {
        http_reply(fd, 503, "busy");
    } else {
        // /ok, /flaky (second try), /pause: score 1 when the completion contains the answer.
        if (!strcmp(path, "/pause")) {  // record how many requests are in flight at once
            int now = __atomic_add_fetch(&flaky_counter[1], 1, __ATOMIC_SEQ_CST);
            int seen = __atomic_load_n(&flaky_counter[2], __ATOMIC_SEQ_CST);
            while (now > seen && !__atomic_compare_exchange_n(&flaky_counter[2], &seen, now, 0, __ATOMIC_SEQ_CST,
                                                              __ATOMIC_SEQ_CST)) {
            }
            usleep(100 * 1000);
            __atomic_sub_fetch(&flaky_counter[1], 1, __ATOMIC_SEQ_CST);
        }
        cJSON *o = cJSON_Parse(body);
        const cJSON *c = cJSON_GetObjectItem(o, "completion"), *a = cJSON_GetObjectItem(o, "answer");
        const cJSON *p = cJSON_GetObjectItem(o, "prompt");
        char reply[256];
        if (!cJSON_IsString(c) || !cJSON_IsString(a) || !cJSON_IsString(p)) {
            http_reply(fd, 400, "{\"error\": \"bad request\"}");
        } else {
            int s = strstr(c->valuestring, a->valuestring) != NULL;
            snprintf(reply, sizeof reply, "{\"score\": %d, \"reason\": \"len %zu\", \"pred\": \"p\"}", s,
                     strlen(c->valuestring));
            http_reply(fd, 200, reply);
        }
        cJSON_Delete(o);
    }
    close(fd);
    _exit(0);
}

static int start_server(void) {
    if (!flaky_counter) {
        flaky_counter = mmap(NULL, 3 * sizeof(int), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (flaky_counter == MAP_FAILED) return -1;
    }
    memset(flaky_counter, 0, 3 * sizeof(int));
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (bind(s, (struct sockaddr *)&addr, sizeof addr) || listen(s, 128) ||
        getsockname(s, (struct sockaddr *)&addr, &len))
        return -1;
    server_port = ntohs(addr.sin_port);
    fflush(stdout);
    server_pid = fork();
    if (server_pid < 0) return -1;
    if (server_pid == 0) {
        alarm(120);  // the server never outlives a stuck test
        signal(SIGCHLD, SIG_IGN);
        for (;;) {
            int fd = accept(s, NULL, NULL);
            if (fd < 0) {
                if (errno == EINTR) continue;
                _exit(0);
            }
            pid_t p = fork();
            if (p == 0) {
                close(s);
                serve_one(fd);
            }
            close(fd);
        }
    }
    close(s);
    return 0;
}

static void stop_server(void) {
    if (server_pid > 0) {
        kill(server_pid, SIGKILL);
        waitpid(server_pid, NULL, 0);
        server_pid = 0;
    }
}

static RewardChecker *http_checker(const char *path, double timeout_s, int retries) {
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", server_port, path);
    RewardOptions opt;
    reward_options_default(&opt);
    opt.timeout_s = timeout_s;
    opt.connect_timeout_s = 1.0;
    opt.retries = retries;
    Error err = {{0}};
    return reward_checker_create(url, &opt, &err);
}

static void test_http_checker(void) {
    if (start_server()) {
        test_skip("cannot start a server on 127.0.0.1");
        return;
    }
    RewardResult r;
    RewardChecker *c = http_checker("/ok", 2.0, 0);
    CHECK(c);
    // Quotes, backslashes, newlines and UTF-8 travel intact (the server reports the length).
    const char *comp = "line \"one\"\n\\boxed{42} \xc3\xa9";
    reward_checker_score(c, "prompt", comp, "42", &r);
    CHECK_MSG(r.status == REWARD_OK, "%s", r.reason);
    CHECK(r.score == 1);
    char want[32];
    snprintf(want, sizeof want, "len %zu", strlen(comp));
    CHECK_MSG(!strcmp(r.reason, want), "reason '%s' want '%s'", r.reason, want);
    CHECK(!strcmp(r.pred, "p"));
    reward_checker_score(c, NULL, "nothing", "42", &r);
    CHECK(r.status == REWARD_OK && r.score == 0);
    reward_checker_free(c);

    struct {
        const char *path;
        double timeout;
        int retries, status;
        const char *reason;
    } cases[] = {
        {"/500", 2.0, 1, REWARD_FAILED, "status 500"},
        {"/404", 2.0, 3, REWARD_FAILED, "status 404"},
        {"/bad", 2.0, 0, REWARD_FAILED, "not JSON"},
        {"/noscore", 2.0, 0, REWARD_FAILED, "no finite number"},
        {"/slow", 0.3, 0, REWARD_TIMEOUT, "timed out"},
        {"/flaky", 2.0, 2, REWARD_OK, "len"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        c = http_checker(cases[i].path, cases[i].timeout, cases[i].retries);
        CHECK(c);
        __atomic_store_n(&flaky_counter[0], 0, __ATOMIC_SEQ_CST);  // /flaky fails its first call
        reward_checker_score(c, "p", "42", "42", &r);
        CHECK_MSG(r.status == cases[i].status, "%s: status %d (%s)", cases[i].path, r.status, r.reason);
        CHECK_MSG(strstr(r.reason, cases[i].reason), "%s: reason '%s'", cases[i].path, r.reason);
        CHECK(r.status == REWARD_OK ? r.score == 1 : r.score == 0);
        if (!strcmp(cases[i].path, "/404")) CHECK_MSG(flaky_counter[0] == 1, "404 tried %d times", flaky_counter[0]);
        if (!strcmp(cases[i].path, "/flaky")) CHECK_MSG(flaky_counter[0] == 2, "flaky tried %d times", flaky_counter[0]);
        reward_checker_free(c);
    }

    // A port nobody listens on: connection refused, a failure, quickly.
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    bind(s, (struct sockaddr *)&addr, sizeof addr);
    getsockname(s, (struct sockaddr *)&addr, &len);
    close(s);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/ok", ntohs(addr.sin_port));
    RewardOptions opt;
    reward_options_default(&opt);
    opt.retries = 1;
    Error err = {{0}};
    c = reward_checker_create(url, &opt, &err);
    CHECK(c);
    reward_checker_score(c, "p", "42", "42", &r);
    CHECK(r.status == REWARD_FAILED && r.score == 0);
    reward_checker_free(c);
    stop_server();
}

// A batch through a set: parallel requests, mixed with a built-in checker, failures counted.
static void test_http_batch(void) {
    if (start_server()) {
        test_skip("cannot start a server on 127.0.0.1");
        return;
    }
    enum { N = 48 };
    RewardOptions opt;
    reward_options_default(&opt);
    opt.parallel_requests = 16;
    opt.timeout_s = 5;
    Error err = {{0}};
    RewardSet *set = reward_set_create(&opt, &err);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/pause", server_port);
    CHECK(reward_set_add(set, url, 1.0, &err) == 0);
    CHECK(reward_set_add(set, "gsm8k", 0.5, &err) == 0);
    static char comp[N][32];
    const char *cp[N], *ap[N];
    for (int i = 0; i < N; i++) {
        snprintf(comp[i], sizeof comp[i], "the answer is %d", i % 2 ? 7 : 8);
        cp[i] = comp[i];
        ap[i] = "7";
    }
    double total[N];
    RewardResult res[2 * N];
    CHECK(reward_set_score_batch(set, N, NULL, cp, ap, total, res, &err) == 0);
    for (int i = 0; i < N; i++) {
        CHECK_MSG(res[2 * i].status == REWARD_OK, "item %d: %s", i, res[2 * i].reason);
        CHECK_NEAR(total[i], i % 2 ? 1.5 : 0.0, 1e-12);
    }
    RewardCounts c;
    reward_set_counts(set, 0, &c);
    CHECK(c.calls == N && c.failures == 0);
    // 48 requests of 100 ms each with 16 allowed at once: the server saw several in flight.
    printf("  at most %d HTTP requests in flight at once\n", flaky_counter[2]);
    CHECK(flaky_counter[2] >= 2 && flaky_counter[2] <= 16);
    reward_set_free(set);
    stop_server();
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    RUN(test_set_from_json);
    RUN(test_set_bad_configs);
    RUN(test_batch_parallel_matches_serial);
    RUN(test_plugin_example);
    RUN(test_plugin_failures);
    RUN(test_cmd_checker);
    RUN(test_http_checker);
    RUN(test_http_batch);
    stop_server();
    if (tmpdir[0]) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0) printf("could not remove %s\n", tmpdir);
    }
    return test_summary("test_reward_plugins");
}
