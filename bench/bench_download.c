// Download benchmark: (1) SHA-256 throughput of src/core/sha256.c against coreutils `sha256sum`
// and `openssl dgst -sha256` on the same 256 MB file; (2) hub_fetch of that file over loopback
// from a local HTTP server (Python's http.server) with size + sha256 verification, fsync and
// rename, against `curl -o` alone and `curl -o` followed by `sha256sum`. Writes
// bench/results/download.json. Loopback only; the server is stopped at the end.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/fileio.h"
#include "core/hub.h"
#include "core/rng.h"
#include "core/sha256.h"
#include "core/timer.h"

#define MB (1024.0 * 1024.0)
static const size_t SIZE = 256u << 20;

static double run_cmd(const char *cmd) {
    double t0 = time_now();
    int st = system(cmd);
    double t = time_now() - t0;
    return (WIFEXITED(st) && WEXITSTATUS(st) == 0) ? t : -1;
}

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t l = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(fd, (struct sockaddr *)&a, &l) != 0) {
        close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static int wait_for_port(int port, double seconds) {
    double t0 = time_now();
    while (time_now() - t0 < seconds) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons((uint16_t)port);
        int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
        close(fd);
        if (ok) return 0;
        usleep(50000);
    }
    return -1;
}

static double best_of(double a, double b) { return (a < 0) ? b : (b < 0) ? a : (a < b ? a : b); }

int main(void) {
    char dir[] = "/tmp/pionrl_bench_dl_XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char file[256], out[256], cmd[2048];
    snprintf(file, sizeof file, "%s/blob.bin", dir);
    snprintf(out, sizeof out, "%s/out.bin", dir);
    uint64_t *buf = malloc(SIZE);
    Rng r;
    rng_seed(&r, 7);
    for (size_t i = 0; i < SIZE / 8; i++) buf[i] = rng_u64(&r);
    Error e;
    if (file_write_atomic(file, buf, SIZE, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    char hex[65];
    double t_sha = 1e9;
    for (int k = 0; k < 3; k++) {
        double t0 = time_now();
        sha256_buffer_hex(buf, SIZE, hex);
        double t = time_now() - t0;
        if (t < t_sha) t_sha = t;
    }
    free(buf);
    snprintf(cmd, sizeof cmd, "sha256sum %s > /dev/null", file);
    double t_sum = best_of(run_cmd(cmd), run_cmd(cmd));
    snprintf(cmd, sizeof cmd, "openssl dgst -sha256 %s > /dev/null 2>&1", file);
    double t_ossl = best_of(run_cmd(cmd), run_cmd(cmd));
    printf("sha256 256 MiB: pionrl %.0f MB/s, sha256sum %.0f MB/s, openssl %.0f MB/s\n", SIZE / MB / t_sha,
           t_sum > 0 ? SIZE / MB / t_sum : 0, t_ossl > 0 ? SIZE / MB / t_ossl : 0);

    // Loopback download.
    int port = free_port();
    double t_fetch = -1, t_curl = -1, t_curl_sum = -1;
    pid_t srv = fork();
    if (srv == 0) {
        char p[16];
        snprintf(p, sizeof p, "%d", port);
        int devnull = open("/dev/null", 1);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execlp("python3", "python3", "-m", "http.server", p, "--bind", "127.0.0.1", "--directory", dir, (char *)NULL);
        _exit(127);
    }
    if (port > 0 && wait_for_port(port, 10) == 0) {
        char url[256];
        snprintf(url, sizeof url, "http://127.0.0.1:%d/blob.bin", port);
        HubOptions o;
        hub_options_default(&o);
        o.log = NULL;
        o.progress = 0;
        o.retries = 0;
        for (int k = 0; k < 2; k++) {
            unlink(out);
            double t0 = time_now();
            if (hub_fetch(&o, url, out, (long long)SIZE, hex, NULL, &e) != 0) {
                fprintf(stderr, "hub_fetch: %s\n", e.msg);
                break;
            }
            t_fetch = best_of(t_fetch, time_now() - t0);
        }
        snprintf(cmd, sizeof cmd, "curl -s -o %s %s", out, url);
        for (int k = 0; k < 2; k++) {
            unlink(out);
            t_curl = best_of(t_curl, run_cmd(cmd));
        }
        snprintf(cmd, sizeof cmd, "curl -s -o %s %s && sha256sum %s >/dev/null && sync %s", out, url, out, out);
        for (int k = 0; k < 2; k++) {
            unlink(out);
            t_curl_sum = best_of(t_curl_sum, run_cmd(cmd));
        }
    } else {
        fprintf(stderr, "bench_download: local HTTP server did not start; download rows skipped\n");
    }
    if (srv > 0) {
        kill(srv, SIGTERM);
        waitpid(srv, NULL, 0);
    }
    unlink(out);
    unlink(file);
    rmdir(dir);
    if (t_fetch > 0)
        printf("loopback 256 MiB: hub_fetch (verify+fsync) %.0f MB/s, curl -o %.0f MB/s, curl -o + sha256sum + sync "
               "%.0f MB/s\n",
               SIZE / MB / t_fetch, t_curl > 0 ? SIZE / MB / t_curl : 0, t_curl_sum > 0 ? SIZE / MB / t_curl_sum : 0);

    mkdir("bench/results", 0755);
    FILE *f = fopen("bench/results/download.json", "w");
    if (!f) {
        perror("bench/results/download.json");
        return 1;
    }
    fprintf(f,
            "{\n  \"bytes\": %zu,\n  \"sha256_mb_s\": {\"pionrl\": %.1f, \"sha256sum\": %.1f, \"openssl\": %.1f},\n"
            "  \"loopback_download_mb_s\": {\"pionrl_hub_fetch_verified\": %.1f, \"curl\": %.1f, "
            "\"curl_then_sha256sum_sync\": %.1f}\n}\n",
            SIZE, SIZE / MB / t_sha, t_sum > 0 ? SIZE / MB / t_sum : 0, t_ossl > 0 ? SIZE / MB / t_ossl : 0,
            t_fetch > 0 ? SIZE / MB / t_fetch : 0, t_curl > 0 ? SIZE / MB / t_curl : 0,
            t_curl_sum > 0 ? SIZE / MB / t_curl_sum : 0);
    fclose(f);
    return 0;
}
