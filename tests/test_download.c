// `pionrl download` against a fake Hugging Face Hub that this test starts on 127.0.0.1 (fork +
// sockets): API listings (revision and tree shapes), files with Range support, and injected faults
// (a 500, a truncated body, a slow trickle, a stalled response, a server that ignores Range, a wrong
// sha256, 401/403/404). Every loop is bounded: the server exits by itself after SERVER_LIFETIME
// seconds or when the test process goes away, and each connection handler has an alarm.
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "core/fileio.h"
#include "core/hub.h"
#include "core/hub_dataset.h"
#include "core/rng.h"
#include "core/sha256.h"
#include "test.h"

#define SERVER_LIFETIME 60
#define REPO "acme/tiny-model"
#define COMMIT "c0ffee0000000000000000000000000000000001"

// Fault switches, set before the server forks.
enum {
    F_FLAKY = 1,       // first request for shard 1 -> 500
    F_CUT = 2,         // first request for shard 1 -> half the body, then close
    F_SLOW = 4,        // shard 2 trickles out in chunks with pauses
    F_STALL = 8,       // first request for shard 2 sends a little, then stalls
    F_NORANGE = 16,    // Range requests are ignored (200 + whole file)
    F_BADSHA = 32,     // the listing gives shard 2 a wrong sha256
    F_TREE_ONLY = 64,  // the revision endpoint answers 404; only the tree listing works
    F_NOLENGTH = 128,  // first request for shard 1: no Content-Length, half the body, clean close
};

typedef struct {
    const char *path;
    char *data;
    size_t len;
    int lfs;
    char sha[65];
} FakeFile;

static FakeFile files[8];
static int nfiles;
static char tmpdir[256];
static char logpath[512];
static int faults;

typedef struct {
    pid_t pid;
    int port;
} Server;

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) { return remove(p); }
static void rm_tree(const char *dir) { nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

static char *tmp_path(const char *name) {
    static char buf[8][512];
    static int k;
    char *out = buf[k++ % 8];
    snprintf(out, 512, "%s/%s", tmpdir, name);
    return out;
}

static void add_file(const char *path, char *data, size_t len, int lfs) {
    FakeFile *f = &files[nfiles++];
    f->path = path;
    f->data = data;
    f->len = len;
    f->lfs = lfs;
    sha256_buffer_hex(data, len, f->sha);
}

static char *random_bytes(size_t n, uint64_t seed) {
    Rng r;
    rng_seed(&r, seed);
    char *b = malloc(n);
    for (size_t i = 0; i < n; i++) b[i] = (char)rng_u32(&r);
    return b;
}

static void make_repo(void) {
    add_file("config.json", strdup("{\"model_type\": \"qwen3\", \"hidden_size\": 8}\n"), 43, 0);
    add_file("tokenizer.json", strdup("{\"model\": {\"type\": \"BPE\"}}\n"), 28, 0);
    add_file("model-00001-of-00002.safetensors", random_bytes(300000, 1), 300000, 1);
    add_file("model-00002-of-00002.safetensors", random_bytes(200001, 2), 200001, 1);
    const char *idx = "{\"metadata\": {}, \"weight_map\": {\"a\": \"model-00001-of-00002.safetensors\", "
                      "\"b\": \"model-00002-of-00002.safetensors\"}}\n";
    add_file("model.safetensors.index.json", strdup(idx), strlen(idx), 0);
    add_file("README.md", strdup("# tiny\n"), 7, 0);
    add_file("onnx/model.onnx", strdup("onnx"), 4, 0);
    char *copy = malloc(files[3].len);
    memcpy(copy, files[3].data, files[3].len);
    add_file("extra/copy.safetensors", copy, files[3].len, 1);  // same blob as shard 2
}

// ---- server ----

static void send_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0) return;
        c += w;
        n -= (size_t)w;
    }
}

static void send_text(int fd, int code, const char *status, const char *extra_headers, const char *body) {
    char h[1024];
    int n = snprintf(h, sizeof h, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\nContent-Type: application/json\r\n%s"
                                  "Connection: close\r\n\r\n",
                     code, status, strlen(body), extra_headers ? extra_headers : "");
    send_all(fd, h, (size_t)n);
    send_all(fd, body, strlen(body));
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static char *listing(int tree) {
    size_t cap = 8192, k = 0;
    char *b = malloc(cap);
    k += (size_t)snprintf(b + k, cap - k, tree ? "[{\"type\":\"directory\",\"path\":\"onnx\",\"oid\":\"%040d\",\"size\":0}"
                                                : "{\"id\":\"" REPO "\",\"sha\":\"" COMMIT "\",\"siblings\":[",
                          7);
    for (int i = 0; i < nfiles; i++) {
        const FakeFile *f = &files[i];
        char blob[41];
        snprintf(blob, sizeof blob, "%040x", 0xb10b0 + i);
        char sha[65];
        snprintf(sha, sizeof sha, "%s", f->sha);
        if (i == 3 && (faults & F_BADSHA)) sha[0] = sha[0] == 'a' ? 'b' : 'a';
        char lfs[256] = "";
        if (f->lfs) snprintf(lfs, sizeof lfs, ",\"lfs\":{\"%s\":\"%s\",\"size\":%zu,\"pointerSize\":134}",
                             tree ? "oid" : "sha256", sha, f->len);
        k += (size_t)snprintf(b + k, cap - k, "%s{\"%s\":\"%s\",\"size\":%zu,\"%s\":\"%s\"%s}",
                              (i || tree) ? "," : "", tree ? "path" : "rfilename", f->path, f->lfs ? 134 : f->len,
                              tree ? "oid" : "blobId", blob, lfs);
    }
    snprintf(b + k, cap - k, tree ? "]" : "]}");
    return b;
}

static const FakeFile *find_file(const char *path) {
    for (int i = 0; i < nfiles; i++)
        if (!strcmp(files[i].path, path)) return &files[i];
    return NULL;
}

// Data set files served under /ds/NAME from the test's tmpdir.
static char *ds_file(const char *name, size_t *len) {
    char p[600];
    snprintf(p, sizeof p, "%s/ds/%.200s", tmpdir, name);
    return file_read_all(p, len, NULL);
}

static void serve_file(int fd, const char *data, size_t len, long long range_from, int nth, int shard) {
    char h[1024];
    int ignore_range = (faults & F_NORANGE) != 0;
    if (range_from >= 0 && !ignore_range) {
        if ((size_t)range_from >= len) {
            char cr[64];
            snprintf(cr, sizeof cr, "Content-Range: bytes */%zu\r\n", len);
            send_text(fd, 416, "Range Not Satisfiable", cr, "");
            return;
        }
        int n = snprintf(h, sizeof h, "HTTP/1.1 206 Partial Content\r\nContent-Length: %zu\r\n"
                                      "Content-Range: bytes %lld-%zu/%zu\r\nConnection: close\r\n\r\n",
                         len - (size_t)range_from, range_from, len - 1, len);
        send_all(fd, h, (size_t)n);
        send_all(fd, data + range_from, len - (size_t)range_from);
        return;
    }
    if (shard == 1 && nth == 1 && (faults & F_NOLENGTH)) {
        int n = snprintf(h, sizeof h, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
        send_all(fd, h, (size_t)n);
        send_all(fd, data, len / 2);
        return;
    }
    int n = snprintf(h, sizeof h, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nAccept-Ranges: bytes\r\n"
                                  "Connection: close\r\n\r\n",
                     len);
    send_all(fd, h, (size_t)n);
    if (shard == 1 && nth == 1 && (faults & F_CUT)) {
        send_all(fd, data, len / 2);  // truncated body: the connection closes early
        return;
    }
    if (shard == 2 && nth == 1 && (faults & F_STALL)) {
        send_all(fd, data, 1000);
        sleep_ms(3000);  // the client's stall timeout (1 s) fires first
        return;
    }
    if (shard == 2 && (faults & F_SLOW)) {
        size_t chunk = len / 4 + 1;
        for (size_t off = 0; off < len; off += chunk) {
            send_all(fd, data + off, off + chunk <= len ? chunk : len - off);
            sleep_ms(150);
        }
        return;
    }
    send_all(fd, data, len);
}

// Handles one request (in a forked child, so slow answers do not block the others).
static void respond(int fd, const char *method, const char *target, long long range_from, int nth) {
    char org[128], name[128], rest[1024];
    if (!strncmp(target, "/ds/", 4)) {
        size_t len;
        char *d = ds_file(target + 4, &len);
        if (!d) {
            send_text(fd, 404, "Not Found", NULL, "{\"error\":\"no such data file\"}");
            return;
        }
        serve_file(fd, d, len, range_from, nth, 0);
        return;
    }
    if (sscanf(target, "/api/models/%127[^/]/%127[^/]/%1023s", org, name, rest) == 3) {
        char id[300];
        snprintf(id, sizeof id, "%s/%s", org, name);
        if (!strcmp(id, "acme/private")) {
            send_text(fd, 401, "Unauthorized", "X-Error-Code: RepoNotFound\r\n",
                      "{\"error\":\"Repository not found\"}");
            return;
        }
        if (!strcmp(id, "acme/gated")) {
            send_text(fd, 403, "Forbidden", "X-Error-Code: GatedRepo\r\nX-Error-Message: Access to model "
                                            "acme/gated is restricted\r\n",
                      "{\"error\":\"gated\"}");
            return;
        }
        if (strcmp(id, REPO) != 0) {
            send_text(fd, 404, "Not Found", "X-Error-Code: RepoNotFound\r\n", "{\"error\":\"Repository not found\"}");
            return;
        }
        if (!strncmp(rest, "revision/main", 13) && !(faults & F_TREE_ONLY)) {
            char *b = listing(0);
            send_text(fd, 200, "OK", NULL, b);
            free(b);
            return;
        }
        if (!strncmp(rest, "tree/main", 9)) {
            char *b = listing(1);
            send_text(fd, 200, "OK", NULL, b);
            free(b);
            return;
        }
        send_text(fd, 404, "Not Found", "X-Error-Code: RevisionNotFound\r\n", "{\"error\":\"Invalid rev id\"}");
        return;
    }
    const char *pre = "/" REPO "/resolve/" COMMIT "/", *pre_main = "/" REPO "/resolve/main/";
    const char *fp = !strncmp(target, pre, strlen(pre))             ? target + strlen(pre)
                     : !strncmp(target, pre_main, strlen(pre_main)) ? target + strlen(pre_main)
                                                                    : NULL;
    if (fp) {
        const FakeFile *f = find_file(fp);
        if (!f) {
            send_text(fd, 404, "Not Found", "X-Error-Code: EntryNotFound\r\n", "{\"error\":\"Entry not found\"}");
            return;
        }
        int shard = f == &files[2] ? 1 : f == &files[3] ? 2 : 0;
        if (shard == 1 && nth == 1 && (faults & F_FLAKY)) {
            send_text(fd, 500, "Internal Server Error", NULL, "{\"error\":\"try again\"}");
            return;
        }
        serve_file(fd, f->data, f->len, range_from, nth, shard);
        return;
    }
    (void)method;
    send_text(fd, 404, "Not Found", NULL, "{\"error\":\"no route\"}");
}

static void server_loop(int lfd) {
    signal(SIGPIPE, SIG_IGN);
    signal(SIGCHLD, SIG_DFL);
    pid_t parent = getppid();
    time_t deadline = time(NULL) + SERVER_LIFETIME;
    char seen[64][300];  // request counts per target, so faults hit only the first request
    int counts[64] = {0}, nseen = 0;
    while (time(NULL) < deadline && getppid() == parent) {
        while (waitpid(-1, NULL, WNOHANG) > 0) {
        }
        struct pollfd pf = {lfd, POLLIN, 0};
        if (poll(&pf, 1, 200) <= 0) continue;
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) continue;
        // Read the request head (bounded in size and time).
        char req[8192];
        size_t n = 0;
        time_t t0 = time(NULL);
        while (n < sizeof req - 1 && time(NULL) - t0 < 3) {
            struct pollfd cf = {fd, POLLIN, 0};
            if (poll(&cf, 1, 500) <= 0) continue;
            ssize_t r = recv(fd, req + n, sizeof req - 1 - n, 0);
            if (r <= 0) break;
            n += (size_t)r;
            req[n] = 0;
            if (strstr(req, "\r\n\r\n")) break;
        }
        req[n] = 0;
        char method[16] = "", target[2048] = "";
        sscanf(req, "%15s %2047s", method, target);
        long long range_from = -1;
        const char *rg = strcasestr(req, "\r\nRange: bytes=");
        if (rg) range_from = atoll(rg + 15);
        const char *auth = strcasestr(req, "\r\nAuthorization: ");
        char authv[128] = "-";
        if (auth) sscanf(auth + 17, "%127[^\r]", authv);
        int nth = 0;
        for (int i = 0; i < nseen; i++)
            if (!strcmp(seen[i], target)) nth = ++counts[i];
        if (!nth && nseen < 64) {
            snprintf(seen[nseen], sizeof seen[nseen], "%.290s", target);
            counts[nseen++] = nth = 1;
        }
        FILE *lg = fopen(logpath, "a");
        if (lg) {
            fprintf(lg, "%s %s range=%lld auth=%s n=%d\n", method, target, range_from, authv, nth);
            fclose(lg);
        }
        pid_t c = fork();
        if (c == 0) {
            alarm(10);
            respond(fd, method, target, range_from, nth);
            shutdown(fd, SHUT_WR);
            close(fd);
            _exit(0);
        }
        close(fd);
    }
    _exit(0);
}

static int server_start(Server *s, int fault_bits) {
    faults = fault_bits;
    unlink(logpath);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0) return -1;
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t al = sizeof a;
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 64) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &al) != 0) {
        close(lfd);
        return -1;
    }
    s->port = ntohs(a.sin_port);
    fflush(stdout);
    s->pid = fork();
    if (s->pid < 0) {
        close(lfd);
        return -1;
    }
    if (s->pid == 0) {
        setpgid(0, 0);  // the server and its handlers form one group, stopped together
        server_loop(lfd);
    }
    setpgid(s->pid, s->pid);
    close(lfd);
    return 0;
}

static void server_stop(Server *s) {
    if (s->pid > 0) {
        kill(-s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
}

static void options(HubOptions *o, const Server *s, const char *cache) {
    hub_options_default(o);
    snprintf(o->endpoint, sizeof o->endpoint, "http://127.0.0.1:%d", s ? s->port : 9);
    o->token[0] = 0;
    snprintf(o->cache_dir, sizeof o->cache_dir, "%s", cache ? cache : tmp_path("cache"));
    o->retries = 4;
    o->retry_wait = 0.01;
    o->connect_timeout = 5;
    o->stall_timeout = 1;
    o->parallel = 3;
    o->offline = 0;
    o->log = NULL;
    o->progress = 0;
}

// 1 when path holds exactly the bytes of fake file i.
static int same_content(const char *path, int i) {
    size_t len;
    char *d = file_read_all(path, &len, NULL);
    int ok = d && len == files[i].len && !memcmp(d, files[i].data, len);
    free(d);
    return ok;
}

static char *server_log(void) {
    char *t = file_read_all(logpath, NULL, NULL);
    return t ? t : strdup("");
}

static int count_lines(const char *log, const char *needle) {
    int n = 0;
    for (const char *p = log; (p = strstr(p, needle)); p++) n++;
    return n;
}

static void check_plain_dir(const char *dir, int *ok) {
    *ok = 0;
    char p[1024];
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i].path);
        if (!same_content(p, i)) return;
        snprintf(p, sizeof p, "%s/%s.incomplete", dir, files[i].path);
        if (file_exists(p)) return;
    }
    snprintf(p, sizeof p, "%s/README.md", dir);
    if (file_exists(p)) return;
    snprintf(p, sizeof p, "%s/onnx/model.onnx", dir);
    if (file_exists(p)) return;
    snprintf(p, sizeof p, "%s/.pionrl-download.json", dir);
    if (!file_exists(p)) return;
    *ok = 1;
}

// ---- tests ----

static void test_full_download_plain(void) {
    Server s;
    CHECK(server_start(&s, 0) == 0);
    HubOptions o;
    options(&o, &s, NULL);
    snprintf(o.token, sizeof o.token, "hf_testtoken");
    FILE *lg = fopen(tmp_path("progress.txt"), "w");
    o.log = lg;
    o.progress = 2;  // exercise the TTY bar rendering into a file
    char dir[1024];
    Error e = {{0}};
    int rc = hub_download_repo(&o, REPO, "main", tmp_path("plain"), NULL, dir, sizeof dir, &e);
    fclose(lg);
    char *log = server_log();
    server_stop(&s);
    CHECK_MSG(rc == 0, "%s", e.msg);
    CHECK(!strcmp(dir, tmp_path("plain")));
    int ok;
    check_plain_dir(dir, &ok);
    CHECK(ok);
    CHECK_MSG(strstr(log, "/api/models/" REPO "/revision/main?blobs=true"), "%s", log);
    CHECK(strstr(log, "auth=Bearer hf_testtoken"));
    CHECK(count_lines(log, "/resolve/" COMMIT "/") == 5);
    char *prog = file_read_all(tmp_path("progress.txt"), NULL, NULL);
    CHECK(prog && strstr(prog, "downloaded model-00001-of-00002.safetensors") && strstr(prog, "5/5 files"));
    free(prog);
    free(log);
    // A second run finds every file in place and transfers nothing.
    CHECK(server_start(&s, 0) == 0);
    options(&o, &s, NULL);
    rc = hub_download_repo(&o, REPO, "main", tmp_path("plain"), NULL, dir, sizeof dir, &e);
    log = server_log();
    server_stop(&s);
    CHECK_MSG(rc == 0, "%s", e.msg);
    CHECK(count_lines(log, "/resolve/") == 0);
    free(log);
}

static void test_full_download_cache_layout(void) {
    Server s;
    CHECK(server_start(&s, 0) == 0);
    HubOptions o;
    options(&o, &s, tmp_path("hfcache"));
    char dir[1024];
    Error e = {{0}};
    int rc = hub_download_repo(&o, REPO, "main", NULL, NULL, dir, sizeof dir, &e);
    server_stop(&s);
    CHECK_MSG(rc == 0, "%s", e.msg);
    char want[1024];
    snprintf(want, sizeof want, "%s/models--acme--tiny-model/snapshots/%s", tmp_path("hfcache"), COMMIT);
    CHECK_MSG(!strcmp(dir, want), "%s", dir);
    char p[1200], target[512];
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i].path);
        CHECK_MSG(same_content(p, i), "%s", p);
        ssize_t k = readlink(p, target, sizeof target - 1);
        CHECK(k > 0);
        target[k] = 0;
        CHECK(!strncmp(target, "../../blobs/", 12));
        if (files[i].lfs) CHECK(!strcmp(target + 12, files[i].sha));
    }
    snprintf(p, sizeof p, "%s/models--acme--tiny-model/refs/main", tmp_path("hfcache"));
    char *ref = file_read_all(p, NULL, NULL);
    CHECK(ref && !strcmp(ref, COMMIT));
    free(ref);
    // Offline: the cache alone resolves main -> the snapshot.
    o.offline = 1;
    char dir2[1024];
    CHECK(hub_download_repo(&o, REPO, "main", NULL, NULL, dir2, sizeof dir2, &e) == 0);
    CHECK(!strcmp(dir, dir2));
    CHECK(hub_download_repo(&o, REPO, COMMIT, NULL, NULL, dir2, sizeof dir2, &e) == 0);
    CHECK(hub_download_repo(&o, "acme/other", "main", NULL, NULL, dir2, sizeof dir2, &e) == -1);
    CHECK(strstr(e.msg, "not in the cache"));
    CHECK(hub_download_repo(&o, REPO, "v9", NULL, NULL, dir2, sizeof dir2, &e) == -1);
    CHECK(strstr(e.msg, "not in the cache"));
    // A missing shard makes the offline snapshot incomplete.
    snprintf(p, sizeof p, "%s/model-00002-of-00002.safetensors", dir);
    unlink(p);
    CHECK(hub_download_repo(&o, REPO, "main", NULL, NULL, dir2, sizeof dir2, &e) == -1);
    CHECK_MSG(strstr(e.msg, "model-00002-of-00002.safetensors") && strstr(e.msg, "missing"), "%s", e.msg);
}

static void test_faults_recovered(void) {
    Server s;
    CHECK(server_start(&s, F_FLAKY | F_SLOW | F_STALL) == 0);
    HubOptions o;
    options(&o, &s, NULL);
    char dir[1024];
    Error e = {{0}};
    int rc = hub_download_repo(&o, REPO, "main", tmp_path("faults"), NULL, dir, sizeof dir, &e);
    char *log = server_log();
    server_stop(&s);
    CHECK_MSG(rc == 0, "%s", e.msg);
    int ok;
    check_plain_dir(dir, &ok);
    CHECK(ok);
    // The stalled shard was resumed from the bytes it had, not restarted.
    CHECK_MSG(strstr(log, "model-00002-of-00002.safetensors range=1000 "), "%s", log);
    CHECK(count_lines(log, "model-00001-of-00002.safetensors range=-1") == 2);  // 500, then OK
    free(log);
}

static void test_truncated_body_retried(void) {
    Server s;
    CHECK(server_start(&s, F_CUT) == 0);
    HubOptions o;
    options(&o, &s, NULL);
    char dir[1024];
    Error e = {{0}};
    int rc = hub_download_repo(&o, REPO, "main", tmp_path("cut"), NULL, dir, sizeof dir, &e);
    char *log = server_log();
    server_stop(&s);
    CHECK_MSG(rc == 0, "%s", e.msg);
    int ok;
    check_plain_dir(dir, &ok);
    CHECK(ok);
    CHECK_MSG(strstr(log, "model-00001-of-00002.safetensors range=150000 "), "%s", log);
    free(log);
}

static void test_no_length_short_body_retried(void) {
    Server s;
    CHECK(server_start(&s, F_NOLENGTH) == 0);
    HubOptions o;
    options(&o, &s, NULL);
    char dir[1024];
    Error e = {{0}};
    int rc = hub_download_repo(&o, REPO, "main", tmp_path("nolen"), NULL, dir, sizeof dir, &e);
    char *log = server_log();
    server_stop(&s);
    CHECK_MSG(rc == 0, "%s", e.msg);
    int ok;
    check_plain_dir(dir, &ok);
    CHECK(ok);
    CHECK_MSG(strstr(log, "model-00001-of-00002.safetensors range=150000 "), "%s", log);
    free(log);
}

static void test_resume_after_interrupted_run(void) {
    Server s;
    CHECK(server_start(&s, F_CUT) == 0);
    HubOptions o;
    options(&o, &s, NULL);
    o.retries = 0;  // the cut ends the run
    o.parallel = 1;
    char dir[1024];
    Error e = {{0}};
    int rc = hub_download_repo(&o, REPO, "main", tmp_path("resume"), NULL, dir, sizeof dir, &e);
    CHECK(rc == -1);
    CHECK_MSG(strstr(e.msg, "interrupted") && strstr(e.msg, "run again to resume"), "%s", e.msg);
    char p[1024];
    snprintf(p, sizeof p, "%s/model-00001-of-00002.safetensors", tmp_path("resume"));
    CHECK(!file_exists(p));  // the partial file is never taken for the complete one
    char part[1100];
    snprintf(part, sizeof part, "%s.incomplete", p);
    struct stat st;
    CHECK(stat(part, &st) == 0 && st.st_size == 150000);
    CHECK(!file_exists(tmp_path("resume/.pionrl-download.json")));
    // The next run (same server: the cut was its first answer only) resumes with a Range request.
    rc = hub_download_repo(&o, REPO, "main", tmp_path("resume"), NULL, dir, sizeof dir, &e);
    char *log = server_log();
    server_stop(&s);
    CHECK_MSG(rc == 0, "%s", e.msg);
    CHECK_MSG(strstr(log, "model-00001-of-00002.safetensors range=150000 "), "%s", log);
    int ok;
    check_plain_dir(dir, &ok);
    CHECK(ok);
    free(log);
}

static void test_checksum_mismatch(void) {
    Server s;
    CHECK(server_start(&s, F_BADSHA) == 0);
    HubOptions o;
    options(&o, &s, NULL);
    char dir[1024];
    Error e = {{0}};
    int rc = hub_download_repo(&o, REPO, "main", tmp_path("badsha"), NULL, dir, sizeof dir, &e);
    server_stop(&s);
    CHECK(rc == -1);
    CHECK_MSG(strstr(e.msg, "sha256 mismatch") && strstr(e.msg, "model-00002-of-00002.safetensors"), "%s", e.msg);
    char p[1024];
    snprintf(p, sizeof p, "%s/model-00002-of-00002.safetensors", tmp_path("badsha"));
    CHECK(!file_exists(p));
    strcat(p, ".incomplete");
    CHECK(!file_exists(p));
    CHECK(!file_exists(tmp_path("badsha/.pionrl-download.json")));
}

static void test_corrupt_partial_and_ignored_range(void) {
    // A partial file whose bytes are wrong: resume gives a sha256 mismatch, so it restarts from zero.
    Error e = {{0}};
    CHECK(dir_create(tmp_path("corrupt"), &e) == 0);
    char part[1024];
    snprintf(part, sizeof part, "%s/model-00001-of-00002.safetensors.incomplete", tmp_path("corrupt"));
    CHECK(file_write_atomic(part, "garbage garbage garbage", 23, &e) == 0);
    Server s;
    CHECK(server_start(&s, 0) == 0);
    HubOptions o;
    options(&o, &s, NULL);
    char dir[1024];
    int rc = hub_download_repo(&o, REPO, "main", tmp_path("corrupt"), NULL, dir, sizeof dir, &e);
    char *log = server_log();
    server_stop(&s);
    CHECK_MSG(rc == 0, "%s", e.msg);
    int ok;
    check_plain_dir(dir, &ok);
    CHECK(ok);
    CHECK(strstr(log, "model-00001-of-00002.safetensors range=23 "));
    CHECK(strstr(log, "model-00001-of-00002.safetensors range=-1 "));
    free(log);
    // A server that ignores Range: the partial bytes are dropped and the whole body is taken.
    snprintf(part, sizeof part, "%s/model-00002-of-00002.safetensors", tmp_path("corrupt"));
    unlink(part);
    strcat(part, ".incomplete");
    CHECK(file_write_atomic(part, files[3].data, 5000, &e) == 0);
    CHECK(server_start(&s, F_NORANGE) == 0);
    options(&o, &s, NULL);
    rc = hub_download_repo(&o, REPO, "main", tmp_path("corrupt"), NULL, dir, sizeof dir, &e);
    log = server_log();
    server_stop(&s);
    CHECK_MSG(rc == 0, "%s", e.msg);
    check_plain_dir(dir, &ok);
    CHECK(ok);
    CHECK(strstr(log, "model-00002-of-00002.safetensors range=5000 "));
    free(log);
}

static void test_tree_listing_and_selection(void) {
    Server s;
    CHECK(server_start(&s, F_TREE_ONLY) == 0);
    HubOptions o;
    options(&o, &s, tmp_path("treecache"));
    const char *inc[] = {"*.md", "onnx/*", NULL};
    HubSelect sel = {inc, 0};
    char dir[1024];
    Error e = {{0}};
    int rc = hub_download_repo(&o, REPO, "main", NULL, &sel, dir, sizeof dir, &e);
    char *log = server_log();
    server_stop(&s);
    CHECK_MSG(rc == 0, "%s", e.msg);
    CHECK(strstr(log, "/revision/main?blobs=true"));
    CHECK(strstr(log, "/tree/main?recursive=1"));
    CHECK(strstr(log, "/resolve/main/onnx/model.onnx"));  // no commit id in a tree listing
    free(log);
    // The snapshot is named after the revision; nested paths get deeper relative links.
    char p[1200], target[256];
    snprintf(p, sizeof p, "%s/onnx/model.onnx", dir);
    CHECK(same_content(p, 6));
    ssize_t k = readlink(p, target, sizeof target - 1);
    CHECK(k > 0);
    target[k] = 0;
    CHECK_MSG(!strncmp(target, "../../../blobs/", 15), "%s", target);
    snprintf(p, sizeof p, "%s/README.md", dir);
    CHECK(same_content(p, 5));
    snprintf(p, sizeof p, "%s/config.json", dir);
    CHECK(!file_exists(p));
    CHECK(strstr(dir, "/snapshots/main"));
    // A selection that matches nothing is an error that says so.
    const char *none[] = {"*.gguf", NULL};
    HubSelect sel2 = {none, 0};
    CHECK(server_start(&s, 0) == 0);
    options(&o, &s, NULL);
    rc = hub_download_repo(&o, REPO, "main", tmp_path("none"), &sel2, dir, sizeof dir, &e);
    server_stop(&s);
    CHECK(rc == -1 && strstr(e.msg, "no file matches"));
}

static void test_http_errors(void) {
    Server s;
    CHECK(server_start(&s, 0) == 0);
    HubOptions o;
    options(&o, &s, NULL);
    char dir[1024];
    Error e = {{0}};
    CHECK(hub_download_repo(&o, "acme/private", "main", tmp_path("e1"), NULL, dir, sizeof dir, &e) == -1);
    CHECK_MSG(strstr(e.msg, "HTTP 401") && strstr(e.msg, "HF_TOKEN"), "%s", e.msg);
    CHECK(hub_download_repo(&o, "acme/gated", "main", tmp_path("e2"), NULL, dir, sizeof dir, &e) == -1);
    CHECK_MSG(strstr(e.msg, "HTTP 403") && strstr(e.msg, "gated") && strstr(e.msg, "GatedRepo"), "%s", e.msg);
    CHECK(hub_download_repo(&o, "acme/nothing", "main", tmp_path("e3"), NULL, dir, sizeof dir, &e) == -1);
    CHECK_MSG(strstr(e.msg, "HTTP 404") && strstr(e.msg, "repository id"), "%s", e.msg);
    CHECK(hub_download_repo(&o, REPO, "v2", tmp_path("e4"), NULL, dir, sizeof dir, &e) == -1);
    CHECK_MSG(strstr(e.msg, "HTTP 404") && strstr(e.msg, "RevisionNotFound"), "%s", e.msg);
    // A file that the resolve endpoint does not have.
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/" REPO "/resolve/main/absent.bin", s.port);
    CHECK(hub_fetch(&o, url, tmp_path("absent.bin"), -1, NULL, NULL, &e) == -1);
    CHECK_MSG(strstr(e.msg, "HTTP 404") && strstr(e.msg, "EntryNotFound"), "%s", e.msg);
    CHECK(!file_exists(tmp_path("absent.bin")) && !file_exists(tmp_path("absent.bin.incomplete")));
    char *log = server_log();
    server_stop(&s);
    CHECK(count_lines(log, "acme/private") == 1);  // auth errors are not retried
    free(log);
    CHECK(!dir_exists(tmp_path("e1")));
}

static void test_connection_refused(void) {
    // Grab a free port, then close it: nothing listens there.
    Server s;
    CHECK(server_start(&s, 0) == 0);
    server_stop(&s);
    HubOptions o;
    options(&o, &s, NULL);
    o.retries = 2;
    char dir[1024];
    Error e = {{0}};
    CHECK(hub_download_repo(&o, REPO, "main", tmp_path("refused"), NULL, dir, sizeof dir, &e) == -1);
    CHECK_MSG(strstr(e.msg, "after 3 attempts") && strstr(e.msg, "listing"), "%s", e.msg);
}

static void test_bad_arguments(void) {
    HubOptions o;
    options(&o, NULL, NULL);
    char dir[1024];
    Error e = {{0}};
    CHECK(hub_download_repo(&o, "../etc", "main", NULL, NULL, dir, sizeof dir, &e) == -1);
    CHECK(strstr(e.msg, "invalid repository id"));
    CHECK(hub_download_repo(&o, REPO, "a b", NULL, NULL, dir, sizeof dir, &e) == -1);
    CHECK(strstr(e.msg, "invalid revision"));
    CHECK(hub_download_repo(&o, REPO, "../../x", NULL, NULL, dir, sizeof dir, &e) == -1);
    CHECK(strstr(e.msg, "invalid revision"));
    CHECK(hub_check_space(tmpdir, 1LL << 60, &e) == -1);
    CHECK_MSG(strstr(e.msg, "not enough disk space") && strstr(e.msg, "free"), "%s", e.msg);
    CHECK(hub_check_space(tmp_path("not/yet/there"), 1, &e) == 0);
    o.offline = 1;
    CHECK(hub_download_repo(&o, REPO, "main", tmp_path("never"), NULL, dir, sizeof dir, &e) == -1);
    CHECK_MSG(strstr(e.msg, "offline") && strstr(e.msg, "run without --offline"), "%s", e.msg);
    CHECK(hub_fetch(&o, "http://127.0.0.1:9/x", tmp_path("x"), -1, NULL, NULL, &e) == -1);
    CHECK(strstr(e.msg, "offline"));
}

static void test_offline_plain(void) {
    Server s;
    CHECK(server_start(&s, 0) == 0);
    HubOptions o;
    options(&o, &s, NULL);
    char dir[1024];
    Error e = {{0}};
    int rc = hub_download_repo(&o, REPO, "main", tmp_path("offplain"), NULL, dir, sizeof dir, &e);
    server_stop(&s);
    CHECK_MSG(rc == 0, "%s", e.msg);
    o.offline = 1;
    o.verify_existing = 1;
    CHECK(hub_download_repo(&o, REPO, "main", tmp_path("offplain"), NULL, dir, sizeof dir, &e) == 0);
    CHECK(hub_download_repo(&o, "acme/other", "main", tmp_path("offplain"), NULL, dir, sizeof dir, &e) == -1);
    CHECK(strstr(e.msg, "holds 'acme/tiny-model'"));
    // Same size, different bytes: only --verify (verify_existing) notices.
    char p[1024];
    snprintf(p, sizeof p, "%s/model-00002-of-00002.safetensors", tmp_path("offplain"));
    char *junk = calloc(1, files[3].len);
    CHECK(file_write_atomic(p, junk, files[3].len, &e) == 0);
    free(junk);
    CHECK(hub_download_repo(&o, REPO, "main", tmp_path("offplain"), NULL, dir, sizeof dir, &e) == -1);
    CHECK(strstr(e.msg, "model-00002-of-00002.safetensors is missing or incomplete"));
    o.verify_existing = 0;
    CHECK(hub_download_repo(&o, REPO, "main", tmp_path("offplain"), NULL, dir, sizeof dir, &e) == 0);
    // Online with --verify re-fetches the bad file.
    CHECK(server_start(&s, 0) == 0);
    options(&o, &s, NULL);
    o.verify_existing = 1;
    rc = hub_download_repo(&o, REPO, "main", tmp_path("offplain"), NULL, dir, sizeof dir, &e);
    char *log = server_log();
    server_stop(&s);
    CHECK_MSG(rc == 0, "%s", e.msg);
    CHECK(count_lines(log, "/resolve/") == 1);
    CHECK(same_content(p, 3));
    free(log);
}

static void write_ds(const char *name, const char *text) {
    char p[600];
    snprintf(p, sizeof p, "%s/ds/%s", tmpdir, name);
    Error e;
    file_write_atomic(p, text, strlen(text), &e);
}

static void test_datasets_end_to_end(void) {
    Error e = {{0}};
    char p[600];
    snprintf(p, sizeof p, "%s/ds", tmpdir);
    CHECK(dir_create(p, &e) == 0);
    write_ds("train.jsonl", "{\"question\":\"Q1\",\"answer\":\"x\\n#### 1\"}\n{\"question\":\"Q2\",\"answer\":\"#### 2\"}\n");
    write_ds("test.jsonl", "{\"question\":\"T1\",\"answer\":\"#### 3\"}\n");
    write_ds("m500.jsonl", "{\"problem\":\"P\",\"solution\":\"S\",\"answer\":\"4\",\"subject\":\"Algebra\",\"level\":1,"
                           "\"unique_id\":\"test/algebra/1.json\"}\n");
    size_t tl;
    char *tar = file_read_all("tests/fixtures/download/math_gnu.tar", &tl, &e);
    CHECK(tar);
    snprintf(p, sizeof p, "%s/ds/MATH.tar", tmpdir);
    CHECK(file_write_atomic(p, tar, tl, &e) == 0);
    free(tar);

    Server s;
    CHECK(server_start(&s, 0) == 0);
    HubOptions o;
    options(&o, &s, NULL);
    char tr[256], te[256], mt[256], m5[256];
    snprintf(tr, sizeof tr, "train=http://127.0.0.1:%d/ds/train.jsonl", s.port);
    snprintf(te, sizeof te, "test=http://127.0.0.1:%d/ds/test.jsonl", s.port);
    snprintf(mt, sizeof mt, "http://127.0.0.1:%d/ds/MATH.tar", s.port);
    snprintf(m5, sizeof m5, "test=http://127.0.0.1:%d/ds/m500.jsonl", s.port);
    const char *gov[] = {tr, te, NULL};
    // The Hub token is for the Hub endpoint: a data set host elsewhere must not receive it.
    snprintf(o.token, sizeof o.token, "hf_secret");
    snprintf(o.endpoint, sizeof o.endpoint, "http://127.0.0.1:%d/elsewhere", s.port);
    int rc = hub_dataset_download(&o, "gsm8k", tmp_path("data"), gov, 0, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    char *log0 = server_log();
    CHECK_MSG(!strstr(log0, "hf_secret") && strstr(log0, "/ds/train.jsonl range=-1 auth=- "), "%s", log0);
    free(log0);
    setenv("PIONRL_MATH_TRAIN_URL", mt, 1);
    setenv("PIONRL_MATH_TEST_URL", mt, 1);
    rc = hub_dataset_download(&o, "math", tmp_path("data"), NULL, 0, &e);
    unsetenv("PIONRL_MATH_TRAIN_URL");
    unsetenv("PIONRL_MATH_TEST_URL");
    CHECK_MSG(rc == 0, "%s", e.msg);
    const char *mov[] = {m5, NULL};
    rc = hub_dataset_download(&o, "math500", tmp_path("data"), mov, 0, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    const char *missing[] = {"train=http://127.0.0.1:1/nothing.jsonl", NULL};
    snprintf(p, sizeof p, "train=http://127.0.0.1:%d/ds/absent.jsonl", s.port);
    missing[0] = p;
    rc = hub_dataset_download(&o, "gsm8k", tmp_path("data2"), missing, 0, &e);
    char *log = server_log();
    server_stop(&s);
    CHECK(rc == -1 && strstr(e.msg, "HTTP 404"));
    CHECK(count_lines(log, "/ds/MATH.tar") == 1);  // both splits share one download
    free(log);
    char *t = file_read_all(tmp_path("data/gsm8k/train.jsonl"), NULL, &e);
    CHECK(t && !strcmp(t, "{\"question\":\"Q1\",\"answer\":\"x\\n#### 1\"}\n{\"question\":\"Q2\",\"answer\":\"#### 2\"}\n"));
    free(t);
    CHECK(file_exists(tmp_path("data/gsm8k/test.jsonl")));
    t = file_read_all(tmp_path("data/math/train.jsonl"), NULL, &e);
    CHECK(t && strstr(t, "\"unique_id\":\"train/algebra/1.json\""));
    free(t);
    t = file_read_all(tmp_path("data/math/test.jsonl"), NULL, &e);
    CHECK(t && strstr(t, "\"answer\":\"6\""));
    free(t);
    t = file_read_all(tmp_path("data/math/test500.jsonl"), NULL, &e);
    CHECK(t && strstr(t, "\"answer\":\"4\""));
    free(t);
    // Offline: the downloaded sources are converted again without the network.
    o.offline = 1;
    CHECK(hub_dataset_download(&o, "gsm8k", tmp_path("data"), gov, 0, &e) == 0);
    CHECK(hub_dataset_download(&o, "gsm8k", tmp_path("data3"), gov, 0, &e) == -1 && strstr(e.msg, "offline"));
}

static void test_duplicate_blob_fetched_once(void) {
    Server s;
    CHECK(server_start(&s, 0) == 0);
    HubOptions o;
    options(&o, &s, tmp_path("dupcache"));
    const char *inc[] = {"model-00002-of-00002.safetensors", "extra/*", NULL};
    HubSelect sel = {inc, 0};
    char dir[1024];
    Error e = {{0}};
    int rc = hub_download_repo(&o, REPO, "main", NULL, &sel, dir, sizeof dir, &e);
    char *log = server_log();
    server_stop(&s);
    CHECK_MSG(rc == 0, "%s", e.msg);
    CHECK(count_lines(log, "/resolve/") == 1);
    free(log);
    char p[1200];
    snprintf(p, sizeof p, "%s/extra/copy.safetensors", dir);
    CHECK(same_content(p, 7));
    snprintf(p, sizeof p, "%s/model-00002-of-00002.safetensors", dir);
    CHECK(same_content(p, 3));
}

// A write that fails mid-transfer (here: a file size limit, as a stand-in for a full disk) stops
// the download with the system's reason, and keeps the bytes written so far for a later resume.
static void test_write_failure(void) {
    Server s;
    CHECK(server_start(&s, 0) == 0);
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/" REPO "/resolve/main/model-00001-of-00002.safetensors", s.port);
    const char *dest = tmp_path("limited.bin");
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {100000, 100000};
        setrlimit(RLIMIT_FSIZE, &rl);
        HubOptions o;
        options(&o, &s, NULL);
        Error e = {{0}};
        int rc = hub_fetch(&o, url, dest, (long long)files[2].len, files[2].sha, NULL, &e);
        _exit(rc == -1 && strstr(e.msg, "write failed") && strstr(e.msg, "too large") ? 0 : 1);
    }
    int st = 0;
    waitpid(c, &st, 0);
    server_stop(&s);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(!file_exists(dest));
    char part[600];
    snprintf(part, sizeof part, "%s.incomplete", dest);
    struct stat sb;
    CHECK(stat(part, &sb) == 0 && sb.st_size > 0 && sb.st_size <= 100000);
}

// A second downloader of the same file (another process holding the partial file's lock) is
// refused instead of interleaving bytes.
static void test_concurrent_download_refused(void) {
    const char *dest = tmp_path("locked.bin");
    char part[600];
    snprintf(part, sizeof part, "%s.incomplete", dest);
    int fd = open(part, O_WRONLY | O_CREAT, 0644);
    CHECK(fd >= 0);
    int ready[2];
    CHECK(pipe(ready) == 0);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        flock(fd, LOCK_EX);
        if (write(ready[1], "x", 1) != 1) _exit(1);
        sleep(5);
        _exit(0);
    }
    close(fd);
    close(ready[1]);
    struct pollfd pf = {ready[0], POLLIN, 0};
    char b;
    int got = poll(&pf, 1, 5000) == 1 && read(ready[0], &b, 1) == 1;
    close(ready[0]);
    if (!got) {
        kill(c, SIGKILL);
        waitpid(c, NULL, 0);
    }
    CHECK(got);
    HubOptions o;
    options(&o, NULL, NULL);
    Error e = {{0}};
    int rc = hub_fetch(&o, "http://127.0.0.1:9/x", dest, -1, NULL, NULL, &e);
    kill(c, SIGKILL);
    waitpid(c, NULL, 0);
    CHECK(rc == -1);
    CHECK_MSG(strstr(e.msg, "another download"), "%s", e.msg);
}

static char pionrl_bin[512];

// The CLI end to end: `pionrl download` against the fake Hub (HF_ENDPOINT), stdout is the directory.
static void test_cli(void) {
    if (!pionrl_bin[0] || access(pionrl_bin, X_OK) != 0) {
        test_skip("pionrl binary not found next to the test's build directory");
        return;
    }
    Server s;
    CHECK(server_start(&s, F_FLAKY) == 0);
    char cmd[2048], out[1024] = "";
    snprintf(cmd, sizeof cmd,
             "HF_ENDPOINT=http://127.0.0.1:%d HF_HUB_CACHE=%s %s download " REPO " --parallel 2 2>%s",
             s.port, tmp_path("clicache"), pionrl_bin, tmp_path("cli_err.txt"));
    FILE *p = popen(cmd, "r");
    CHECK(p);
    if (!fgets(out, sizeof out, p)) out[0] = 0;
    int st = pclose(p);
    char *log = server_log();
    server_stop(&s);
    free(log);
    char *errtxt = file_read_all(tmp_path("cli_err.txt"), NULL, NULL);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d: %s", st, errtxt ? errtxt : "");
    // Not a terminal: plain lines, one per file, and a summary.
    CHECK(errtxt && strstr(errtxt, "downloaded model-00001-of-00002.safetensors") && strstr(errtxt, "5/5 files"));
    CHECK(!strchr(errtxt, '\r'));
    free(errtxt);
    out[strcspn(out, "\n")] = 0;
    char want[1024];
    snprintf(want, sizeof want, "%s/models--acme--tiny-model/snapshots/%s", tmp_path("clicache"), COMMIT);
    CHECK_MSG(!strcmp(out, want), "stdout '%s'", out);
    // Offline afterwards, with no server at all.
    snprintf(cmd, sizeof cmd, "HF_HUB_CACHE=%s HF_HUB_OFFLINE=1 %s download " REPO " --quiet", tmp_path("clicache"),
             pionrl_bin);
    p = popen(cmd, "r");
    CHECK(p);
    if (!fgets(out, sizeof out, p)) out[0] = 0;
    st = pclose(p);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    out[strcspn(out, "\n")] = 0;
    CHECK(!strcmp(out, want));
    // Errors: exit status 1 with a message; usage errors 2.
    snprintf(cmd, sizeof cmd, "HF_HUB_CACHE=%s %s download acme/none --offline 2>/dev/null", tmp_path("clicache"),
             pionrl_bin);
    st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    snprintf(cmd, sizeof cmd, "%s download --bogus 2>/dev/null", pionrl_bin);
    st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2);
    snprintf(cmd, sizeof cmd, "%s download --help >/dev/null", pionrl_bin);
    st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(int argc, char **argv) {
    // build/tests/test_download -> build/pionrl
    if (argc > 0) {
        snprintf(pionrl_bin, sizeof pionrl_bin, "%s", argv[0]);
        char *slash = strrchr(pionrl_bin, '/');
        if (slash) {
            *slash = 0;
            slash = strrchr(pionrl_bin, '/');
            if (slash)
                strcpy(slash + 1, "pionrl");
            else
                snprintf(pionrl_bin, sizeof pionrl_bin, "pionrl");
        } else {
            pionrl_bin[0] = 0;
        }
    }
    unsetenv("HF_TOKEN");
    unsetenv("HUGGING_FACE_HUB_TOKEN");
    unsetenv("HF_HUB_OFFLINE");
    unsetenv("http_proxy");
    unsetenv("https_proxy");
    unsetenv("all_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("HTTPS_PROXY");
    unsetenv("ALL_PROXY");
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pionrl_dl_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(logpath, sizeof logpath, "%s/server.log", tmpdir);
    make_repo();
    RUN(test_full_download_plain);
    RUN(test_full_download_cache_layout);
    RUN(test_faults_recovered);
    RUN(test_truncated_body_retried);
    RUN(test_no_length_short_body_retried);
    RUN(test_resume_after_interrupted_run);
    RUN(test_checksum_mismatch);
    RUN(test_corrupt_partial_and_ignored_range);
    RUN(test_tree_listing_and_selection);
    RUN(test_http_errors);
    RUN(test_connection_refused);
    RUN(test_bad_arguments);
    RUN(test_offline_plain);
    RUN(test_duplicate_blob_fetched_once);
    RUN(test_datasets_end_to_end);
    RUN(test_write_failure);
    RUN(test_concurrent_download_refused);
    RUN(test_cli);
    if (!getenv("PIONRL_TEST_KEEP")) rm_tree(tmpdir);
    for (int i = 0; i < nfiles; i++) free(files[i].data);
    return test_summary("test_download");
}
