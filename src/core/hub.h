// Hugging Face Hub client: list a repository's files, download the ones a model needs with
// resumable, verified, parallel transfers (libcurl), into a plain directory or into the Hugging
// Face cache layout (models--ORG--NAME/{blobs,snapshots/COMMIT,refs}) so huggingface_hub and
// pionrl share one copy. A file is only ever visible under its final name after its size and
// sha256 (when the Hub gives one) have been checked: partial data lives in NAME.incomplete.
#ifndef PIONRL_HUB_H
#define PIONRL_HUB_H

#include <stdio.h>

#include "core/error.h"

typedef struct {
    char endpoint[512];      // HF_ENDPOINT, default https://huggingface.co (no trailing slash)
    char token[512];         // HF_TOKEN (or HUGGING_FACE_HUB_TOKEN); empty: anonymous
    char cache_dir[1024];    // HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub
    int parallel;            // concurrent file transfers (default 4)
    int retries;             // extra attempts per transfer after a network error / 5xx (default 5)
    double retry_wait;       // seconds before the first retry, doubled each time (default 1, cap 30)
    long connect_timeout;    // seconds (default 30)
    long stall_timeout;      // abort (and retry) a transfer that received nothing for this long (60)
    int offline;             // 1: never touch the network (--offline or HF_HUB_OFFLINE=1)
    int verify_existing;     // 1: re-hash files already present instead of trusting their size
    int progress;            // 0 quiet, 1 plain lines, 2 TTY progress bar
    FILE *log;               // progress and notes (stderr by default); NULL: silent
} HubOptions;

// Defaults, then the environment (HF_ENDPOINT, HF_TOKEN, HF_HUB_CACHE, HF_HOME, HF_HUB_OFFLINE).
// progress is 2 when log is a terminal, else 1.
void hub_options_default(HubOptions *o);

typedef struct {
    char path[512];        // path inside the repository ("model-00001-of-00002.safetensors")
    long long size;        // bytes, -1 when the listing did not say
    char sha256[65];       // LFS sha256 (lower-case hex), "" for non-LFS files
    char blob_id[65];      // git blob id of a non-LFS file, "" when unknown
} HubFile;

typedef struct {
    char repo_id[256];
    char revision[256];
    char commit[65];       // commit the revision resolved to ("" when the listing lacked it)
    HubFile *files;
    int n;
} HubRepo;

// Parses a listing in either shape the Hub serves: the object of /api/models/ID/revision/REV
// (?blobs=true: "sha", "siblings":[{"rfilename","size","blobId","lfs":{"sha256"|"oid","size"}}])
// or the array of /api/models/ID/tree/REV?recursive=1 ([{"type","path","size","oid","lfs"}]).
// Rejects file paths that could escape the target directory.
int hub_parse_listing(const char *text, HubRepo *out, Error *err);
// GETs the listing (revision endpoint; the tree endpoint when that one is not served).
int hub_list(const HubOptions *o, const char *repo_id, const char *revision, HubRepo *out, Error *err);
void hub_repo_free(HubRepo *r);

// Repository ids: "name" or "org/name" with [A-Za-z0-9._-]; no "..", no leading '.' or '-'.
int hub_valid_repo_id(const char *id);
// Repository file paths: relative, no "..", ".", empty segments, backslashes or control chars.
int hub_valid_repo_path(const char *path);
// The default selection for a model: config.json, generation_config.json, tokenizer files,
// *.safetensors and the safetensors index.
int hub_is_model_file(const char *path);

// {cache_dir}/models--ORG--NAME
int hub_cache_repo_dir(const HubOptions *o, const char *repo_id, char *out, size_t n, Error *err);
// Fails with a clear message when the filesystem holding dir has fewer than `need` free bytes.
int hub_check_space(const char *dir, long long need, Error *err);

typedef struct {
    const char *const *include;  // NULL-terminated fnmatch patterns; NULL: hub_is_model_file
    int all;                     // 1: every file in the repository
} HubSelect;

// Downloads the selected files of repo_id@revision. to_dir non-NULL: plain layout DIR/PATH (plus
// DIR/.pionrl-download.json, the manifest --offline checks); NULL: the Hugging Face cache layout.
// On success out_dir (size n) holds the directory whose files a model loader reads.
// offline: no network; resolves the cache (refs/REV -> snapshot) or the manifest instead.
int hub_download_repo(const HubOptions *o, const char *repo_id, const char *revision, const char *to_dir,
                      const HubSelect *sel, char *out_dir, size_t n, Error *err);

// ---- transfers (hub_http.c) ----

typedef struct HubProgress HubProgress;
// Progress over a set of files: bytes, rate, ETA on a TTY; a line per finished file otherwise.
HubProgress *hub_progress_new(const HubOptions *o, long long total_bytes, int total_files);
void hub_progress_add(HubProgress *p, long long bytes);         // bytes that arrived now
void hub_progress_skip(HubProgress *p, long long bytes);        // bytes already on disk (no rate)
void hub_progress_file_done(HubProgress *p, const char *name, long long size, const char *how);
void hub_progress_note(HubProgress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void hub_progress_finish(HubProgress *p);
void hub_progress_free(HubProgress *p);

// GET url into a malloc'd NUL-terminated buffer (at most max_bytes). Retries network errors and
// 5xx; *status (may be NULL) gets the final HTTP status, 0 when none arrived. 401/403/404 and
// other 4xx fail at once with a message that says what to do.
int hub_http_get(const HubOptions *o, const char *url, size_t max_bytes, char **body, size_t *len, long *status,
                 Error *err);

// Downloads url to dest: data goes to dest.incomplete, resumed with an HTTP Range request when
// that file exists; verified against expect_size (-1: unknown) and expect_sha256 (NULL/"": none);
// then fsync'd and renamed to dest. A sha256 mismatch deletes the partial file. p may be NULL.
int hub_fetch(const HubOptions *o, const char *url, const char *dest, long long expect_size,
              const char *expect_sha256, HubProgress *p, Error *err);

// Percent-encodes s into out (size n); '/' kept when keep_slash.
int hub_url_escape(const char *s, int keep_slash, char *out, size_t n);
// Human-readable byte count ("1.23 GB") into out.
void hub_format_bytes(long long bytes, char *out, size_t n);

#endif
