// The RLVR training loop: rollouts -> rewards -> group advantages -> GRPO/GMPO loss over
// micro-batches -> one optimizer step (num_iterations steps per rollout batch), with metrics,
// periodic eval, atomic checkpoints (model in Hugging Face layout + optimizer + data cursor) and
// exact resume. Layout of a run directory:
//   RUN_DIR/config.json            the config the run was started with (after --set overrides)
//   RUN_DIR/metrics.jsonl          one line per step (rl/metrics.h)
//   RUN_DIR/checkpoints/step-N/    config.json, model.safetensors (fp32), tokenizer files,
//                                  optimizer.safetensors, trainer_state.json
//   RUN_DIR/checkpoints/latest     name of the newest complete checkpoint
#ifndef PIONRL_TRAINER_H
#define PIONRL_TRAINER_H

#include <signal.h>

#include <cjson/cJSON.h>

#include "core/error.h"
#include "rl/train_config.h"

typedef struct {
    int resume;                         // continue from RUN_DIR/checkpoints/latest
    volatile sig_atomic_t *stop;        // set asynchronously (Ctrl-C): checkpoint and return
    int quiet;                          // no progress line
    int plan_only;                      // print the memory plan (stdout) and return before training
} TrainOptions;

// Runs the config to cfg->steps. Returns 0 when done or stopped cleanly (a checkpoint was written).
int trainer_run(const TrainConfig *cfg, const cJSON *cfg_json, const TrainOptions *opt, Error *err);

// Newest complete checkpoint of a run: writes its directory to out. -1 when there is none.
int trainer_latest_checkpoint(const char *run_dir, char *out, size_t n, Error *err);

#endif
