// pionrl download: a model repository from the Hugging Face Hub (or a mirror), or a math data set
// converted to the JSONL the dataset presets read.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/hub.h"
#include "core/hub_dataset.h"

#define MAX_LIST 64

static void download_usage(FILE *f) {
    fprintf(f,
            "usage: pionrl download MODEL_ID [options]          (e.g. Qwen/Qwen3-1.7B)\n"
            "       pionrl download gsm8k|math|math500 [options]\n"
            "\n"
            "Models: lists the repository through the Hub API and fetches config.json,\n"
            "generation_config.json, the tokenizer files and every *.safetensors shard (plus its index).\n"
            "Transfers run in parallel, resume partial files with HTTP Range requests, are checked\n"
            "against the size and sha256 the Hub lists, and are renamed into place only when complete.\n"
            "The directory that holds the files is printed on stdout.\n"
            "  --revision REV    branch, tag or commit (default main)\n"
            "  --to DIR          plain layout DIR/<file> (default: the Hugging Face cache layout,\n"
            "                    CACHE/models--ORG--NAME/snapshots/COMMIT, shared with huggingface_hub)\n"
            "  --cache-dir DIR   cache root (default $HF_HUB_CACHE, else $HF_HOME/hub,\n"
            "                    else ~/.cache/huggingface/hub)\n"
            "  --include GLOB    fetch the files matching GLOB instead of the default set (repeatable)\n"
            "  --all             fetch every file of the repository\n"
            "  --parallel N      concurrent transfers (default 4)\n"
            "  --retries N       retries of a transfer after a network error or 5xx (default 5)\n"
            "  --verify          re-hash files already on disk instead of trusting their size\n"
            "  --offline         use only files already on disk (also HF_HUB_OFFLINE=1)\n"
            "  --quiet           no progress output\n"
            "\n"
            "Data sets: fetches the public files and writes JSONL:\n"
            "  gsm8k    DIR/gsm8k/train.jsonl, test.jsonl      {question, answer}\n"
            "  math     DIR/math/train.jsonl, test.jsonl       {problem, solution, answer, subject, level,\n"
            "  math500  DIR/math/test500.jsonl                  unique_id}; answer = last \\boxed{}\n"
            "  --to DIR          output root (default data)\n"
            "  --url SPLIT=URL   source of one split (repeatable); else $PIONRL_<SET>_<SPLIT>_URL, e.g.\n"
            "                    PIONRL_GSM8K_TRAIN_URL; defaults:\n"
            "                    gsm8k   %s/{train,test}.jsonl\n"
            "                    math    %s (train/ and test/ members)\n"
            "                    math500 $HF_ENDPOINT%s\n"
            "  --force           fetch the source files again\n"
            "  --offline         convert source files already downloaded\n"
            "\n"
            "Environment: HF_ENDPOINT (mirror, default https://huggingface.co), HF_TOKEN (private or gated\n"
            "repositories), HF_HUB_CACHE / HF_HOME, HF_HUB_OFFLINE, https_proxy / all_proxy / no_proxy.\n",
            HUB_GSM8K_URL_BASE, HUB_MATH_TAR_URL, HUB_MATH500_PATH);
}

static int parse_int(const char *flag, const char *v, int lo, int hi, int *out) {
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < lo || x > hi) {
        fprintf(stderr, "pionrl download: %s expects an integer in [%d, %d], got '%s'\n", flag, lo, hi, v);
        return -1;
    }
    *out = (int)x;
    return 0;
}

int cmd_download(int argc, char **argv) {
    HubOptions o;
    hub_options_default(&o);
    const char *target = NULL, *revision = "main", *to = NULL;
    const char *include[MAX_LIST + 1] = {0}, *urls[MAX_LIST + 1] = {0};
    int ninclude = 0, nurls = 0, all = 0, force = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_val = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            download_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--all")) {
            all = 1;
        } else if (!strcmp(a, "--verify")) {
            o.verify_existing = 1;
        } else if (!strcmp(a, "--offline")) {
            o.offline = 1;
        } else if (!strcmp(a, "--quiet")) {
            o.progress = 0;
        } else if (!strcmp(a, "--force")) {
            force = 1;
        } else if (a[0] == '-' && a[1] == '-') {
            if (!has_val) {
                fprintf(stderr, "pionrl download: %s needs a value (see pionrl download --help)\n", a);
                return 2;
            }
            const char *v = argv[++i];
            if (!strcmp(a, "--revision")) {
                revision = v;
            } else if (!strcmp(a, "--to")) {
                to = v;
            } else if (!strcmp(a, "--cache-dir")) {
                snprintf(o.cache_dir, sizeof o.cache_dir, "%s", v);
            } else if (!strcmp(a, "--include") || !strcmp(a, "--url")) {
                int is_inc = a[2] == 'i';
                int *cnt = is_inc ? &ninclude : &nurls;
                if (*cnt == MAX_LIST) {
                    fprintf(stderr, "pionrl download: too many %s options\n", a);
                    return 2;
                }
                (is_inc ? include : urls)[(*cnt)++] = v;
            } else if (!strcmp(a, "--parallel")) {
                if (parse_int(a, v, 1, 16, &o.parallel) != 0) return 2;
            } else if (!strcmp(a, "--retries")) {
                if (parse_int(a, v, 0, 100, &o.retries) != 0) return 2;
            } else {
                fprintf(stderr, "pionrl download: unknown option '%s' (see pionrl download --help)\n", a);
                return 2;
            }
        } else if (!target) {
            target = a;
        } else {
            fprintf(stderr, "pionrl download: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (!target) {
        download_usage(stderr);
        return 2;
    }
    Error err = {{0}};
    if (hub_dataset_known(target)) {
        if (ninclude || all) {
            fprintf(stderr, "pionrl download: --include/--all apply to model repositories, not data sets\n");
            return 2;
        }
        if (hub_dataset_download(&o, target, to ? to : "data", nurls ? urls : NULL, force, &err) != 0) {
            fprintf(stderr, "pionrl download: %s\n", err.msg);
            return 1;
        }
        return 0;
    }
    if (nurls || force) {
        fprintf(stderr, "pionrl download: --url/--force apply to data sets (gsm8k, math, math500)\n");
        return 2;
    }
    if (!hub_valid_repo_id(target)) {
        fprintf(stderr,
                "pionrl download: '%s' is neither a data set (gsm8k, math, math500) nor a repository id "
                "like Qwen/Qwen3-1.7B\n",
                target);
        return 2;
    }
    HubSelect sel = {ninclude ? include : NULL, all};
    char dir[4096];
    if (hub_download_repo(&o, target, revision, to, &sel, dir, sizeof dir, &err) != 0) {
        fprintf(stderr, "pionrl download: %s\n", err.msg);
        return 1;
    }
    printf("%s\n", dir);
    return 0;
}
