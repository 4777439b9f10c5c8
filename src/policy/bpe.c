// Byte-level BPE: merge-rank hash table, word cache, PCRE2 pre-tokenizer.
// The merge loop follows Hugging Face tokenizers' BPE::merge_word: repeatedly merge the pair with
// the lowest rank, leftmost first, until no adjacent pair has a merge.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "policy/bpe.h"

#include <limits.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BPE_MAX_REGEX 4
// Word cache: direct-mapped slots, each holds a piece of up to CACHE_KEY bytes that encodes to at
// most CACHE_IDS ids; longer pieces are rare and simply not cached.
#define CACHE_SLOTS (1 << 16)
#define CACHE_KEY 22
#define CACHE_IDS 8
#define CACHE_STRIPES 64
// Pieces longer than this use the priority-queue merge (O(n log n)) instead of the O(n^2) scan.
#define HEAP_THRESHOLD 48

typedef struct {
    uint64_t hash;
    const char *key;  // points into the token arena
    int len;
    int value;
} StrSlot;

typedef struct {
    uint64_t key;  // (left << 32) | right; UINT64_MAX = empty
    int rank;
    int merged;
} PairSlot;

typedef struct {
    uint64_t hash;
    uint8_t klen;
    uint8_t nids;
    char key[CACHE_KEY];
    int32_t ids[CACHE_IDS];
} CacheSlot;

struct Bpe {
    // vocabulary: raw bytes -> id
    StrSlot *vocab;
    size_t vocab_cap, vocab_n;
    // merges: (left, right) -> rank, merged id
    PairSlot *merges;
    size_t merges_cap, merges_n;
    int byte_id[256];
    pcre2_code *re[BPE_MAX_REGEX];
    int n_re;
    int add_prefix_space;
    int ignore_merges;
    CacheSlot *cache;
    pthread_mutex_t locks[CACHE_STRIPES];
};

int idvec_push(IdVec *v, int id) {
    if (v->n == v->cap) {
        int cap = v->cap ? 2 * v->cap : 64;
        int *p = realloc(v->ids, (size_t)cap * sizeof *p);
        if (!p) return -1;
        v->ids = p;
        v->cap = cap;
    }
    v->ids[v->n++] = id;
    return 0;
}

static uint64_t hash_bytes(const char *s, int n) {
    // FNV-1a, then a final mix so the low bits used for the slot index are well spread.
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 32;
    return h;
}

static uint64_t hash_pair(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

// ---------------------------------------------------------------- byte <-> unicode (GPT-2)

static int g_b2u[256];
static int g_u2b[512];
static pthread_once_t g_table_once = PTHREAD_ONCE_INIT;

static void build_byte_table(void) {
    // Printable Latin-1 bytes stand for themselves; the others get 256, 257, ... in byte order.
    for (int i = 0; i < 512; i++) g_u2b[i] = -1;
    int extra = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        g_b2u[b] = printable ? b : 256 + extra++;
        g_u2b[g_b2u[b]] = b;
    }
}

int bpe_byte_to_unicode(int b) {
    pthread_once(&g_table_once, build_byte_table);
    return (b >= 0 && b < 256) ? g_b2u[b] : -1;
}

int bpe_unicode_to_byte(int cp) {
    pthread_once(&g_table_once, build_byte_table);
    return (cp >= 0 && cp < 512) ? g_u2b[cp] : -1;
}

// ---------------------------------------------------------------- construction

Bpe *bpe_new(void) {
    Bpe *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->vocab_cap = 1 << 10;
    b->vocab = calloc(b->vocab_cap, sizeof *b->vocab);
    b->merges_cap = 1 << 10;
    b->merges = malloc(b->merges_cap * sizeof *b->merges);
    b->cache = calloc(CACHE_SLOTS, sizeof *b->cache);
    if (!b->vocab || !b->merges || !b->cache) {
        free(b->vocab);
        free(b->merges);
        free(b->cache);
        free(b);
        return NULL;
    }
    for (size_t i = 0; i < b->merges_cap; i++) b->merges[i].key = UINT64_MAX;
    for (int i = 0; i < 256; i++) b->byte_id[i] = -1;
    for (int i = 0; i < CACHE_STRIPES; i++) pthread_mutex_init(&b->locks[i], NULL);
    return b;
}

void bpe_free(Bpe *b) {
    if (!b) return;
    for (size_t i = 0; i < b->vocab_cap; i++) free((char *)b->vocab[i].key);
    free(b->vocab);
    free(b->merges);
    free(b->cache);
    for (int i = 0; i < b->n_re; i++) pcre2_code_free(b->re[i]);
    for (int i = 0; i < CACHE_STRIPES; i++) pthread_mutex_destroy(&b->locks[i]);
    free(b);
}

static StrSlot *vocab_find(const Bpe *b, const char *s, int n, uint64_t h) {
    size_t mask = b->vocab_cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        StrSlot *slot = &b->vocab[i];
        if (!slot->key) return slot;
        if (slot->hash == h && slot->len == n && memcmp(slot->key, s, n) == 0) return slot;
    }
}

static int vocab_grow(Bpe *b) {
    size_t cap = b->vocab_cap * 2;
    StrSlot *old = b->vocab;
    size_t old_cap = b->vocab_cap;
    b->vocab = calloc(cap, sizeof *b->vocab);
    if (!b->vocab) {
        b->vocab = old;
        return -1;
    }
    b->vocab_cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].key) *vocab_find(b, old[i].key, old[i].len, old[i].hash) = old[i];
    free(old);
    return 0;
}

int bpe_add_token(Bpe *b, const char *bytes, int len, int id, Error *err) {
    if (len <= 0) return error_set(err, "empty token string for id %d", id);
    if (2 * (b->vocab_n + 1) > b->vocab_cap && vocab_grow(b)) return error_set(err, "out of memory");
    uint64_t h = hash_bytes(bytes, len);
    StrSlot *slot = vocab_find(b, bytes, len, h);
    if (slot->key) return error_set(err, "token of id %d duplicates the string of id %d", id, slot->value);
    char *copy = malloc(len + 1);
    if (!copy) return error_set(err, "out of memory");
    memcpy(copy, bytes, len);
    copy[len] = 0;
    slot->key = copy;
    slot->len = len;
    slot->hash = h;
    slot->value = id;
    b->vocab_n++;
    return 0;
}

int bpe_token_id(const Bpe *b, const char *bytes, int len) {
    if (len <= 0) return -1;
    const StrSlot *slot = vocab_find(b, bytes, len, hash_bytes(bytes, len));
    return slot->key ? slot->value : -1;
}

static PairSlot *merge_find(const PairSlot *tab, size_t cap, uint64_t key) {
    size_t mask = cap - 1;
    for (size_t i = hash_pair(key) & mask;; i = (i + 1) & mask)
        if (tab[i].key == key || tab[i].key == UINT64_MAX) return (PairSlot *)&tab[i];
}

int bpe_add_merge(Bpe *b, int left, int right, int merged, int rank, Error *err) {
    if (2 * (b->merges_n + 1) > b->merges_cap) {
        size_t cap = b->merges_cap * 2;
        PairSlot *tab = malloc(cap * sizeof *tab);
        if (!tab) return error_set(err, "out of memory");
        for (size_t i = 0; i < cap; i++) tab[i].key = UINT64_MAX;
        for (size_t i = 0; i < b->merges_cap; i++)
            if (b->merges[i].key != UINT64_MAX) *merge_find(tab, cap, b->merges[i].key) = b->merges[i];
        free(b->merges);
        b->merges = tab;
        b->merges_cap = cap;
    }
    uint64_t key = ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
    PairSlot *slot = merge_find(b->merges, b->merges_cap, key);
    // A repeated merge keeps its first (lowest) rank, as HF does when it builds its map.
    if (slot->key == key) return 0;
    slot->key = key;
    slot->rank = rank;
    slot->merged = merged;
    b->merges_n++;
    return 0;
}

int bpe_add_split_regex(Bpe *b, const char *pattern, Error *err) {
    if (b->n_re == BPE_MAX_REGEX) return error_set(err, "more than %d pre-tokenizer regexes", BPE_MAX_REGEX);
    int code;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &code,
                                   &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        return error_set(err, "pre-tokenizer regex does not compile at offset %d: %s", (int)off, (char *)msg);
    }
    // JIT is an optimisation only: without it pcre2_match interprets the same pattern.
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    b->re[b->n_re++] = re;
    return 0;
}

void bpe_set_add_prefix_space(Bpe *b, int on) { b->add_prefix_space = on; }
void bpe_set_ignore_merges(Bpe *b, int on) { b->ignore_merges = on; }

int bpe_finish(Bpe *b, Error *err) {
    for (int c = 0; c < 256; c++) {
        char s = (char)c;
        b->byte_id[c] = bpe_token_id(b, &s, 1);
        if (b->byte_id[c] < 0)
            return error_set(err, "vocabulary has no token for byte 0x%02x (not a byte-level BPE?)", c);
    }
    return 0;
}

// ---------------------------------------------------------------- merging one piece

static inline int merge_lookup(const Bpe *b, int left, int right, int *merged) {
    uint64_t key = ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
    const PairSlot *slot = merge_find(b->merges, b->merges_cap, key);
    if (slot->key != key) return INT_MAX;
    *merged = slot->merged;
    return slot->rank;
}

// O(n^2) in the worst case but no allocation beyond two arrays: fastest for normal words.
static int merge_scan(const Bpe *b, int *ids, int n) {
    int rank_buf[HEAP_THRESHOLD], merged_buf[HEAP_THRESHOLD];
    int *rank = n <= HEAP_THRESHOLD ? rank_buf : malloc((size_t)n * sizeof *rank);
    int *merged = n <= HEAP_THRESHOLD ? merged_buf : malloc((size_t)n * sizeof *merged);
    if (!rank || !merged) {
        if (rank != rank_buf) free(rank);
        if (merged != merged_buf) free(merged);
        return -1;
    }
    for (int i = 0; i + 1 < n; i++) rank[i] = merge_lookup(b, ids[i], ids[i + 1], &merged[i]);
    while (n > 1) {
        int best = -1, best_rank = INT_MAX;
        for (int i = 0; i + 1 < n; i++)
            if (rank[i] < best_rank) {
                best_rank = rank[i];
                best = i;
            }
        if (best < 0) break;
        ids[best] = merged[best];
        memmove(ids + best + 1, ids + best + 2, (size_t)(n - best - 2) * sizeof *ids);
        memmove(rank + best + 1, rank + best + 2, (size_t)(n - best - 3 > 0 ? n - best - 3 : 0) * sizeof *rank);
        memmove(merged + best + 1, merged + best + 2,
                (size_t)(n - best - 3 > 0 ? n - best - 3 : 0) * sizeof *merged);
        n--;
        if (best > 0) rank[best - 1] = merge_lookup(b, ids[best - 1], ids[best], &merged[best - 1]);
        if (best + 1 < n) rank[best] = merge_lookup(b, ids[best], ids[best + 1], &merged[best]);
    }
    if (rank != rank_buf) free(rank);
    if (merged != merged_buf) free(merged);
    return n;
}

typedef struct {
    int rank, pos, left, right;
} HeapItem;

static int heap_less(const HeapItem *a, const HeapItem *c) {
    return a->rank < c->rank || (a->rank == c->rank && a->pos < c->pos);
}

static void heap_push(HeapItem *h, int *n, HeapItem it) {
    int i = (*n)++;
    h[i] = it;
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!heap_less(&h[i], &h[p])) break;
        HeapItem t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

static HeapItem heap_pop(HeapItem *h, int *n) {
    HeapItem top = h[0];
    h[0] = h[--(*n)];
    int i = 0;
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < *n && heap_less(&h[l], &h[m])) m = l;
        if (r < *n && heap_less(&h[r], &h[m])) m = r;
        if (m == i) break;
        HeapItem t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
    return top;
}

// Priority-queue merge over a linked list of symbols; stale queue entries (a side already merged
// away) are recognised by comparing the ids they were pushed with.
static int merge_heap(const Bpe *b, int *ids, int n) {
    int *next = malloc((size_t)n * sizeof *next);
    int *prev = malloc((size_t)n * sizeof *prev);
    // Each merge pushes at most two pairs: n - 1 initial + 2 (n - 1) pushes in all.
    HeapItem *heap = malloc((size_t)(3 * n + 1) * sizeof *heap);
    if (!next || !prev || !heap) {
        free(next);
        free(prev);
        free(heap);
        return -1;
    }
    int hn = 0;
    for (int i = 0; i < n; i++) {
        next[i] = i + 1 < n ? i + 1 : -1;
        prev[i] = i - 1;
    }
    for (int i = 0; i + 1 < n; i++) {
        int m, r = merge_lookup(b, ids[i], ids[i + 1], &m);
        if (r != INT_MAX) heap_push(heap, &hn, (HeapItem){r, i, ids[i], ids[i + 1]});
    }
    while (hn > 0) {
        HeapItem it = heap_pop(heap, &hn);
        int p = it.pos, q = next[p];
        if (ids[p] < 0 || q < 0 || ids[p] != it.left || ids[q] != it.right) continue;
        int m = -1;
        merge_lookup(b, ids[p], ids[q], &m);
        ids[p] = m;
        ids[q] = -1;  // dead
        next[p] = next[q];
        if (next[q] >= 0) prev[next[q]] = p;
        if (prev[p] >= 0) {
            int r = merge_lookup(b, ids[prev[p]], ids[p], &m);
            if (r != INT_MAX) heap_push(heap, &hn, (HeapItem){r, prev[p], ids[prev[p]], ids[p]});
        }
        if (next[p] >= 0) {
            int r = merge_lookup(b, ids[p], ids[next[p]], &m);
            if (r != INT_MAX) heap_push(heap, &hn, (HeapItem){r, p, ids[p], ids[next[p]]});
        }
    }
    int k = 0;
    for (int i = 0; i >= 0 && i < n; i = next[i]) ids[k++] = ids[i];
    free(next);
    free(prev);
    free(heap);
    return k;
}

int bpe_encode_piece(const Bpe *b, const unsigned char *s, int n, int use_heap, IdVec *out) {
    if (n <= 0) return 0;
    if (b->ignore_merges) {
        int id = bpe_token_id(b, (const char *)s, n);
        if (id >= 0) return idvec_push(out, id);
    }
    int buf[HEAP_THRESHOLD];
    int *ids = n <= HEAP_THRESHOLD ? buf : malloc((size_t)n * sizeof *ids);
    if (!ids) return -1;
    for (int i = 0; i < n; i++) ids[i] = b->byte_id[s[i]];
    if (use_heap < 0) use_heap = n > HEAP_THRESHOLD;
    int k = use_heap ? merge_heap(b, ids, n) : merge_scan(b, ids, n);
    int rc = k < 0 ? -1 : 0;
    for (int i = 0; i < k && rc == 0; i++) rc = idvec_push(out, ids[i]);
    if (ids != buf) free(ids);
    return rc;
}

// Cached BPE of one piece: a hit copies the ids, a miss merges and stores short results.
static int encode_piece_cached(const Bpe *b, const unsigned char *s, int n, IdVec *out) {
    if (n > CACHE_KEY) return bpe_encode_piece(b, s, n, -1, out);
    uint64_t h = hash_bytes((const char *)s, n);
    size_t idx = h & (CACHE_SLOTS - 1);
    pthread_mutex_t *lock = (pthread_mutex_t *)&b->locks[idx % CACHE_STRIPES];
    CacheSlot *slot = &b->cache[idx];
    int32_t ids[CACHE_IDS];
    int nids = -1;
    pthread_mutex_lock(lock);
    if (slot->nids && slot->hash == h && slot->klen == n && memcmp(slot->key, s, n) == 0) {
        nids = slot->nids;
        memcpy(ids, slot->ids, (size_t)nids * sizeof *ids);
    }
    pthread_mutex_unlock(lock);
    if (nids > 0) {
        for (int i = 0; i < nids; i++)
            if (idvec_push(out, ids[i])) return -1;
        return 0;
    }
    int start = out->n;
    if (bpe_encode_piece(b, s, n, -1, out)) return -1;
    int got = out->n - start;
    if (got > 0 && got <= CACHE_IDS) {
        pthread_mutex_lock(lock);
        slot->hash = h;
        slot->klen = (uint8_t)n;
        slot->nids = (uint8_t)got;
        memcpy(slot->key, s, n);
        for (int i = 0; i < got; i++) slot->ids[i] = out->ids[start + i];
        pthread_mutex_unlock(lock);
    }
    return 0;
}

// ---------------------------------------------------------------- pre-tokenizer

// Splits text with regex k ("Isolated": every match and every gap between matches is a piece) and
// hands each piece to the next regex, or to BPE after the last one.
static int split_and_encode(const Bpe *b, int k, const char *text, size_t len, pcre2_match_data **md,
                            IdVec *out, Error *err) {
    if (len == 0) return 0;
    if (k >= b->n_re || k >= BPE_MAX_REGEX) {
        if (len > INT_MAX / 4) return error_set(err, "pre-tokenized piece too long (%zu bytes)", len);
        if (encode_piece_cached(b, (const unsigned char *)text, (int)len, out))
            return error_set(err, "out of memory");
        return 0;
    }
    size_t pos = 0, gap = 0;  // gap: start of the text not yet emitted
    while (pos < len) {
        int rc = pcre2_match(b->re[k], (PCRE2_SPTR)text, len, pos, PCRE2_NO_UTF_CHECK, md[k], NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return error_set(err, "pre-tokenizer regex match failed: %s", (char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md[k]);
        size_t ms = ov[0], me = ov[1];
        if (me == ms) {
            // An empty match splits nothing; step over one UTF-8 character and search again.
            pos = ms + 1;
            while (pos < len && ((unsigned char)text[pos] & 0xC0) == 0x80) pos++;
            continue;
        }
        if (ms > gap && split_and_encode(b, k + 1, text + gap, ms - gap, md, out, err)) return -1;
        if (split_and_encode(b, k + 1, text + ms, me - ms, md, out, err)) return -1;
        gap = pos = me;
    }
    if (gap < len && split_and_encode(b, k + 1, text + gap, len - gap, md, out, err)) return -1;
    return 0;
}

int bpe_encode_text(const Bpe *b, const char *text, size_t len, IdVec *out, Error *err) {
    if (len == 0) return 0;
    char *prefixed = NULL;
    if (b->add_prefix_space && text[0] != ' ') {
        prefixed = malloc(len + 1);
        if (!prefixed) return error_set(err, "out of memory");
        prefixed[0] = ' ';
        memcpy(prefixed + 1, text, len);
        text = prefixed;
        len++;
    }
    pcre2_match_data *md[BPE_MAX_REGEX] = {0};
    int rc = 0;
    for (int k = 0; k < b->n_re && rc == 0; k++) {
        md[k] = pcre2_match_data_create_from_pattern(b->re[k], NULL);
        if (!md[k]) rc = error_set(err, "out of memory");
    }
    if (rc == 0) rc = split_and_encode(b, 0, text, len, md, out, err);
    for (int k = 0; k < b->n_re; k++) pcre2_match_data_free(md[k]);
    free(prefixed);
    return rc;
}
