// The JSON exchanged with HTTP and command checkers: {"prompt","completion","answer"} out,
// {"score": x, "reason"?: s, "pred"?: s} back (x a finite number, or true/false for 1/0).
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "reward/checker.h"

char *checker_request_json(const char *prompt, const char *completion, const char *answer) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    char *text = NULL;
    if (cJSON_AddStringToObject(o, "prompt", prompt ? prompt : "") &&
        cJSON_AddStringToObject(o, "completion", completion ? completion : "") &&
        cJSON_AddStringToObject(o, "answer", answer ? answer : ""))
        text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

int checker_parse_reply(const char *body, RewardResult *out) {
    cJSON *o = cJSON_Parse(body);
    if (!o) {
        snprintf(out->reason, sizeof out->reason, "reply is not JSON");
        return REWARD_FAILED;
    }
    int st = REWARD_FAILED;
    const cJSON *score = cJSON_GetObjectItemCaseSensitive(o, "score");
    if (!cJSON_IsObject(o)) {
        snprintf(out->reason, sizeof out->reason, "reply is not a JSON object");
    } else if (!cJSON_IsBool(score) && (!cJSON_IsNumber(score) || !isfinite(score->valuedouble))) {
        snprintf(out->reason, sizeof out->reason, "reply has no finite number \"score\"");
    } else {
        out->score = cJSON_IsBool(score) ? (cJSON_IsTrue(score) ? 1.0 : 0.0) : score->valuedouble;  // true = 1
        st = REWARD_OK;
        const cJSON *reason = cJSON_GetObjectItemCaseSensitive(o, "reason");
        const cJSON *pred = cJSON_GetObjectItemCaseSensitive(o, "pred");
        if (cJSON_IsString(reason)) reward_set_text(out->reason, sizeof out->reason, reason->valuestring, strlen(reason->valuestring));
        if (cJSON_IsString(pred)) reward_set_text(out->pred, sizeof out->pred, pred->valuestring, strlen(pred->valuestring));
    }
    cJSON_Delete(o);
    return st;
}
