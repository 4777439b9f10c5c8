// RL loss kernels: time of one loss + gradient (d loss / d logp) over a [B, T] batch for every
// loss type (positions = B x T, padding included), against the same expression in PyTorch
// (autograd, float32, CPU) run right after by tools/rl_bench_loss_torch.py. Best of REPS.
// Writes bench/results/rl.json.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/fileio.h"
#include "core/rng.h"
#include "core/timer.h"
#include "rl/advantage.h"
#include "rl/loss.h"

enum { B = 64, T = 1024, REPS = 15 };

int main(void) {
    long n = (long)B * T;
    float *logp = malloc(sizeof(float) * n), *old = malloc(sizeof(float) * n), *mask = malloc(sizeof(float) * n);
    float *grad = malloc(sizeof(float) * n), adv[B];
    if (!logp || !old || !mask || !grad) return 1;
    Rng rng;
    rng_seed(&rng, 1);
    double tokens = 0;
    for (int i = 0; i < B; i++) {
        int len = 1 + (int)rng_below(&rng, T);
        adv[i] = (float)rng_normal(&rng);
        for (int t = 0; t < T; t++) {
            long k = (long)i * T + t;
            old[k] = -3 * rng_uniform(&rng);
            logp[k] = old[k] + 0.3f * (float)rng_normal(&rng);
            mask[k] = t < len;
            tokens += mask[k];
        }
    }
    const char *names[] = {"grpo", "bnpo", "dr_grpo", "dapo", "gmpo"};
    double c_time[5];
    for (int k = 0; k < 5; k++) {
        LossConfig cfg;
        LossType type;
        loss_type_parse(names[k], &type, NULL);
        loss_config_default(&cfg, type);
        cfg.max_completion_length = T;
        LossNorm norm;
        loss_norm_init(&norm, T);
        loss_norm_add(&norm, mask, B, T);
        LossBatch b = {logp, old, NULL, mask, adv, B, T};
        double best = INFINITY;
        for (int r = 0; r < REPS; r++) {
            LossStats st;
            loss_stats_init(&st);
            double t0 = time_now();
            Error err;
            if (loss_compute(&cfg, &norm, &b, grad, &st, &err)) {
                fprintf(stderr, "bench_rl: %s\n", err.msg);
                return 1;
            }
            double dt = time_now() - t0;
            if (dt < best) best = dt;
        }
        c_time[k] = best;
    }
    // PyTorch peer on the same shape (its own random data of the same distribution).
    char cmd[256];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tools/rl_bench_loss_torch.py %d %d %d 2>/dev/null", B, T, REPS);
    cJSON *peer = NULL;
    FILE *p = popen(cmd, "r");
    if (p) {
        char buf[4096];
        size_t got = fread(buf, 1, sizeof buf - 1, p);
        buf[got] = 0;
        if (pclose(p) == 0) peer = cJSON_Parse(buf);
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "what", "loss + d loss/d logp for one [B, T] batch, best of REPS, seconds");
    cJSON_AddNumberToObject(out, "B", B);
    cJSON_AddNumberToObject(out, "T", T);
    cJSON_AddNumberToObject(out, "masked_tokens", tokens);
    cJSON_AddNumberToObject(out, "reps", REPS);
    cJSON *rows = cJSON_AddArrayToObject(out, "results");
    printf("%-8s %12s %14s %12s %10s\n", "loss", "pionrl (ms)", "Mpos/s", "torch (ms)", "speedup");
    for (int k = 0; k < 5; k++) {
        cJSON *row = cJSON_CreateObject();
        cJSON_AddStringToObject(row, "loss_type", names[k]);
        cJSON_AddNumberToObject(row, "pionrl_s", c_time[k]);
        cJSON_AddNumberToObject(row, "pionrl_mpositions_per_s", (double)n / c_time[k] / 1e6);
        const cJSON *pt = peer ? cJSON_GetObjectItem(peer, names[k]) : NULL;
        if (cJSON_IsNumber(pt)) {
            cJSON_AddNumberToObject(row, "torch_s", pt->valuedouble);
            cJSON_AddNumberToObject(row, "speedup", pt->valuedouble / c_time[k]);
        }
        cJSON_AddItemToArray(rows, row);
        printf("%-8s %12.3f %14.1f %12s %10s\n", names[k], 1e3 * c_time[k], (double)n / c_time[k] / 1e6,
               cJSON_IsNumber(pt) ? (snprintf(cmd, sizeof cmd, "%.3f", 1e3 * pt->valuedouble), cmd) : "-",
               cJSON_IsNumber(pt) ? (snprintf(cmd + 64, sizeof cmd - 64, "%.2fx", pt->valuedouble / c_time[k]),
                                     cmd + 64)
                                  : "-");
    }
    if (peer) {
        const cJSON *v = cJSON_GetObjectItem(peer, "torch_version"), *th = cJSON_GetObjectItem(peer, "threads");
        if (cJSON_IsString(v)) cJSON_AddStringToObject(out, "torch_version", v->valuestring);
        if (cJSON_IsNumber(th)) cJSON_AddNumberToObject(out, "torch_threads", th->valuedouble);
    } else {
        printf("(PyTorch peer unavailable: /usr/bin/python3 with torch not found)\n");
    }
    char *text = cJSON_Print(out);
    Error err;
    int rc = dir_create("bench/results", &err) || file_write_atomic("bench/results/rl.json", text, strlen(text), &err);
    if (rc) fprintf(stderr, "bench_rl: %s\n", err.msg);
    free(text);
    cJSON_Delete(out);
    cJSON_Delete(peer);
    free(logp);
    free(old);
    free(mask);
    free(grad);
    return rc ? 1 : 0;
}
