// Every shipped config in configs/ parses (all keys known, all values in range), so a user's first
// `pionrl train configs/X.json` fails only on what it needs from the machine (model, data).
#include "test.h"

#include <dirent.h>

#include "rl/train_config.h"

static void test_shipped_configs_parse(void) {
    DIR *d = opendir("configs");
    CHECK_MSG(d, "no configs/ directory");
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json")) continue;
        char path[512];
        snprintf(path, sizeof path, "configs/%s", e->d_name);
        TrainConfig c;
        Error err;
        int rc = train_config_load(path, NULL, 0, &c, NULL, &err);
        train_config_free(&c);
        if (rc && strstr(e->d_name, "sft")) continue;  // SFT configs have their own schema
        CHECK_MSG(rc == 0, "%s: %s", path, err.msg);
        n++;
    }
    closedir(d);
    CHECK_MSG(n >= 12, "expected at least the 12 GSM8K/MATH x GRPO/GMPO x AdamW/Muon/Pion configs, found %d", n);
}

static void test_overrides(void) {
    TrainConfig c;
    Error err;
    const char *sets[] = {"optimizer.name=muon", "steps=7", "rollout.temperature=0.6", "run_dir=runs/x"};
    CHECK(train_config_load("configs/gsm8k-grpo-pion.json", sets, 4, &c, NULL, &err) == 0);
    CHECK(c.optim.kind == OPT_MUON && c.steps == 7 && fabsf(c.sampling.temperature - 0.6f) < 1e-6f);
    CHECK(!strcmp(c.run_dir, "runs/x"));
    train_config_free(&c);
    const char *bad[] = {"optimizer.nme=muon"};
    CHECK(train_config_load("configs/gsm8k-grpo-pion.json", bad, 1, &c, NULL, &err) == -1 && strstr(err.msg, "nme"));
    train_config_free(&c);
    const char *bad2[] = {"noequals"};
    CHECK(train_config_load("configs/gsm8k-grpo-pion.json", bad2, 1, &c, NULL, &err) == -1 && strstr(err.msg, "key=value"));
    train_config_free(&c);
}

int main(void) {
    RUN(test_shipped_configs_parse);
    RUN(test_overrides);
    return test_summary("test_configs");
}
