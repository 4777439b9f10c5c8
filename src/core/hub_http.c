// HTTP transfers for the Hub client (libcurl): small GETs into memory (listings, dataset files) and
// resumable, verified file downloads. Every transfer retries network errors and 5xx answers with
// exponential backoff; 4xx answers fail at once with a message that says what to do.
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/fileio.h"
#include "core/hub.h"
#include "core/sha256.h"

#define HUB_USER_AGENT "pionrl/0.1.0"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

int hub_url_escape(const char *s, int keep_slash, char *out, size_t n) {
    static const char hex[] = "0123456789ABCDEF";
    size_t k = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                    *p == '-' || *p == '_' || *p == '.' || *p == '~' || (keep_slash && *p == '/');
        if (k + 4 >= n) return -1;
        if (plain) {
            out[k++] = (char)*p;
        } else {
            out[k++] = '%';
            out[k++] = hex[*p >> 4];
            out[k++] = hex[*p & 15];
        }
    }
    out[k] = 0;
    return 0;
}

static void sleep_seconds(double s) {
    if (s <= 0) return;
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static double backoff(const HubOptions *o, int attempt) {
    double w = o->retry_wait;
    for (int i = 0; i < attempt && w < 30; i++) w *= 2;
    return w > 30 ? 30 : w;
}

// Hub error details arrive as headers (X-Error-Code: GatedRepo, RepoNotFound, EntryNotFound,
// RevisionNotFound; X-Error-Message) and/or a JSON body {"error": "..."}.
typedef struct {
    char code[64];
    char message[256];
    long long range_start;  // from Content-Range, -1 when absent
} Headers;

static void header_value(const char *line, size_t len, const char *name, char *out, size_t n) {
    size_t nl = strlen(name);
    if (len <= nl || strncasecmp(line, name, nl) != 0) return;
    const char *v = line + nl;
    size_t vl = len - nl;
    while (vl && (*v == ' ' || *v == '\t')) v++, vl--;
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' ')) vl--;
    if (vl >= n) vl = n - 1;
    memcpy(out, v, vl);
    out[vl] = 0;
}

static size_t header_cb(char *buf, size_t size, size_t nitems, void *ud) {
    Headers *h = ud;
    size_t len = size * nitems;
    // A redirect or a retried request starts a new header block: forget the previous one.
    if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
        h->code[0] = h->message[0] = 0;
        h->range_start = -1;
    }
    header_value(buf, len, "X-Error-Code:", h->code, sizeof h->code);
    header_value(buf, len, "X-Error-Message:", h->message, sizeof h->message);
    char cr[96] = "";
    header_value(buf, len, "Content-Range:", cr, sizeof cr);
    if (cr[0]) {
        long long a = -1;
        if (sscanf(cr, "bytes %lld-", &a) == 1) h->range_start = a;
    }
    return len;
}

static void setup(CURL *c, const HubOptions *o, const char *url, Headers *h) {
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_USERAGENT, HUB_USER_AGENT);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, o->connect_timeout);
    // Abort a stalled transfer (less than 1 byte/s for stall_timeout seconds); it is retried.
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, o->stall_timeout);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, h);
    // Proxies: libcurl reads http_proxy / https_proxy / all_proxy / no_proxy by itself.
    size_t el = strlen(o->endpoint);
    int to_endpoint = el > 0 && !strncmp(url, o->endpoint, el) && (url[el] == '/' || url[el] == 0);
    if (o->token[0] && to_endpoint) {
        // The token goes to the Hub endpoint only (a data set URL on another host never sees it),
        // and through libcurl's Bearer auth rather than a raw header, so libcurl does not send it
        // on to the CDN host a resolve URL redirects to.
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
        curl_easy_setopt(c, CURLOPT_XOAUTH2_BEARER, o->token);
    }
}

// The Hub's JSON error body {"error": "..."} or the first line of a text body.
static void body_message(const char *body, size_t len, char *out, size_t n) {
    out[0] = 0;
    if (!body || !len) return;
    const char *p = strstr(body, "\"error\"");
    if (p) {
        p = strchr(p + 7, '"');
        if (p) {
            p++;
            size_t k = 0;
            while (*p && *p != '"' && k + 1 < n) out[k++] = *p++;
            out[k] = 0;
            return;
        }
    }
    size_t k = 0;
    while (k < len && k + 1 < n && body[k] != '\n' && body[k] != '\r') {
        out[k] = (body[k] >= 32 && body[k] < 127) ? body[k] : '?';
        k++;
    }
    out[k] = 0;
}

static int status_error(Error *err, long code, const char *url, const Headers *h, const char *body,
                        size_t blen) {
    char detail[300];
    if (h->message[0])
        snprintf(detail, sizeof detail, "%s", h->message);
    else
        body_message(body, blen, detail, sizeof detail);
    const char *hint = "";
    if (code == 401)
        hint = "the repository is private or gated, or the token is invalid: set HF_TOKEN to a token with "
               "read access";
    else if (code == 403)
        hint = "access denied: for a gated model accept its conditions on the Hub page with the account of "
               "HF_TOKEN, or use a token with read permission";
    else if (code == 404)
        hint = "not found: check the repository id, the --revision and the file name (a private repository "
               "also answers 404 without HF_TOKEN)";
    else if (code == 416)
        hint = "range not satisfiable";
    else if (code == 429)
        hint = "rate limited by the server; try again later or set HF_TOKEN";
    else if (code >= 500)
        hint = "server error; the mirror or the Hub may be down (HF_ENDPOINT selects the endpoint)";
    char extra[400] = "";
    if (h->code[0] || detail[0])
        snprintf(extra, sizeof extra, " (%s%s%s)", h->code, h->code[0] && detail[0] ? ": " : "", detail);
    return error_set(err, "HTTP %ld for %s: %s%s", code, url, hint, extra);
}

static int retryable_status(long code) { return code >= 500 || code == 408 || code == 429; }

static int retryable_curl(CURLcode r) {
    switch (r) {
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_WRITE_ERROR:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_ABORTED_BY_CALLBACK:
    case CURLE_FILESIZE_EXCEEDED:
    case CURLE_TOO_MANY_REDIRECTS:
    case CURLE_PEER_FAILED_VERIFICATION:
        return 0;
    default:
        return 1;
    }
}

// ---- GET into memory ----

typedef struct {
    char *buf;
    size_t len, cap, max;
    int too_big;
} MemBody;

static size_t mem_cb(char *data, size_t size, size_t nmemb, void *ud) {
    MemBody *m = ud;
    size_t n = size * nmemb;
    if (m->len + n > m->max) {
        m->too_big = 1;
        return 0;
    }
    if (m->len + n + 1 > m->cap) {
        size_t cap = m->cap ? m->cap : 65536;
        while (cap < m->len + n + 1) cap *= 2;
        char *nb = realloc(m->buf, cap);
        if (!nb) return 0;
        m->buf = nb;
        m->cap = cap;
    }
    memcpy(m->buf + m->len, data, n);
    m->len += n;
    m->buf[m->len] = 0;
    return n;
}

int hub_http_get(const HubOptions *o, const char *url, size_t max_bytes, char **body, size_t *len, long *status,
                 Error *err) {
    *body = NULL;
    if (status) *status = 0;
    if (len) *len = 0;
    if (o->offline) return error_set(err, "offline mode: not fetching %s", url);
    pthread_once(&curl_once, curl_init_once);
    CURL *c = curl_easy_init();
    if (!c) return error_set(err, "%s: cannot create a libcurl handle", url);
    int rc = -1;
    for (int attempt = 0;; attempt++) {
        MemBody m = {NULL, 0, 0, max_bytes, 0};
        Headers h = {"", "", -1};
        curl_easy_reset(c);
        setup(c, o, url, &h);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, mem_cb);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &m);
        CURLcode r = curl_easy_perform(c);
        long code = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        if (status) *status = code;
        if (r == CURLE_OK && code >= 200 && code < 300) {
            if (!m.buf) m.buf = calloc(1, 1);
            *body = m.buf;
            if (len) *len = m.len;
            rc = 0;
            break;
        }
        int more = attempt < o->retries;
        if (r == CURLE_OK) {
            if (retryable_status(code) && more) {
                free(m.buf);
                sleep_seconds(backoff(o, attempt));
                continue;
            }
            status_error(err, code, url, &h, m.buf, m.len);
            if (retryable_status(code)) error_prefix(err, "after %d attempts", attempt + 1);
            free(m.buf);
            break;
        }
        free(m.buf);
        if (m.too_big) {
            error_set(err, "%s: response larger than %zu bytes", url, max_bytes);
            break;
        }
        if (retryable_curl(r) && more) {
            sleep_seconds(backoff(o, attempt));
            continue;
        }
        error_set(err, "%s: %s (after %d attempts)", url, curl_easy_strerror(r), attempt + 1);
        break;
    }
    curl_easy_cleanup(c);
    return rc;
}

// ---- resumable file download ----

typedef struct {
    int fd;
    CURL *curl;
    Sha256 sha;
    long long size;        // bytes in the partial file (and hashed into sha)
    long long start;       // size when this attempt began
    int checked;           // response code looked at (first body chunk)
    long code;
    int range_mismatch;    // 206 for a different offset than asked
    int write_errno;
    char errbody[512];
    size_t errlen;
    Headers *h;
    HubProgress *p;
} Fetch;

static int truncate_partial(Fetch *f) {
    if (ftruncate(f->fd, 0) != 0) return -1;
    if (lseek(f->fd, 0, SEEK_SET) < 0) return -1;
    hub_progress_skip(f->p, -f->size);
    f->size = 0;
    sha256_init(&f->sha);
    return 0;
}

static size_t fetch_cb(char *data, size_t sz, size_t nmemb, void *ud) {
    Fetch *f = ud;
    size_t n = sz * nmemb;
    if (!f->checked) {
        f->checked = 1;
        curl_easy_getinfo(f->curl, CURLINFO_RESPONSE_CODE, &f->code);
        if (f->code == 200 && f->size > 0) {
            // The server ignored our Range request and sends the whole file: start over.
            if (truncate_partial(f) != 0) {
                f->write_errno = errno;
                return 0;
            }
        } else if (f->code == 206 && f->h->range_start != f->size) {
            f->range_mismatch = 1;
            return 0;
        }
    }
    if (f->code != 200 && f->code != 206) {
        size_t k = n < sizeof f->errbody - 1 - f->errlen ? n : sizeof f->errbody - 1 - f->errlen;
        memcpy(f->errbody + f->errlen, data, k);
        f->errlen += k;
        f->errbody[f->errlen] = 0;
        return n;
    }
    const char *p = data;
    size_t left = n;
    while (left > 0) {
        ssize_t w = write(f->fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            f->write_errno = errno;
            return 0;
        }
        p += w;
        left -= (size_t)w;
    }
    sha256_update(&f->sha, data, n);
    f->size += (long long)n;
    hub_progress_add(f->p, (long long)n);
    return n;
}

static long long file_size_of(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

static void fsync_dir_of(const char *path) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) return;
    *slash = 0;
    int fd = open(dir[0] ? dir : "/", O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int hub_fetch(const HubOptions *o, const char *url, const char *dest, long long expect_size,
              const char *expect_sha256, HubProgress *p, Error *err) {
    char part[4096];
    if (snprintf(part, sizeof part, "%s.incomplete", dest) >= (int)sizeof part)
        return error_set(err, "%s: path too long", dest);
    int want_sha = expect_sha256 && expect_sha256[0];
    if (o->offline) {
        if (file_exists(dest)) return 0;
        return error_set(err, "offline mode: %s is not downloaded", dest);
    }
    pthread_once(&curl_once, curl_init_once);

    Fetch f;
    memset(&f, 0, sizeof f);
    f.p = p;
    f.fd = open(part, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (f.fd < 0) return error_set(err, "%s: cannot create: %s", part, strerror(errno));
    // Two processes appending to one partial file would interleave their bytes.
    if (flock(f.fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(f.fd);
        if (e == EWOULDBLOCK) return error_set(err, "%s: another download of this file is in progress", dest);
        return error_set(err, "%s: cannot lock: %s", part, strerror(e));
    }
    sha256_init(&f.sha);
    f.size = file_size_of(part);
    if (f.size < 0) f.size = 0;
    if (expect_size >= 0 && f.size > expect_size) truncate_partial(&f);
    if (f.size > 0) {
        // Resume: the bytes already on disk are part of the digest.
        Error e2;
        if (sha256_update_file(&f.sha, part, f.size, &e2) != 0) truncate_partial(&f);
        hub_progress_skip(p, f.size);
    }
    CURL *c = curl_easy_init();
    if (!c) {
        close(f.fd);
        return error_set(err, "%s: cannot create a libcurl handle", url);
    }
    f.curl = c;
    int rc = -1, fresh_retry_used = 0;
    for (int attempt = 0;; attempt++) {
        int more = attempt < o->retries;
        int complete = 0;
        if (expect_size >= 0 && f.size == expect_size) {
            complete = 1;  // nothing left to fetch (an earlier run got every byte)
        } else {
            Headers h = {"", "", -1};
            f.h = &h;
            f.checked = 0;
            f.code = 0;
            f.range_mismatch = 0;
            f.write_errno = 0;
            f.errlen = 0;
            f.errbody[0] = 0;
            f.start = f.size;
            curl_easy_reset(c);
            setup(c, o, url, &h);
            curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fetch_cb);
            curl_easy_setopt(c, CURLOPT_WRITEDATA, &f);
            // Larger receive chunks: fewer callbacks and write() calls per gigabyte.
            curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 512L * 1024L);
            char range[64];
            if (f.size > 0) {
                snprintf(range, sizeof range, "%lld-", f.size);
                curl_easy_setopt(c, CURLOPT_RANGE, range);
            }
            CURLcode r = curl_easy_perform(c);
            long code = 0;
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
            if (f.write_errno) {
                if (f.write_errno == ENOSPC)
                    error_set(err, "%s: disk full after %lld bytes (free some space and run again to resume)",
                              part, f.size);
                else
                    error_set(err, "%s: write failed: %s", part, strerror(f.write_errno));
                break;
            }
            if (f.range_mismatch) {
                // The server answered a different range than asked: distrust the partial file.
                truncate_partial(&f);
                if (more) continue;
                error_set(err, "%s: server returned a different byte range than requested", url);
                break;
            }
            if (r == CURLE_OK && code == 416) {
                // Asked for bytes past the end: the partial file is already whole, or is bad.
                long long total = expect_size;
                if (total < 0 || f.size != total) {
                    truncate_partial(&f);
                    if (more) continue;
                    error_set(err, "%s: server refused the resume range", url);
                    break;
                }
                complete = 1;
            } else if (r == CURLE_OK && (code == 200 || code == 206)) {
                if (expect_size >= 0 && f.size < expect_size) {
                    // Body ended early without the transport noticing (no Content-Length).
                    if (more) {
                        sleep_seconds(backoff(o, attempt));
                        continue;
                    }
                    error_set(err, "%s: transfer interrupted at %lld of %lld bytes (run again to resume)", url,
                              f.size, expect_size);
                    break;
                }
                complete = 1;
            } else if (r == CURLE_OK) {
                if (retryable_status(code) && more) {
                    sleep_seconds(backoff(o, attempt));
                    continue;
                }
                status_error(err, code, url, &h, f.errbody, f.errlen);
                if (retryable_status(code)) error_prefix(err, "after %d attempts", attempt + 1);
                break;
            } else {
                if (retryable_curl(r) && more) {
                    sleep_seconds(backoff(o, attempt));
                    continue;
                }
                error_set(err, "%s: transfer interrupted at %lld bytes: %s (after %d attempts; run again to resume)",
                          url, f.size, curl_easy_strerror(r), attempt + 1);
                break;
            }
        }
        if (complete) {
            if (expect_size >= 0 && f.size != expect_size) {
                truncate_partial(&f);
                if (more) continue;
                error_set(err, "%s: size %lld, expected %lld", url, f.size, expect_size);
                break;
            }
            if (want_sha) {
                uint8_t d[32];
                char hex[65];
                Sha256 copy = f.sha;
                sha256_final(&copy, d);
                sha256_hex(d, hex);
                if (strcasecmp(hex, expect_sha256) != 0) {
                    // A corrupt partial from an earlier run can cause this: retry once from zero.
                    truncate_partial(&f);
                    if (!fresh_retry_used) {
                        fresh_retry_used = 1;
                        continue;
                    }
                    error_set(err, "%s: sha256 mismatch: got %s, expected %s (partial file deleted)", dest, hex,
                              expect_sha256);
                    break;
                }
            }
            if (fsync(f.fd) != 0) {
                error_set(err, "%s: fsync failed: %s", part, strerror(errno));
                break;
            }
            rc = 0;
            break;
        }
    }
    curl_easy_cleanup(c);
    if (close(f.fd) != 0 && rc == 0) rc = error_set(err, "%s: close failed: %s", part, strerror(errno));
    if (rc == 0) {
        if (rename(part, dest) != 0) return error_set(err, "%s: rename failed: %s", dest, strerror(errno));
        fsync_dir_of(dest);
    } else if (f.size == 0) {
        unlink(part);  // nothing worth resuming
    }
    return rc;
}
