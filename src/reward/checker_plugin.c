// plugin:PATH.so — a shared library exporting pionrl_reward_score (see reward_plugin.h).
// It runs in-process, so it cannot be timed out; a non-zero return or a non-finite score is a
// failure (score 0, counted).
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reward/checker.h"

typedef struct {
    void *handle;
    RewardPluginFn fn;
} Plugin;


static int score_plugin(RewardChecker *c, const char *prompt, const char *completion, const char *answer,
                        RewardResult *out) {
    Plugin *p = c->state;
    int rc = p->fn(prompt, completion, answer, out);
    out->pred[sizeof out->pred - 1] = 0;
    out->reason[sizeof out->reason - 1] = 0;
    if (rc != 0) {
        if (!out->reason[0]) snprintf(out->reason, sizeof out->reason, "plug-in returned %d", rc);
        return REWARD_FAILED;
    }
    return REWARD_OK;
}

static void destroy_plugin(RewardChecker *c) {
    Plugin *p = c->state;
    if (!p) return;
    if (p->handle) dlclose(p->handle);
    free(p);
}

int checker_plugin_init(RewardChecker *c, const char *path, Error *err) {
    if (!*path) return error_set(err, "reward: plugin: needs a path (plugin:/path/to/checker.so)");
    // dlopen searches the library path for names without a slash; a user's file is meant here.
    char local[4096];
    if (!strchr(path, '/')) {
        if (snprintf(local, sizeof local, "./%s", path) >= (int)sizeof local)
            return error_set(err, "reward: plugin path too long");
        path = local;
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) return error_set(err, "reward: cannot load plug-in %s: %s", path, dlerror());
    dlerror();
    void *sym = dlsym(h, REWARD_PLUGIN_SYMBOL);
    if (!sym) {
        dlclose(h);
        return error_set(err, "reward: plug-in %s does not export %s (see src/reward/reward_plugin.h)", path,
                         REWARD_PLUGIN_SYMBOL);
    }
    Plugin *p = calloc(1, sizeof *p);
    if (!p) {
        dlclose(h);
        return error_set(err, "reward: out of memory");
    }
    p->handle = h;
    // POSIX allows converting dlsym's void * to a function pointer; memcpy avoids the pedantic warning.
    memcpy(&p->fn, &sym, sizeof p->fn);
    c->state = p;
    c->score = score_plugin;
    c->destroy = destroy_plugin;
    return 0;
}
