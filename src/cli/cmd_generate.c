// pionrl generate: sample completions from a checkpoint directory.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "core/cuda_ops.h"
#include "core/fileio.h"
#include "core/json.h"
#include "core/timer.h"
#include "policy/generate.h"
#include "policy/qwen_checkpoint.h"
#include "policy/qwen_cuda.h"
#include "policy/stop_strings.h"
#include "policy/tokenizer.h"

#define MAX_STOPS STOP_STRINGS_MAX

static void usage(FILE *f) {
    fprintf(f,
            "usage: pionrl generate --model DIR (--prompt TEXT | --prompts FILE.jsonl | --ids \"1 2 3\") [options]\n"
            "\n"
            "Samples completions from a Qwen2/Qwen3 checkpoint (config.json + *.safetensors, tokenizer.json\n"
            "or tokenizer.model in the same directory unless --tokenizer DIR is given).\n"
            "\n"
            "  --prompt TEXT          one prompt (rendered with the chat template unless --raw)\n"
            "  --prompts FILE.jsonl   one prompt per line: {\"prompt\": \"...\"}; output is JSONL, in order\n"
            "  --ids \"1 2 3\"          token ids in (no tokenizer needed); ids are printed out\n"
            "  --raw                  do not apply the chat template (base models)\n"
            "  --system TEXT          system message for the chat template\n"
            "  --think                leave Qwen3 thinking on (default: off, empty <think></think>)\n"
            "  --num-samples G        completions per prompt (default 1)\n"
            "  --max-new-tokens N     (default 256)\n"
            "  --temperature T        0 = greedy (default 0.7)\n"
            "  --top-p P --top-k K --min-p P   sampling filters (defaults 1.0, 0, 0)\n"
            "  --stop STRING          stop when the completion text contains STRING (repeatable, up to %d)\n"
            "  --seed S               (default 0)\n"
            "  --device cpu|cuda      where the model runs (default cpu; cuda needs a make CUDA=1 build\n"
            "                         and a GPU: decode and sampling on the device)\n"
            "  --matmul-dtype fp32|bf16   precision of the decode's matrix products (default fp32; bf16:\n"
            "                         weights and inputs rounded to bfloat16, fp32 sums; CPU or cuda)\n"
            "  --kv-cache-dtype fp32|bf16 precision of the KV cache (default fp32)\n"
            "  --json                 print JSON lines even for a single prompt\n",
            MAX_STOPS);
}

static const char *finish_name(FinishReason f) {
    return f == FINISH_EOS ? "eos" : f == FINISH_STOP ? "stop" : "length";
}

static int parse_ids(const char *s, int **ids, int *n) {
    int cap = 16;
    *ids = malloc(sizeof(int) * cap);
    *n = 0;
    char *end;
    for (;;) {
        while (*s == ' ' || *s == ',' || *s == '\t' || *s == '\n') s++;
        if (!*s) break;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v > 0x7fffffff) return -1;
        if (*n == cap) *ids = realloc(*ids, sizeof(int) * (cap *= 2));
        (*ids)[(*n)++] = (int)v;
        s = end;
    }
    return *n > 0 ? 0 : -1;
}

int cmd_generate(int argc, char **argv) {
    const char *model_dir = NULL, *tok_dir = NULL, *prompt = NULL, *prompts_file = NULL, *ids_arg = NULL,
               *system = NULL;
    const char *device = "cpu";
    int raw = 0, think = 0, G = 1, as_json = 0;
    GenerateParams gp = {{0.7f, 0, 1.0f, 0.0f}, 256, NULL, 0, 0, 0, NULL, NULL, NULL, NULL, 0, NULL, NULL, 0, 0};
    const char *matmul_dtype = "fp32", *kv_dtype = "fp32";
    StopStrings stop = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--raw")) raw = 1;
        else if (!strcmp(a, "--think")) think = 1;
        else if (!strcmp(a, "--json")) as_json = 1;
        else if (!v) {
            fprintf(stderr, "generate: %s needs a value (see pionrl generate --help)\n", a);
            return 2;
        } else {
            i++;
            char *end = NULL;
            if (!strcmp(a, "--model")) model_dir = v;
            else if (!strcmp(a, "--tokenizer")) tok_dir = v;
            else if (!strcmp(a, "--prompt")) prompt = v;
            else if (!strcmp(a, "--prompts")) prompts_file = v;
            else if (!strcmp(a, "--ids")) ids_arg = v;
            else if (!strcmp(a, "--system")) system = v;
            else if (!strcmp(a, "--device")) device = v;
            else if (!strcmp(a, "--matmul-dtype")) matmul_dtype = v;
            else if (!strcmp(a, "--kv-cache-dtype")) kv_dtype = v;
            else if (!strcmp(a, "--num-samples")) G = (int)strtol(v, &end, 10);
            else if (!strcmp(a, "--max-new-tokens")) gp.max_new_tokens = (int)strtol(v, &end, 10);
            else if (!strcmp(a, "--temperature")) gp.sampling.temperature = strtof(v, &end);
            else if (!strcmp(a, "--top-p")) gp.sampling.top_p = strtof(v, &end);
            else if (!strcmp(a, "--top-k")) gp.sampling.top_k = (int)strtol(v, &end, 10);
            else if (!strcmp(a, "--min-p")) gp.sampling.min_p = strtof(v, &end);
            else if (!strcmp(a, "--seed")) gp.seed = strtoull(v, &end, 10);
            else if (!strcmp(a, "--stop")) {
                if (stop.num_stops == MAX_STOPS) {
                    fprintf(stderr, "generate: at most %d --stop strings\n", MAX_STOPS);
                    return 2;
                }
                stop.stops[stop.num_stops++] = v;
            } else {
                fprintf(stderr, "generate: unknown option '%s' (see pionrl generate --help)\n", a);
                return 2;
            }
            if (end && *end) {
                fprintf(stderr, "generate: %s: '%s' is not a number\n", a, v);
                return 2;
            }
        }
    }
    if (!model_dir || (!!prompt + !!prompts_file + !!ids_arg) != 1) {
        fprintf(stderr, "generate: need --model DIR and exactly one of --prompt, --prompts, --ids\n");
        usage(stderr);
        return 2;
    }
    if (G <= 0 || G > 4096) {
        fprintf(stderr, "generate: --num-samples must be in 1..4096\n");
        return 2;
    }
    if (strcmp(device, "cpu") && strcmp(device, "cuda")) {
        fprintf(stderr, "generate: --device must be cpu or cuda (got '%s')\n", device);
        return 2;
    }
    if ((strcmp(matmul_dtype, "fp32") && strcmp(matmul_dtype, "bf16")) || (strcmp(kv_dtype, "fp32") && strcmp(kv_dtype, "bf16"))) {
        fprintf(stderr, "generate: --matmul-dtype and --kv-cache-dtype take fp32 or bf16 (got '%s', '%s')\n",
                matmul_dtype, kv_dtype);
        return 2;
    }
    gp.matmul_bf16 = !strcmp(matmul_dtype, "bf16");
    gp.kv_bf16 = !strcmp(kv_dtype, "bf16");
    Error e;
    if (!strcmp(device, "cuda") && cuda_device_probe(NULL, 0, NULL, &e)) {
        fprintf(stderr, "generate: --device cuda: %s\n", e.msg);
        return 1;
    }
    QwenModel m;
    if (qwen_model_load(model_dir, &m, &e)) {
        fprintf(stderr, "generate: %s\n", e.msg);
        return 1;
    }
    if (!strcmp(device, "cuda") && qwen_cuda_create_for_decode(&m, &gp.cuda, &e)) {
        fprintf(stderr, "generate: --device cuda: %s\n", e.msg);
        qwen_model_free(&m);
        return 1;
    }
    Tokenizer *tok = NULL;
    int rc = 1, P = 0;
    int **prompt_ids = NULL, *prompt_lens = NULL;
    GenSeq *out = NULL;
    char **texts = NULL;
    if (!ids_arg) {
        if (tokenizer_load(tok_dir ? tok_dir : model_dir, &tok, &e)) {
            fprintf(stderr, "generate: %s (use --tokenizer DIR, or --ids for token ids)\n", e.msg);
            goto done;
        }
        stop.tok = tok;
        gp.num_eos = tokenizer_eos_ids(tok, &gp.eos_ids);
        gp.n_valid = tokenizer_vocab_size(tok);
        gp.stop_fn = stop_strings_check;
        gp.stop_ctx = &stop;
    }
    // collect prompt texts
    if (prompts_file) {
        char *data = file_read_all(prompts_file, NULL, &e);
        if (!data) {
            fprintf(stderr, "generate: %s\n", e.msg);
            goto done;
        }
        int cap = 16, line = 0;
        texts = malloc(sizeof(char *) * cap);
        for (char *s = data, *nl; *s; s = nl ? nl + 1 : s + strlen(s)) {
            nl = strchr(s, '\n');
            if (nl) *nl = 0;
            line++;
            if (strspn(s, " \t\r") == strlen(s)) continue;
            char where[600];
            snprintf(where, sizeof where, "%s:%d", prompts_file, line);
            cJSON *j = json_parse_text(s, where, &e);
            const cJSON *p = j ? cJSON_GetObjectItemCaseSensitive(j, "prompt") : NULL;
            if (!cJSON_IsString(p)) {
                if (j) error_set(&e, "%s: expected {\"prompt\": \"...\"}", where);
                fprintf(stderr, "generate: %s\n", e.msg);
                cJSON_Delete(j);
                free(data);
                for (int i = 0; i < P; i++) free(texts[i]);
                free(texts);
                goto done;
            }
            if (P == cap) texts = realloc(texts, sizeof(char *) * (cap *= 2));
            texts[P++] = strdup(p->valuestring);
            cJSON_Delete(j);
        }
        free(data);
        if (P == 0) {
            fprintf(stderr, "generate: %s has no prompts\n", prompts_file);
            free(texts);
            goto done;
        }
    } else if (prompt) {
        texts = malloc(sizeof(char *));
        texts[0] = strdup(prompt);
        P = 1;
    } else {
        P = 1;
    }
    prompt_ids = calloc(P, sizeof(int *));
    prompt_lens = calloc(P, sizeof(int));
    for (int p = 0; p < P; p++) {
        if (ids_arg) {
            if (parse_ids(ids_arg, &prompt_ids[0], &prompt_lens[0])) {
                fprintf(stderr, "generate: --ids must be a list of non-negative integers\n");
                goto done;
            }
            continue;
        }
        char *rendered = NULL;
        if (raw) rendered = strdup(texts[p]);
        else {
            ChatMessage msgs[2];
            int nm = 0;
            if (system) msgs[nm++] = (ChatMessage){"system", system};
            msgs[nm++] = (ChatMessage){"user", texts[p]};
            if (chat_template_render(tok, msgs, nm, 1, think, &rendered, &e)) {
                fprintf(stderr, "generate: %s (use --raw for base models)\n", e.msg);
                goto done;
            }
        }
        int r = tokenizer_encode(tok, rendered, strlen(rendered), &prompt_ids[p], &prompt_lens[p], &e);
        free(rendered);
        if (r) {
            fprintf(stderr, "generate: prompt %d: %s\n", p + 1, e.msg);
            goto done;
        }
    }
    out = calloc((size_t)P * G, sizeof(GenSeq));
    double t0 = time_now();
    if (qwen_generate(&m, (const int *const *)prompt_ids, prompt_lens, P, G, &gp, out, &e)) {
        fprintf(stderr, "generate: %s\n", e.msg);
        free(out);
        out = NULL;
        goto done;
    }
    double dt = time_now() - t0;
    long total = 0;
    for (int i = 0; i < P * G; i++) {
        GenSeq *s = &out[i];
        total += s->n;
        char *text = NULL;
        if (tok && tokenizer_decode(tok, s->tokens, s->n, 1, &text, &e)) {
            fprintf(stderr, "generate: decode: %s\n", e.msg);
            goto done;
        }
        if (as_json || P * G > 1 || !tok) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "prompt_index", s->prompt);
            cJSON_AddNumberToObject(o, "sample", i % G);
            if (text) cJSON_AddStringToObject(o, "completion", text);
            cJSON *ids = cJSON_AddArrayToObject(o, "ids");
            for (int j = 0; j < s->n; j++) cJSON_AddItemToArray(ids, cJSON_CreateNumber(s->tokens[j]));
            cJSON_AddStringToObject(o, "finish_reason", finish_name(s->finish));
            char *line = cJSON_PrintUnformatted(o);
            printf("%s\n", line);
            free(line);
            cJSON_Delete(o);
        } else {
            printf("%s\n", text);
        }
        free(text);
    }
    fprintf(stderr, "generate: %d sequences, %ld tokens in %.2f s (%.1f tokens/s)\n", P * G, total, dt,
            dt > 0 ? total / dt : 0.0);
    rc = 0;
done:
    if (out) gen_seqs_free(out, P * G);
    free(out);
    if (texts) {
        for (int i = 0; i < P; i++) free(texts[i]);
        free(texts);
    }
    if (prompt_ids)
        for (int i = 0; i < P; i++) free(prompt_ids[i]);
    free(prompt_ids);
    free(prompt_lens);
    if (tok) tokenizer_free(tok);
    qwen_cuda_free(gp.cuda);
    qwen_model_free(&m);
    return rc;
}
