// Checkpoint I/O throughput: save (F32, BF16) and load (F32, BF16 -> fp32 with the NaN/Inf check)
// of a ~75M-parameter Qwen3-shaped model in a temp directory, header-only validation
// (qwen_model_load_config_only, what `pionrl inspect` does), and the same loads in PyTorch
// (tools/bench_modelio_torch.py: mmap + numpy views + .float(), like safetensors' torch loader).
// The page cache is warm for loads (the file was just written): this measures conversion, not the
// disk. Writes bench/results/modelio.json.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/timer.h"
#include "policy/qwen.h"
#include "policy/qwen_checkpoint.h"

enum { REPS = 3 };

static double best_load(const char *dir, size_t *nparams) {
    double best = 1e30;
    for (int r = 0; r < REPS; r++) {
        QwenModel m;
        Error e;
        double t0 = time_now();
        if (qwen_model_load(dir, &m, &e)) {
            fprintf(stderr, "bench_modelio: %s\n", e.msg);
            return -1;
        }
        double dt = time_now() - t0;
        if (dt < best) best = dt;
        *nparams = m.num_params;
        qwen_model_free(&m);
    }
    return best;
}

static double best_save(const QwenModel *m, const char *dir, StDtype dt) {
    double best = 1e30;
    for (int r = 0; r < REPS; r++) {
        Error e;
        double t0 = time_now();
        if (qwen_model_save(dir, m, dt, &e)) {
            fprintf(stderr, "bench_modelio: %s\n", e.msg);
            return -1;
        }
        double t = time_now() - t0;
        if (t < best) best = t;
    }
    return best;
}

static double torch_load(const char *dir) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tools/bench_modelio_torch.py %s/model.safetensors %d 2>/dev/null", dir,
             REPS);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    char line[512] = {0};
    double s = -1;
    if (fgets(line, sizeof line, p)) {
        const char *k = strstr(line, "\"load_s\":");
        if (k) s = atof(k + 9);
    }
    pclose(p);
    return s;
}

int main(void) {
    QwenConfig c = {.arch = ARCH_QWEN3, .vocab_size = 32768, .hidden_size = 768, .intermediate_size = 2048,
                    .num_layers = 8, .num_heads = 12, .num_kv_heads = 4, .head_dim = 64,
                    .max_position_embeddings = 4096, .rms_norm_eps = 1e-6f, .rope_theta = 1e6,
                    .tie_word_embeddings = 1, .qk_norm = 1};
    snprintf(c.torch_dtype, sizeof c.torch_dtype, "float32");
    QwenModel m;
    Error e;
    if (qwen_model_init(&m, &c, &e)) {
        fprintf(stderr, "bench_modelio: %s\n", e.msg);
        return 1;
    }
    qwen_model_init_random(&m, 1, 0.02f);
    char root[] = "/tmp/pionrl-bench-modelio-XXXXXX";
    if (!mkdtemp(root)) return 1;
    char d32[128], d16[128];
    snprintf(d32, sizeof d32, "%s/f32", root);
    snprintf(d16, sizeof d16, "%s/bf16", root);
    double mb32 = m.num_params * 4.0 / 1e6, mb16 = m.num_params * 2.0 / 1e6;

    double save32 = best_save(&m, d32, ST_F32), save16 = best_save(&m, d16, ST_BF16);
    size_t n = 0;
    double load32 = best_load(d32, &n), load16 = best_load(d16, &n);
    double hdr = 1e30;
    for (int r = 0; r < REPS; r++) {
        QwenConfig cc;
        double t0 = time_now();
        if (qwen_model_load_config_only(d16, &cc, NULL, &e)) fprintf(stderr, "bench_modelio: %s\n", e.msg);
        double t = time_now() - t0;
        if (t < hdr) hdr = t;
    }
    double tl32 = torch_load(d32), tl16 = torch_load(d16);
    qwen_model_free(&m);

    printf("model: %zu parameters (%.0f MB fp32, %.0f MB bf16)\n", n, mb32, mb16);
    printf("save F32   %.3f s  %7.0f MB/s (incl. fsync)\n", save32, mb32 / save32);
    printf("save BF16  %.3f s  %7.0f MB/s (incl. fsync, rounding)\n", save16, mb16 / save16);
    printf("load F32   %.3f s  %7.0f MB/s   torch %.3f s\n", load32, mb32 / load32, tl32);
    printf("load BF16  %.3f s  %7.0f MB/s   torch %.3f s (output fp32)\n", load16, mb16 / load16, tl16);
    printf("headers only (inspect)  %.2f ms\n", hdr * 1e3);

    // The machine may be shared: record its load next to the numbers.
    double load1 = -1;
    FILE *la = fopen("/proc/loadavg", "r");
    if (la) {
        if (fscanf(la, "%lf", &load1) != 1) load1 = -1;
        fclose(la);
    }
    printf("load average %.2f on %ld cores\n", load1, sysconf(_SC_NPROCESSORS_ONLN));
    FILE *f = fopen("bench/results/modelio.json", "w");
    if (f) {
        fprintf(f,
                "{\n  \"benchmark\": \"modelio\",\n  \"params\": %zu,\n  \"note\": \"one thread, page cache warm, save includes fsync\",\n"
                "  \"save_f32_s\": %.4f,\n  \"save_bf16_s\": %.4f,\n  \"load_f32_s\": %.4f,\n  \"load_bf16_s\": %.4f,\n"
                "  \"headers_only_s\": %.6f,\n  \"torch_load_f32_s\": %.4f,\n  \"torch_load_bf16_s\": %.4f,\n"
                "  \"load_average_1min\": %.2f,\n  \"cores\": %ld\n}\n",
                n, save32, save16, load32, load16, hdr, tl32, tl16, load1, sysconf(_SC_NPROCESSORS_ONLN));
        fclose(f);
    }
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) fprintf(stderr, "bench_modelio: could not remove %s\n", root);
    return 0;
}
