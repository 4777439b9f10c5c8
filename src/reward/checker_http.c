// http://URL — POST {"prompt","completion","answer"} as JSON, read {"score": x}. Connect and total
// timeouts per attempt, bounded retries with a short backoff; a batch runs parallel_requests
// requests at once (one easy handle per request, from reward_set_score_batch's threads).
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "reward/checker.h"

// Replies longer than this are garbage for a score.
#define MAX_REPLY (64 * 1024)

typedef struct {
    char url[512];
} Http;

typedef struct {
    char *data;
    size_t len;
    int overflow;
} Reply;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata) {
    Reply *r = userdata;
    size_t n = size * nmemb;
    if (r->len + n > MAX_REPLY) {
        r->overflow = 1;
        return 0;  // aborts the transfer
    }
    memcpy(r->data + r->len, ptr, n);
    r->len += n;
    r->data[r->len] = 0;
    return n;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

// One attempt. Returns REWARD_OK (out filled), REWARD_FAILED or REWARD_TIMEOUT (reason set);
// *retry says whether another attempt could help (not after a 4xx other than 408/429).
static int attempt(RewardChecker *c, const char *body, RewardResult *out, int *retry) {
    *retry = 1;
    Http *h = c->state;
    CURL *curl = curl_easy_init();
    if (!curl) {
        snprintf(out->reason, sizeof out->reason, "http: curl_easy_init failed");
        return REWARD_FAILED;
    }
    char *buf = malloc(MAX_REPLY + 1);
    if (!buf) {
        curl_easy_cleanup(curl);
        snprintf(out->reason, sizeof out->reason, "http: out of memory");
        return REWARD_FAILED;
    }
    buf[0] = 0;
    Reply reply = {buf, 0, 0};
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, h->url);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // required with threads: no SIGALRM for DNS timeouts
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)(c->opt.connect_timeout_s * 1000));
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)(c->opt.timeout_s * 1000));
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode rc = curl_easy_perform(curl);
    long code = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    int st;
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        st = REWARD_TIMEOUT;
        snprintf(out->reason, sizeof out->reason, "http: timed out");
    } else if (reply.overflow) {
        st = REWARD_FAILED;
        snprintf(out->reason, sizeof out->reason, "http: reply longer than %d bytes", MAX_REPLY);
    } else if (rc != CURLE_OK) {
        st = REWARD_FAILED;
        snprintf(out->reason, sizeof out->reason, "http: %s", curl_easy_strerror(rc));
    } else if (code != 200) {
        st = REWARD_FAILED;
        if (code >= 400 && code < 500 && code != 408 && code != 429) *retry = 0;  // the request is wrong
        snprintf(out->reason, sizeof out->reason, "http: status %ld", code);
    } else {
        st = checker_parse_reply(buf, out);
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    free(buf);
    return st;
}

static int score_http(RewardChecker *c, const char *prompt, const char *completion, const char *answer,
                      RewardResult *out) {
    char *body = checker_request_json(prompt, completion, answer);
    if (!body) {
        snprintf(out->reason, sizeof out->reason, "http: cannot build the request");
        return REWARD_FAILED;
    }
    int st = REWARD_FAILED;
    for (int a = 0; a <= c->opt.retries; a++) {
        if (a > 0) sleep_ms(50L << (a - 1));  // 50, 100, 200 ms ...
        out->score = 0;
        out->reason[0] = 0;
        out->pred[0] = 0;
        int retry;
        st = attempt(c, body, out, &retry);
        if (st == REWARD_OK || !retry) break;
    }
    free(body);
    return st;
}

static void destroy_http(RewardChecker *c) { free(c->state); }

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

int checker_http_init(RewardChecker *c, const char *url, Error *err) {
    Http *h = calloc(1, sizeof *h);
    if (!h) return error_set(err, "reward: out of memory");
    if (strlen(url) >= sizeof h->url) {
        free(h);
        return error_set(err, "reward: URL longer than %zu bytes", sizeof h->url - 1);
    }
    const char *host = strstr(url, "://") + 3;
    if (!*host || *host == '/') {
        free(h);
        return error_set(err, "reward: URL '%s' has no host", url);
    }
    strcpy(h->url, url);
    pthread_once(&curl_once, curl_init_once);
    c->state = h;
    c->score = score_http;
    c->destroy = destroy_http;
    c->io_bound = 1;
    return 0;
}
