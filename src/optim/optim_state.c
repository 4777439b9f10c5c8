// Optimizer state in a safetensors file: every state buffer as an F32 tensor named
// "<param>.<buffer>", plus "optim.header" (I32: format version, kind, kp, per_head, number of
// parameters, step low/high 31 bits) so a load can check it matches this optimizer. fp32 is
// stored as is, so a resumed run continues bit-exactly.
#include <stdio.h>
#include <string.h>

#include "core/safetensors.h"
#include "optim/optim_internal.h"

#define OPTIM_STATE_VERSION 1
#define HEADER_LEN 7

static void make_header(const Optimizer *o, int32_t h[HEADER_LEN]) {
    h[0] = OPTIM_STATE_VERSION;
    h[1] = (int32_t)o->cfg.kind;
    h[2] = o->cfg.kp;
    h[3] = o->cfg.per_head;
    h[4] = o->n;
    h[5] = (int32_t)(o->step & 0x7fffffff);
    h[6] = (int32_t)((o->step >> 31) & 0x7fffffff);
}

int optimizer_state_save(const Optimizer *o, const char *path, Error *err) {
    StWriter *w = st_writer_new();
    if (!w) return error_set(err, "%s: out of memory", path);
    int32_t header[HEADER_LEN];
    make_header(o, header);
    int64_t hshape[1] = {HEADER_LEN};
    char name[256], step[32];
    int rc = st_writer_add_i32(w, "optim.header", 1, hshape, header, err);
    for (int i = 0; i < o->n && rc == 0; i++) {
        const ParamState *s = &o->st[i];
        for (int b = 0; b < s->nbuf && rc == 0; b++) {
            snprintf(name, sizeof name, "%s.%s", o->table[i].name, optim_buffer_name(s->rule, b));
            int64_t shape[2] = {s->rows[b], s->cols[b]};
            rc = st_writer_add_f32(w, name, ST_F32, 2, shape, s->buf[b], err);
        }
    }
    snprintf(step, sizeof step, "%ld", o->step);
    if (rc == 0) rc = st_writer_set_metadata(w, "optimizer", optimizer_kind_name(o->cfg.kind), err);
    if (rc == 0) rc = st_writer_set_metadata(w, "step", step, err);
    if (rc == 0) rc = st_writer_save(w, path, err);
    st_writer_free(w);
    return rc ? error_prefix(err, "optimizer state save") : 0;
}

int optimizer_state_load(Optimizer *o, const char *path, Error *err) {
    StFile f;
    if (st_open(path, &f, err)) return error_prefix(err, "optimizer state load");
    int rc = 0;
    char name[256];
    int32_t want[HEADER_LEN], got[HEADER_LEN];
    make_header(o, want);
    const StTensor *t = st_find(&f, "optim.header");
    if (!t || t->dtype != ST_I32 || t->numel != HEADER_LEN) {
        rc = error_set(err, "%s: no valid optim.header tensor (not an optimizer state file?)", path);
        goto done;
    }
    memcpy(got, t->data, sizeof got);
    if (got[0] != OPTIM_STATE_VERSION) {
        rc = error_set(err, "%s: state format version %d, expected %d", path, got[0], OPTIM_STATE_VERSION);
        goto done;
    }
    if (got[1] != want[1] || got[2] != want[2] || got[3] != want[3] || got[4] != want[4]) {
        rc = error_set(err,
                       "%s: state is for optimizer %s (kp %d, per_head %d, %d parameters), this run is %s "
                       "(kp %d, per_head %d, %d parameters)",
                       path, got[1] >= 0 && got[1] <= OPT_SPECTRAL ? optimizer_kind_name((OptimKind)got[1]) : "?",
                       got[2], got[3], got[4], optimizer_kind_name(o->cfg.kind), want[2], want[3], want[4]);
        goto done;
    }
    if (got[5] < 0 || got[6] < 0) {
        rc = error_set(err, "%s: negative step in optim.header", path);
        goto done;
    }
    // Check every tensor before copying anything, so a failed load leaves the optimizer as it was.
    for (int pass = 0; pass < 2 && rc == 0; pass++)
        for (int i = 0; i < o->n && rc == 0; i++) {
            ParamState *s = &o->st[i];
            for (int b = 0; b < s->nbuf && rc == 0; b++) {
                snprintf(name, sizeof name, "%s.%s", o->table[i].name, optim_buffer_name(s->rule, b));
                const StTensor *x = st_find(&f, name);
                if (!x) {
                    rc = error_set(err, "%s: missing tensor '%s'", path, name);
                } else if (x->dtype != ST_F32 || x->ndim != 2 || x->shape[0] != s->rows[b] ||
                           x->shape[1] != s->cols[b]) {
                    rc = error_set(err, "%s: tensor '%s' must be F32 [%d, %d]", path, name, s->rows[b], s->cols[b]);
                } else if (pass == 1) {
                    memcpy(s->buf[b], x->data, s->len[b] * sizeof(float));
                }
            }
        }
    if (rc == 0) o->step = (long)got[5] | ((long)got[6] << 31);
done:
    st_close(&f);
    return rc;
}
