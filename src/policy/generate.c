#include "policy/generate.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "policy/qwen_cuda.h"
#include "policy/qwen_decode.h"

void gen_seqs_free(GenSeq *seqs, int n) {
    for (int i = 0; i < n; i++) {
        free(seqs[i].tokens);
        free(seqs[i].logps);
        seqs[i].tokens = NULL;
        seqs[i].logps = NULL;
    }
}

static int is_eos(const GenerateParams *gp, int tok) {
    for (int i = 0; i < gp->num_eos; i++)
        if (gp->eos_ids[i] == tok) return 1;
    return 0;
}

// The KV-cache decoder qwen_generate drives: the CPU cache, or the device's when gp->cuda is set.
typedef struct {
    const QwenModel *m;
    QwenKVCache cpu;
    QwenCudaKV *gpu;
    int kept;  // gpu belongs to the caller's gp->cuda_keep
} Decoder;

// The device cache of a call: the caller's kept one when it fits (the graphs captured in it stay valid), else a new
// one, handed to the caller to keep when it asked.
static int device_cache(Decoder *d, const GenerateParams *gp, int slots, int max_len, int max_tok, Error *err) {
    QwenCudaKV **keep = gp->cuda_keep;
    if (keep && qwen_cuda_kv_fits(*keep, gp->cuda, slots, max_len, max_tok, gp->kv_bf16)) {
        d->gpu = *keep, d->kept = 1;
        qwen_cuda_kv_reset_all(d->gpu);
        return qwen_cuda_kv_set_matmul_bf16(d->gpu, gp->matmul_bf16, err);
    }
    if (keep && *keep) {  // too small, or another model's: replaced (its memory first)
        qwen_cuda_kv_free(*keep);
        *keep = NULL;
    }
    if (qwen_cuda_kv_create_ex(gp->cuda, slots, max_len, max_tok, gp->kv_bf16, &d->gpu, err)) return -1;
    if (qwen_cuda_kv_set_matmul_bf16(d->gpu, gp->matmul_bf16, err)) {
        qwen_cuda_kv_free(d->gpu);
        d->gpu = NULL;
        return -1;
    }
    if (keep) *keep = d->gpu, d->kept = 1;
    return 0;
}

static int decoder_open(Decoder *d, const QwenModel *m, const GenerateParams *gp, int slots, int max_len,
                        int max_tok, Error *err) {
    memset(d, 0, sizeof *d);
    d->m = m;
    if (gp->cuda) return device_cache(d, gp, slots, max_len, max_tok, err);
    if (qwen_kv_alloc_ex(&d->cpu, &m->cfg, slots, max_len, max_tok, gp->kv_bf16, err)) return -1;
    if (gp->matmul_bf16 && qwen_kv_pack_bf16(&d->cpu, m, err)) {
        qwen_kv_free(&d->cpu);
        return -1;
    }
    return 0;
}

static void decoder_close(Decoder *d) {
    if (d->gpu) {
        if (!d->kept) qwen_cuda_kv_free(d->gpu);
    } else {
        qwen_kv_free(&d->cpu);
    }
}

static int decoder_run(Decoder *d, const int *slot, const int *tok, int n, const unsigned char *want, float *logits,
                       Error *err) {
    if (d->gpu) return qwen_cuda_decode(d->gpu, slot, tok, n, want, logits, err);
    return qwen_decode(d->m, &d->cpu, slot, tok, n, want, logits, err);
}

static int decoder_copy(Decoder *d, int dst, int src, Error *err) {
    if (d->gpu) return qwen_cuda_kv_copy(d->gpu, dst, src, err);
    qwen_kv_copy(&d->cpu, dst, src);
    return 0;
}

// Prefills every prompt into slot p*G, in chunks of at most max_tok tokens, and samples the first
// token of each of its G sequences from the last prompt position's logits.
static int prefill(const QwenModel *m, Decoder *dec, const int *const *prompts, const int *lens, int P, int G,
                   int max_tok, float *logits, int *slot, int *tok, unsigned char *want, int *owner, Error *err) {
    int V = m->cfg.vocab_size;
    int p = 0, off = 0;
    while (p < P) {
        int n = 0, nw = 0;
        while (p < P && n < max_tok) {
            int take = lens[p] - off;
            if (take > max_tok - n) take = max_tok - n;
            for (int i = 0; i < take; i++) {
                slot[n] = p * G;
                tok[n] = prompts[p][off + i];
                want[n] = (off + i == lens[p] - 1);
                if (want[n]) owner[nw++] = p;
                n++;
            }
            off += take;
            if (off == lens[p]) {
                p++;
                off = 0;
            }
        }
        if (decoder_run(dec, slot, tok, n, want, logits, err)) return -1;
        // keep the last-position logits of each finished prompt in its row p of the logits area
        for (int i = 0; i < nw; i++)
            memmove(logits + (size_t)(max_tok + owner[i]) * V, logits + (size_t)i * V, sizeof(float) * V);
    }
    return 0;
}

int qwen_generate(const QwenModel *m, const int *const *prompts, const int *prompt_lens, int P, int G,
                  const GenerateParams *gp, GenSeq *out, Error *err) {
    const QwenConfig *c = &m->cfg;
    int S = P * G, V = c->vocab_size;
    int n_valid = gp->n_valid > 0 && gp->n_valid < V ? gp->n_valid : V;
    if (P <= 0 || G <= 0) return error_set(err, "generate: need at least one prompt and one sample");
    if (gp->max_new_tokens <= 0) return error_set(err, "generate: max_new_tokens must be positive");
    if (sampling_params_validate(&gp->sampling, "generate", err)) return -1;
    int max_prompt = 0;
    for (int p = 0; p < P; p++) {
        if (prompt_lens[p] <= 0) return error_set(err, "generate: prompt %d is empty", p);
        if (prompt_lens[p] > max_prompt) max_prompt = prompt_lens[p];
    }
    int max_len = max_prompt + gp->max_new_tokens;
    if (max_len > c->max_position_embeddings)
        return error_set(err, "generate: prompt (%d tokens) + max_new_tokens (%d) exceeds max_position_embeddings %d",
                         max_prompt, gp->max_new_tokens, c->max_position_embeddings);
    int max_tok = gp->max_batch_tokens > 0 ? gp->max_batch_tokens : 512;
    if (max_tok < S) max_tok = S;  // one decode step carries every live sequence
    memset(out, 0, sizeof(GenSeq) * S);
    Decoder dec;
    if (decoder_open(&dec, m, gp, S, max_len, max_tok, err)) return -1;
    // one sampler work space per thread: the sequences of a step are sampled in parallel (each
    // draws from its own RNG stream, so the result does not depend on the thread count)
    int nthr = omp_get_max_threads();
    Sampler *smp = calloc(nthr, sizeof(Sampler));
    int sok = smp != NULL;
    for (int t = 0; sok && t < nthr; t++) sok = sampler_init(&smp[t], V, err) == 0;
    if (!sok) {
        if (!smp) error_set(err, "generate: out of memory");
        for (int t = 0; smp && t < nthr; t++) sampler_free(&smp[t]);
        free(smp);
        decoder_close(&dec);
        return -1;
    }
    float *logits = malloc(sizeof(float) * (size_t)(max_tok + P) * V);
    int *slot = malloc(sizeof(int) * max_tok), *tok = malloc(sizeof(int) * max_tok);
    int *owner = malloc(sizeof(int) * (max_tok > P ? max_tok : P)), *live = malloc(sizeof(int) * S);
    unsigned char *want = malloc(max_tok);
    Rng *rng = malloc(sizeof(Rng) * S);
    double *u = malloc(sizeof(double) * S);  // device sampling: per live sequence, a uniform number in, a token out
    int *next = malloc(sizeof(int) * S);
    float *next_lp = malloc(sizeof(float) * S);
    int rc = -1;
    if (!logits || !slot || !tok || !owner || !live || !want || !rng || !u || !next || !next_lp) {
        error_set(err, "generate: out of memory");
        goto done;
    }
    for (int i = 0; i < S; i++) {
        out[i].prompt = i / G;
        out[i].tokens = malloc(sizeof(int) * gp->max_new_tokens);
        out[i].logps = malloc(sizeof(float) * gp->max_new_tokens);
        if (!out[i].tokens || !out[i].logps) {
            error_set(err, "generate: out of memory");
            goto done;
        }
        // independent stream per sequence: seed mixed with the sequence index
        rng_seed(&rng[i], gp->seed ^ (0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1)));
    }
    if (prefill(m, &dec, prompts, prompt_lens, P, G, max_tok, logits, slot, tok, want, owner, err)) goto done;
    for (int p = 0; p < P; p++)
        for (int g = 1; g < G; g++)
            if (decoder_copy(&dec, p * G + g, p * G, err)) goto done;
    // first token of each sequence from its prompt's logits
    int nlive = 0;
    for (int i = 0; i < S; i++) live[nlive++] = i;
#pragma omp parallel for schedule(dynamic, 4)
    for (int i = 0; i < S; i++) {
        const float *lg = logits + (size_t)(max_tok + i / G) * V;
        float lp;
        int t = sampler_sample(&smp[omp_get_thread_num()], lg, V, n_valid, &gp->sampling, &rng[i], &lp);
        out[i].tokens[0] = t;
        out[i].logps[0] = lp;
        out[i].n = 1;
    }
    for (;;) {
        // retire finished sequences, then feed the last token of each live one
        int n = 0;
        for (int j = 0; j < nlive; j++) {
            int i = live[j];
            GenSeq *sq = &out[i];
            int last = sq->tokens[sq->n - 1];
            if (gp->on_token) gp->on_token(gp->on_token_ctx, i, last);
            if (is_eos(gp, last)) {
                sq->finish = FINISH_EOS;
                continue;
            }
            if (gp->stop_fn && gp->stop_fn(gp->stop_ctx, i, sq->tokens, sq->n)) {
                sq->finish = FINISH_STOP;
                continue;
            }
            if (sq->n >= gp->max_new_tokens) {
                sq->finish = FINISH_LENGTH;
                continue;
            }
            live[n] = i;
            slot[n] = i;
            tok[n] = last;
            n++;
        }
        nlive = n;
        if (nlive == 0) break;
        if (dec.gpu) {
            // sampled on the device from the same uniform numbers sampler_sample would draw (one per token, none when
            // greedy)
            for (int j = 0; j < n; j++) u[j] = gp->sampling.temperature > 0 ? rng_uniform_double(&rng[live[j]]) : 0.0;
            if (qwen_cuda_decode_sample(dec.gpu, slot, tok, n, &gp->sampling, n_valid, u, next, next_lp, err))
                goto done;
            for (int j = 0; j < n; j++) {
                GenSeq *sq = &out[live[j]];
                sq->tokens[sq->n] = next[j];
                sq->logps[sq->n] = next_lp[j];
                sq->n++;
            }
            continue;
        }
        if (decoder_run(&dec, slot, tok, n, NULL, logits, err)) goto done;
#pragma omp parallel for schedule(dynamic, 4)
        for (int j = 0; j < n; j++) {
            int i = live[j];
            float lp;
            int t = sampler_sample(&smp[omp_get_thread_num()], logits + (size_t)j * V, V, n_valid, &gp->sampling,
                                   &rng[i], &lp);
            out[i].tokens[out[i].n] = t;
            out[i].logps[out[i].n] = lp;
            out[i].n++;
        }
    }
    rc = 0;
done:
    if (rc) gen_seqs_free(out, S);
    free(logits);
    free(slot);
    free(tok);
    free(owner);
    free(live);
    free(want);
    free(rng);
    free(u);
    free(next);
    free(next_lp);
    for (int t = 0; t < nthr; t++) sampler_free(&smp[t]);
    free(smp);
    decoder_close(&dec);
    return rc;
}
