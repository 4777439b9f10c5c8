// Hub client: options from the environment, repository listings, file selection, and the
// download of a whole model repository (plain directory or Hugging Face cache layout).
#include "core/hub.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "core/fileio.h"
#include "core/json.h"
#include "core/sha256.h"

#define MANIFEST_NAME ".pionrl-download.json"

static void copy_str(char *out, size_t n, const char *s) { snprintf(out, n, "%s", s ? s : ""); }

static int env_true(const char *name) {
    const char *v = getenv(name);
    return v && (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on"));
}

static void read_token_file(const char *path, char *out, size_t n) {
    char *t = file_read_all(path, NULL, NULL);
    if (!t) return;
    size_t k = strlen(t);
    while (k && isspace((unsigned char)t[k - 1])) t[--k] = 0;
    copy_str(out, n, t);
    free(t);
}

void hub_options_default(HubOptions *o) {
    memset(o, 0, sizeof *o);
    const char *ep = getenv("HF_ENDPOINT");
    copy_str(o->endpoint, sizeof o->endpoint, ep && ep[0] ? ep : "https://huggingface.co");
    size_t k = strlen(o->endpoint);
    while (k > 0 && o->endpoint[k - 1] == '/') o->endpoint[--k] = 0;

    const char *tok = getenv("HF_TOKEN");
    if (!tok || !tok[0]) tok = getenv("HUGGING_FACE_HUB_TOKEN");
    const char *home = getenv("HOME");
    const char *hf_home = getenv("HF_HOME");
    char hf_home_buf[1000];
    if (hf_home && hf_home[0]) {
        copy_str(hf_home_buf, sizeof hf_home_buf, hf_home);
    } else {
        const char *xdg = getenv("XDG_CACHE_HOME");
        if (xdg && xdg[0])
            snprintf(hf_home_buf, sizeof hf_home_buf, "%s/huggingface", xdg);
        else
            snprintf(hf_home_buf, sizeof hf_home_buf, "%s/.cache/huggingface", home ? home : ".");
    }
    if (tok && tok[0]) {
        copy_str(o->token, sizeof o->token, tok);
    } else {
        // The file `huggingface-cli login` writes.
        const char *tp = getenv("HF_TOKEN_PATH");
        char path[1100];
        if (tp && tp[0])
            copy_str(path, sizeof path, tp);
        else
            snprintf(path, sizeof path, "%s/token", hf_home_buf);
        read_token_file(path, o->token, sizeof o->token);
    }
    const char *cache = getenv("HF_HUB_CACHE");
    if (!cache || !cache[0]) cache = getenv("HUGGINGFACE_HUB_CACHE");
    if (cache && cache[0])
        copy_str(o->cache_dir, sizeof o->cache_dir, cache);
    else
        snprintf(o->cache_dir, sizeof o->cache_dir, "%s/hub", hf_home_buf);

    o->parallel = 4;
    o->retries = 5;
    o->retry_wait = 1.0;
    o->connect_timeout = 30;
    o->stall_timeout = 60;
    o->offline = env_true("HF_HUB_OFFLINE");
    o->log = stderr;
    o->progress = isatty(fileno(stderr)) ? 2 : 1;
}

// ---- names ----

static int name_char(char c) { return isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-'; }

int hub_valid_repo_id(const char *id) {
    if (!id) return 0;
    size_t n = strlen(id);
    if (n == 0 || n > 200 || strstr(id, "..") || strstr(id, "--")) return 0;
    int slashes = 0;
    const char *seg = id;
    for (const char *p = id;; p++) {
        if (*p == '/' || *p == 0) {
            if (p == seg || *seg == '.' || *seg == '-' || p[-1] == '.' || p[-1] == '-') return 0;
            if (*p == 0) break;
            if (++slashes > 1) return 0;
            seg = p + 1;
        } else if (!name_char(*p)) {
            return 0;
        }
    }
    return 1;
}

int hub_valid_repo_path(const char *path) {
    if (!path || !path[0] || path[0] == '/' || strlen(path) >= 400) return 0;
    const char *seg = path;
    for (const char *p = path;; p++) {
        if (*p == '/' || *p == 0) {
            size_t len = (size_t)(p - seg);
            if (len == 0 || (len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.')) return 0;
            // ".incomplete" is how this client marks partial data: never a real file name.
            if (*p == 0 && len >= 11 && !strncmp(p - 11, ".incomplete", 11)) return 0;
            if (*p == 0) break;
            seg = p + 1;
        } else if ((unsigned char)*p < 32 || *p == '\\' || *p == 127) {
            return 0;
        }
    }
    return 1;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

int hub_is_model_file(const char *path) {
    static const char *const names[] = {
        "config.json",      "generation_config.json",  "tokenizer.json", "tokenizer_config.json",
        "vocab.json",       "merges.txt",              "tokenizer.model", "special_tokens_map.json",
        "added_tokens.json", "chat_template.jinja",    "model.safetensors.index.json", NULL};
    if (strchr(path, '/')) return 0;  // subfolders hold other formats (onnx/, original/, ...)
    for (int i = 0; names[i]; i++)
        if (!strcmp(path, names[i])) return 1;
    return ends_with(path, ".safetensors");
}

static int is_hex(const char *s, size_t min, size_t max) {
    size_t n = strlen(s);
    if (n < min || n > max) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i])) return 0;
    return 1;
}

// ---- listing ----

void hub_repo_free(HubRepo *r) {
    if (!r) return;
    free(r->files);
    r->files = NULL;
    r->n = 0;
}

static int get_size(const cJSON *obj, const char *key, long long *out, const char *where, Error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 9.0e15)
        return error_set(err, "%s: '%s' is not a byte count", where, key);
    *out = (long long)v->valuedouble;
    return 0;
}

static const char *get_str(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int parse_entry(const cJSON *e, const char *path_key, const char *blob_key, HubFile *f, int idx, Error *err) {
    char where[64];
    snprintf(where, sizeof where, "listing entry %d", idx);
    if (!cJSON_IsObject(e)) return error_set(err, "%s: expected an object", where);
    const char *path = get_str(e, path_key);
    if (!path) return error_set(err, "%s: missing '%s'", where, path_key);
    if (!hub_valid_repo_path(path)) return error_set(err, "%s: unsafe or invalid file path '%s'", where, path);
    memset(f, 0, sizeof *f);
    copy_str(f->path, sizeof f->path, path);
    f->size = -1;
    if (get_size(e, "size", &f->size, where, err) != 0) return -1;
    const char *blob = get_str(e, blob_key);
    if (blob) {
        if (!is_hex(blob, 40, 64)) return error_set(err, "%s (%s): '%s' is not a hex id", where, path, blob_key);
        copy_str(f->blob_id, sizeof f->blob_id, blob);
    }
    const cJSON *lfs = cJSON_GetObjectItemCaseSensitive(e, "lfs");
    if (lfs && !cJSON_IsNull(lfs)) {
        if (!cJSON_IsObject(lfs)) return error_set(err, "%s (%s): 'lfs' is not an object", where, path);
        const char *sha = get_str(lfs, "sha256");
        if (!sha) sha = get_str(lfs, "oid");
        if (sha && !strncmp(sha, "sha256:", 7)) sha += 7;
        if (!sha || !is_hex(sha, 64, 64))
            return error_set(err, "%s (%s): lfs entry without a valid sha256", where, path);
        for (int i = 0; i < 64; i++) f->sha256[i] = (char)tolower((unsigned char)sha[i]);
        f->sha256[64] = 0;
        if (get_size(lfs, "size", &f->size, where, err) != 0) return -1;
    }
    return 0;
}

int hub_parse_listing(const char *text, HubRepo *out, Error *err) {
    memset(out, 0, sizeof *out);
    cJSON *root = json_parse_text(text, "Hub listing", err);
    if (!root) return -1;
    const cJSON *arr = NULL;
    const char *path_key, *blob_key;
    if (cJSON_IsObject(root)) {
        arr = cJSON_GetObjectItemCaseSensitive(root, "siblings");
        if (!cJSON_IsArray(arr)) {
            cJSON_Delete(root);
            return error_set(err, "Hub listing: no 'siblings' array (not a repository description)");
        }
        const char *sha = get_str(root, "sha");
        if (sha) {
            if (!is_hex(sha, 40, 64)) {
                cJSON_Delete(root);
                return error_set(err, "Hub listing: 'sha' is not a commit id");
            }
            copy_str(out->commit, sizeof out->commit, sha);
        }
        path_key = "rfilename";
        blob_key = "blobId";
    } else if (cJSON_IsArray(root)) {
        arr = root;
        path_key = "path";
        blob_key = "oid";
    } else {
        cJSON_Delete(root);
        return error_set(err, "Hub listing: expected an object or an array");
    }
    int cap = cJSON_GetArraySize(arr);
    out->files = calloc(cap > 0 ? (size_t)cap : 1, sizeof(HubFile));
    if (!out->files) {
        cJSON_Delete(root);
        return error_set(err, "Hub listing: out of memory");
    }
    int idx = 0;
    for (const cJSON *e = arr->child; e; e = e->next, idx++) {
        if (arr == root) {
            const char *type = get_str(e, "type");
            if (type && strcmp(type, "file") != 0) continue;  // directories of the tree listing
        }
        if (parse_entry(e, path_key, blob_key, &out->files[out->n], idx, err) != 0) {
            hub_repo_free(out);
            cJSON_Delete(root);
            return -1;
        }
        for (int j = 0; j < out->n; j++)
            if (!strcmp(out->files[j].path, out->files[out->n].path)) {
                error_set(err, "Hub listing: file '%s' listed twice", out->files[j].path);
                hub_repo_free(out);
                cJSON_Delete(root);
                return -1;
            }
        out->n++;
    }
    cJSON_Delete(root);
    return 0;
}

int hub_list(const HubOptions *o, const char *repo_id, const char *revision, HubRepo *out, Error *err) {
    memset(out, 0, sizeof *out);
    if (!hub_valid_repo_id(repo_id)) return error_set(err, "invalid repository id '%s'", repo_id);
    char rev[768], url[2048];
    if (hub_url_escape(revision, 0, rev, sizeof rev) != 0) return error_set(err, "revision too long");
    snprintf(url, sizeof url, "%s/api/models/%s/revision/%s?blobs=true", o->endpoint, repo_id, rev);
    char *body = NULL;
    long status = 0;
    const size_t max = 64u << 20;
    int rc = hub_http_get(o, url, max, &body, NULL, &status, err);
    if (rc == 0) {
        rc = hub_parse_listing(body, out, err);
        free(body);
        if (rc != 0) error_prefix(err, "%s", url);
    }
    if (rc != 0 && (status == 401 || status == 403)) return -1;
    if (rc != 0) {
        // Some mirrors serve only the tree endpoint; a genuine 404 fails there too and the first
        // error is reported.
        Error first = *err;
        snprintf(url, sizeof url, "%s/api/models/%s/tree/%s?recursive=1", o->endpoint, repo_id, rev);
        body = NULL;
        if (hub_http_get(o, url, max, &body, NULL, &status, err) != 0) {
            *err = first;
            return -1;
        }
        rc = hub_parse_listing(body, out, err);
        free(body);
        if (rc != 0) return error_prefix(err, "%s", url);
    }
    copy_str(out->repo_id, sizeof out->repo_id, repo_id);
    copy_str(out->revision, sizeof out->revision, revision);
    return 0;
}

// ---- layout helpers ----

int hub_cache_repo_dir(const HubOptions *o, const char *repo_id, char *out, size_t n, Error *err) {
    if (!hub_valid_repo_id(repo_id)) return error_set(err, "invalid repository id '%s'", repo_id);
    char flat[512];
    size_t k = 0;
    for (const char *p = repo_id; *p && k + 3 < sizeof flat; p++) {
        if (*p == '/') {
            flat[k++] = '-';
            flat[k++] = '-';
        } else {
            flat[k++] = *p;
        }
    }
    flat[k] = 0;
    int w = snprintf(out, n, "%s/models--%s", o->cache_dir, flat);
    if (w < 0 || (size_t)w >= n) return error_set(err, "cache path too long");
    return 0;
}

int hub_check_space(const char *dir, long long need, Error *err) {
    char probe[4096];
    copy_str(probe, sizeof probe, dir);
    // The directory may not exist yet: ask about its nearest existing parent.
    while (!dir_exists(probe)) {
        char *slash = strrchr(probe, '/');
        if (!slash) {
            copy_str(probe, sizeof probe, ".");
            break;
        }
        if (slash == probe) {
            probe[1] = 0;
            break;
        }
        *slash = 0;
    }
    struct statvfs st;
    if (statvfs(probe, &st) != 0) return 0;  // cannot tell: let the writes find out
    long long avail = (long long)st.f_bavail * (long long)st.f_frsize;
    if (need > avail) {
        char a[32], b[32];
        hub_format_bytes(need, a, sizeof a);
        hub_format_bytes(avail, b, sizeof b);
        return error_set(err, "not enough disk space in %s: need %s more, %s free", dir, a, b);
    }
    return 0;
}

static int parent_dirs(const char *file, Error *err) {
    char d[4096];
    copy_str(d, sizeof d, file);
    char *slash = strrchr(d, '/');
    if (!slash || slash == d) return 0;
    *slash = 0;
    return dir_exists(d) ? 0 : dir_create(d, err);
}

static long long size_of(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) ? (long long)st.st_size : -1;
}

// ---- repository download ----

typedef struct {
    const HubOptions *o;
    const HubRepo *repo;
    const int *sel;                // indices into repo->files
    int nsel;
    char (*dest)[4096];            // where each selected file's bytes go
    char (*link)[4096];            // cache layout: snapshot symlink ("" in the plain layout)
    char (*target)[1024];          // cache layout: symlink target
    int *dup_of;                   // cache layout: index of an earlier file with the same blob, or -1
    HubProgress *prog;
    pthread_mutex_t mu;
    int next, failed;
    Error first;
} Job;

// An existing file counts as done when its size (and, with verify_existing, its sha256) matches.
static int already_have(const HubOptions *o, const HubFile *f, const char *dest) {
    long long s = size_of(dest);
    if (s < 0 || (f->size >= 0 && s != f->size)) return 0;
    if (o->verify_existing && f->sha256[0]) {
        char hex[65];
        Error e;
        if (sha256_file_hex(dest, hex, &e) != 0 || strcmp(hex, f->sha256) != 0) return 0;
    }
    return 1;
}

static int make_link(const char *link, const char *target, Error *err) {
    if (parent_dirs(link, err) != 0) return -1;
    char cur[1024];
    ssize_t k = readlink(link, cur, sizeof cur - 1);
    if (k >= 0) {
        cur[k] = 0;
        if (!strcmp(cur, target)) return 0;
    }
    unlink(link);
    if (symlink(target, link) != 0) return error_set(err, "%s: cannot create symlink: %s", link, strerror(errno));
    return 0;
}

static int fetch_one(Job *j, int k, Error *err) {
    const HubOptions *o = j->o;
    const HubFile *f = &j->repo->files[j->sel[k]];
    const char *dest = j->dest[k];
    if (parent_dirs(dest, err) != 0) return -1;
    if (already_have(o, f, dest)) {
        hub_progress_skip(j->prog, f->size > 0 ? f->size : 0);
        hub_progress_file_done(j->prog, f->path, size_of(dest), "have");
    } else {
        if (size_of(dest) >= 0) unlink(dest);  // wrong size or hash: fetch again
        char rev[768], path[1536], url[4096];
        const char *r = j->repo->commit[0] ? j->repo->commit : j->repo->revision;
        if (hub_url_escape(r, 0, rev, sizeof rev) != 0 || hub_url_escape(f->path, 1, path, sizeof path) != 0)
            return error_set(err, "%s: name too long", f->path);
        snprintf(url, sizeof url, "%s/%s/resolve/%s/%s", o->endpoint, j->repo->repo_id, rev, path);
        if (hub_fetch(o, url, dest, f->size, f->sha256, j->prog, err) != 0) return error_prefix(err, "%s", f->path);
        hub_progress_file_done(j->prog, f->path, size_of(dest), "downloaded");
    }
    if (j->link[k][0] && make_link(j->link[k], j->target[k], err) != 0) return -1;
    return 0;
}

static void *worker(void *arg) {
    Job *j = arg;
    for (;;) {
        pthread_mutex_lock(&j->mu);
        int k = j->failed ? j->nsel : j->next++;
        pthread_mutex_unlock(&j->mu);
        if (k >= j->nsel) break;
        if (j->dup_of[k] >= 0) continue;  // same blob as an earlier file: linked after the join
        Error e;
        if (fetch_one(j, k, &e) != 0) {
            pthread_mutex_lock(&j->mu);
            if (!j->failed) j->first = e;
            j->failed++;
            pthread_mutex_unlock(&j->mu);
        }
    }
    return NULL;
}

static int select_files(const HubRepo *repo, const HubSelect *sel, int *out) {
    int n = 0;
    for (int i = 0; i < repo->n; i++) {
        const char *p = repo->files[i].path;
        int take;
        if (sel && sel->all)
            take = 1;
        else if (sel && sel->include) {
            take = 0;
            for (int k = 0; sel->include[k]; k++)
                if (fnmatch(sel->include[k], p, 0) == 0) take = 1;
        } else {
            take = hub_is_model_file(p);
        }
        if (take) out[n++] = i;
    }
    return n;
}

static int write_manifest(const char *dir, const HubRepo *repo, const int *sel, int nsel, Error *err) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "repo_id", repo->repo_id);
    cJSON_AddStringToObject(root, "revision", repo->revision);
    cJSON_AddStringToObject(root, "commit", repo->commit);
    cJSON *files = cJSON_AddArrayToObject(root, "files");
    for (int k = 0; k < nsel; k++) {
        const HubFile *f = &repo->files[sel[k]];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "path", f->path);
        cJSON_AddNumberToObject(e, "size", (double)f->size);
        cJSON_AddStringToObject(e, "sha256", f->sha256);
        cJSON_AddItemToArray(files, e);
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return error_set(err, "manifest: out of memory");
    char path[4096];
    if (path_join(path, sizeof path, dir, MANIFEST_NAME) != 0) {
        free(text);
        return error_set(err, "%s: path too long", dir);
    }
    int rc = file_write_atomic(path, text, strlen(text), err);
    free(text);
    return rc;
}

// --offline with --to DIR: the manifest of an earlier complete download names every file.
static int offline_plain(const HubOptions *o, const char *repo_id, const char *dir, Error *err) {
    char path[4096];
    if (path_join(path, sizeof path, dir, MANIFEST_NAME) != 0) return error_set(err, "%s: path too long", dir);
    if (!file_exists(path))
        return error_set(err, "offline: %s holds no completed download (no %s); run without --offline first", dir,
                         MANIFEST_NAME);
    cJSON *root = json_parse_file(path, err);
    if (!root) return -1;
    int rc = 0;
    const char *id = get_str(root, "repo_id");
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(root, "files");
    if (!id || strcmp(id, repo_id) != 0) {
        rc = error_set(err, "offline: %s holds '%s', not '%s'", dir, id ? id : "?", repo_id);
    } else if (!cJSON_IsArray(files)) {
        rc = error_set(err, "%s: no 'files' array", path);
    } else {
        for (const cJSON *e = files->child; e && rc == 0; e = e->next) {
            HubFile f;
            memset(&f, 0, sizeof f);
            const char *p = get_str(e, "path");
            const char *sha = get_str(e, "sha256");
            f.size = -1;
            if (!p || !hub_valid_repo_path(p) || get_size(e, "size", &f.size, path, err) != 0) {
                rc = error_set(err, "%s: bad file entry", path);
                break;
            }
            copy_str(f.path, sizeof f.path, p);
            copy_str(f.sha256, sizeof f.sha256, sha);
            char fp[4096];
            if (path_join(fp, sizeof fp, dir, p) != 0 || !already_have(o, &f, fp))
                rc = error_set(err, "offline: %s is missing or incomplete in %s; run without --offline to fetch it",
                               p, dir);
        }
    }
    cJSON_Delete(root);
    return rc;
}

// --offline in the cache layout: refs/REV -> commit -> snapshots/COMMIT, which must hold
// config.json and every shard its safetensors index names (files huggingface_hub put there count).
static int offline_cache(const HubOptions *o, const char *repo_id, const char *revision, const HubSelect *sel,
                         char *out_dir, size_t n, Error *err) {
    char repo_dir[2048], refp[3072], snap[4096];
    if (hub_cache_repo_dir(o, repo_id, repo_dir, sizeof repo_dir, err) != 0) return -1;
    if (!dir_exists(repo_dir))
        return error_set(err, "offline: %s is not in the cache %s; run without --offline first", repo_id,
                         o->cache_dir);
    char commit[256];
    copy_str(commit, sizeof commit, revision);
    snprintf(refp, sizeof refp, "%s/refs/%s", repo_dir, revision);
    if (file_exists(refp)) {
        char *t = file_read_all(refp, NULL, err);
        if (!t) return -1;
        size_t k = strlen(t);
        while (k && isspace((unsigned char)t[k - 1])) t[--k] = 0;
        copy_str(commit, sizeof commit, t);
        free(t);
        if (!is_hex(commit, 40, 64)) return error_set(err, "%s: not a commit id", refp);
    }
    snprintf(snap, sizeof snap, "%s/snapshots/%s", repo_dir, commit);
    if (!dir_exists(snap))
        return error_set(err, "offline: revision '%s' of %s is not in the cache; run without --offline first",
                         revision, repo_id);
    int default_sel = !sel || (!sel->all && !sel->include);
    char p[4200];
    snprintf(p, sizeof p, "%s/config.json", snap);
    if (default_sel && !file_exists(p))
        return error_set(err, "offline: %s has no config.json (incomplete download); run without --offline", snap);
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", snap);
    if (default_sel && file_exists(p)) {
        cJSON *idx = json_parse_file(p, err);
        if (!idx) return -1;
        const cJSON *wm = cJSON_GetObjectItemCaseSensitive(idx, "weight_map");
        int rc = 0;
        for (const cJSON *e = wm ? wm->child : NULL; e && rc == 0; e = e->next) {
            char shard[4600];
            if (!cJSON_IsString(e) || !hub_valid_repo_path(e->valuestring)) {
                rc = error_set(err, "%s: bad weight_map entry", p);
                break;
            }
            snprintf(shard, sizeof shard, "%s/%s", snap, e->valuestring);
            if (!file_exists(shard))
                rc = error_set(err, "offline: shard %s is missing from %s; run without --offline", e->valuestring,
                               snap);
        }
        cJSON_Delete(idx);
        if (rc != 0) return -1;
    }
    if ((size_t)snprintf(out_dir, n, "%s", snap) >= n) return error_set(err, "path too long");
    return 0;
}

int hub_download_repo(const HubOptions *o, const char *repo_id, const char *revision, const char *to_dir,
                      const HubSelect *sel, char *out_dir, size_t n, Error *err) {
    if (!hub_valid_repo_id(repo_id))
        return error_set(err, "invalid repository id '%s' (expected ORG/NAME with letters, digits, '.', '_', '-')",
                         repo_id);
    if (!revision || !revision[0]) revision = "main";
    if (strlen(revision) > 200 || strstr(revision, "..") || revision[0] == '/')
        return error_set(err, "invalid revision '%s'", revision);
    for (const char *p = revision; *p; p++)
        if ((unsigned char)*p < 33 || *p == '\\') return error_set(err, "invalid revision '%s'", revision);
    if (o->offline) {
        if (to_dir) {
            if (offline_plain(o, repo_id, to_dir, err) != 0) return -1;
            if ((size_t)snprintf(out_dir, n, "%s", to_dir) >= n) return error_set(err, "path too long");
            return 0;
        }
        return offline_cache(o, repo_id, revision, sel, out_dir, n, err);
    }

    HubRepo repo;
    if (hub_list(o, repo_id, revision, &repo, err) != 0) return error_prefix(err, "listing %s@%s", repo_id, revision);
    int rc = -1;
    int *selidx = calloc(repo.n > 0 ? (size_t)repo.n : 1, sizeof(int));
    Job j;
    memset(&j, 0, sizeof j);
    char repo_dir[2048] = "", snap[3072] = "", base[4096];
    if (!selidx) {
        error_set(err, "out of memory");
        goto done;
    }
    int nsel = select_files(&repo, sel, selidx);
    if (nsel == 0) {
        error_set(err, "%s@%s: no file matches the selection (%d files in the repository)", repo_id, revision, repo.n);
        goto done;
    }
    int have_st = 0;
    for (int k = 0; k < nsel; k++) have_st |= ends_with(repo.files[selidx[k]].path, ".safetensors");
    if (!have_st && (!sel || (!sel->all && !sel->include)) && o->log)
        fprintf(o->log, "warning: %s has no .safetensors weights (pionrl loads safetensors only)\n", repo_id);

    if (to_dir) {
        copy_str(base, sizeof base, to_dir);
    } else {
        if (hub_cache_repo_dir(o, repo_id, repo_dir, sizeof repo_dir, err) != 0) goto done;
        // A listing without a commit id (tree endpoint) names the snapshot after the revision.
        snprintf(snap, sizeof snap, "%s/snapshots/%s", repo_dir, repo.commit[0] ? repo.commit : revision);
        copy_str(base, sizeof base, snap);
    }
    if (dir_create(base, err) != 0) goto done;

    j.o = o;
    j.repo = &repo;
    j.sel = selidx;
    j.nsel = nsel;
    j.dest = calloc((size_t)nsel, sizeof *j.dest);
    j.link = calloc((size_t)nsel, sizeof *j.link);
    j.target = calloc((size_t)nsel, sizeof *j.target);
    j.dup_of = calloc((size_t)nsel, sizeof *j.dup_of);
    pthread_mutex_init(&j.mu, NULL);
    if (!j.dest || !j.link || !j.target || !j.dup_of) {
        error_set(err, "out of memory");
        goto done;
    }
    long long total = 0, need = 0;
    for (int k = 0; k < nsel; k++) {
        const HubFile *f = &repo.files[selidx[k]];
        const char *etag = f->sha256[0] ? f->sha256 : f->blob_id;
        if (!to_dir && etag[0]) {
            // Cache layout: bytes in blobs/ETAG, the snapshot holds a relative symlink to it.
            snprintf(j.dest[k], sizeof j.dest[k], "%s/blobs/%s", repo_dir, etag);
            snprintf(j.link[k], sizeof j.link[k], "%s/%s", snap, f->path);
            char up[600] = "../../";
            for (const char *p = f->path; *p; p++)
                if (*p == '/') strncat(up, "../", sizeof up - strlen(up) - 1);
            snprintf(j.target[k], sizeof j.target[k], "%sblobs/%s", up, etag);
        } else if (path_join(j.dest[k], sizeof j.dest[k], base, f->path) != 0) {
            error_set(err, "%s: path too long", f->path);
            goto done;
        }
        // Two paths with identical content share a blob: fetch it once (two writers to one
        // .incomplete file would corrupt it).
        j.dup_of[k] = -1;
        for (int q = 0; q < k && j.link[k][0]; q++)
            if (!strcmp(j.dest[q], j.dest[k])) j.dup_of[k] = q;
        if (f->size > 0 && j.dup_of[k] < 0) {
            total += f->size;
            long long have = size_of(j.dest[k]);
            if (have != f->size) {
                char part[4200];
                snprintf(part, sizeof part, "%s.incomplete", j.dest[k]);
                long long ps = size_of(part);
                need += f->size - (ps > 0 && ps <= f->size ? ps : 0);
            }
        }
    }
    if (!to_dir) {
        char blobs[2100];
        snprintf(blobs, sizeof blobs, "%s/blobs", repo_dir);
        if (dir_create(blobs, err) != 0) goto done;
    }
    if (hub_check_space(to_dir ? base : repo_dir, need, err) != 0) goto done;

    j.prog = hub_progress_new(o, total, nsel);
    if (o->log && o->progress) {
        char t[32];
        hub_format_bytes(total, t, sizeof t);
        fprintf(o->log, "%s@%s (%s): %d files, %s -> %s\n", repo_id, revision,
                repo.commit[0] ? repo.commit : "commit unknown", nsel, t, base);
    }
    int nthreads = o->parallel < 1 ? 1 : o->parallel > 16 ? 16 : o->parallel;
    if (nthreads > nsel) nthreads = nsel;
    pthread_t th[16];
    int started = 0;
    for (int t = 0; t < nthreads; t++)
        if (pthread_create(&th[t], NULL, worker, &j) == 0) started++;
    if (started == 0) worker(&j);
    for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
    for (int k = 0; k < nsel && !j.failed; k++) {
        if (j.dup_of[k] < 0) continue;
        Error e;
        if (make_link(j.link[k], j.target[k], &e) != 0) {
            j.first = e;
            j.failed++;
        } else {
            hub_progress_file_done(j.prog, repo.files[selidx[k]].path, size_of(j.dest[k]), "have");
        }
    }
    hub_progress_finish(j.prog);
    if (j.failed) {
        *err = j.first;
        if (j.failed > 1) error_prefix(err, "%d files failed; first", j.failed);
        goto done;
    }
    if (to_dir) {
        if (write_manifest(base, &repo, selidx, nsel, err) != 0) goto done;
    } else if (repo.commit[0] && strcmp(revision, repo.commit) != 0) {
        char refp[2400];
        snprintf(refp, sizeof refp, "%s/refs/%s", repo_dir, revision);
        if (parent_dirs(refp, err) != 0 || file_write_atomic(refp, repo.commit, strlen(repo.commit), err) != 0)
            goto done;
    }
    if ((size_t)snprintf(out_dir, n, "%s", base) >= n) {
        error_set(err, "path too long");
        goto done;
    }
    rc = 0;
done:
    if (j.dest) pthread_mutex_destroy(&j.mu);
    hub_progress_free(j.prog);
    free(j.dest);
    free(j.link);
    free(j.target);
    free(j.dup_of);
    free(selidx);
    hub_repo_free(&repo);
    return rc;
}
