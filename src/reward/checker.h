// Internal: the checker object behind reward.h and the constructors of each checker kind.
#ifndef PIONRL_REWARD_CHECKER_H
#define PIONRL_REWARD_CHECKER_H

#include "reward/reward.h"

struct RewardChecker {
    char name[512];
    // Fills out (score, pred, reason) and returns a REWARD_* status.
    int (*score)(RewardChecker *c, const char *prompt, const char *completion, const char *answer,
                 RewardResult *out);
    void (*destroy)(RewardChecker *c);
    void *state;
    int io_bound;  // waits on a network or a process: batch with opt.parallel_requests threads
    int cheap;     // a built-in checker (microseconds per item): threads only for large batches
    RewardOptions opt;
    long calls, failures, timeouts;  // updated atomically
};

// Each returns 0 and fills c->score/destroy/state, or -1 with err set.
int checker_plugin_init(RewardChecker *c, const char *path, Error *err);
int checker_http_init(RewardChecker *c, const char *url, Error *err);
int checker_cmd_init(RewardChecker *c, const char *command, Error *err);

// Shared by the HTTP and command checkers: the request body and the reading of a reply.
// Returns a malloc'd JSON string {"prompt","completion","answer"}, or NULL when out of memory.
char *checker_request_json(const char *prompt, const char *completion, const char *answer);
// Parses {"score": x, "reason"?: "...", "pred"?: "..."}; REWARD_OK or REWARD_FAILED with a reason.
int checker_parse_reply(const char *body, RewardResult *out);

// snprintf into a result field, truncating safely.
void reward_set_text(char *dst, size_t cap, const char *src, size_t len);

#endif
