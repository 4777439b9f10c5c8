// Prompt datasets for RLVR: JSONL files mapped to (system prompt, user prompt, gold answer)
// through a field mapping, answer extraction, filters and a prompt template; a deterministic
// shuffled epoch order; a held-out eval split; and a cursor that checkpoints save and restore for
// an exact resume. The chat template itself is the tokenizer's (chat_template_render): the dataset
// only produces the message strings.
#ifndef PIONRL_DATASET_H
#define PIONRL_DATASET_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "core/error.h"
#include "rl/synth.h"

typedef enum {
    ANSWER_AS_IS,   // the answer field's text, trimmed
    ANSWER_GSM8K,   // the text after the last "####", trimmed, thousands commas removed
    ANSWER_BOXED,   // the content of the last \boxed{...} (or \fbox{...}), braces matched
} AnswerExtract;

#define DATASET_MAX_SUBJECTS 16

typedef struct {
    char preset[32];            // "gsm8k", "math" or "" (what the defaults below came from)
    char path[1024];            // training JSONL
    char eval_path[1024];       // held-out JSONL; "" = take eval_count examples from path
    int eval_count;             // size of the held-out split (0 = none; with eval_path: a cap, 0 = all)
    int filter_eval;            // apply the level/subject filters to eval_path too (default 0)
    char question_field[64];
    char answer_field[64];
    AnswerExtract answer_extract;
    char level_field[64];       // MATH: "level" holding "Level 3" or 3
    uint32_t levels;            // bit n set = keep level n (1..31); 0 = no level filter
    char subject_field[64];
    char subjects[DATASET_MAX_SUBJECTS][64];  // keep only these subjects; none = no filter
    int num_subjects;
    char prompt_template[1024]; // must contain {question}; other text, braces included, is literal
    char system_prompt[1024];   // "" = no system message
    uint64_t seed;              // shuffling and the held-out split
    int shuffle;                // 1 = new permutation every epoch; 0 = file order
    int max_examples;           // cap on training examples after filtering (0 = all)
    // Synthetic source (rl/synth.h) instead of a file: an infinite deterministic training stream
    // (example i of stream `seed`) and eval_count fixed held-out problems (stream seed ^ a constant);
    // training problems equal to an eval question are skipped, so the two never overlap.
    int synthetic;
    SynthConfig synth;
} DatasetConfig;

// Default math prompt (Qwen2.5-Math style sentence appended to the user turn).
#define DATASET_MATH_TEMPLATE "{question}\n\nPlease reason step by step, and put your final answer within \\boxed{}."
// GSM8K: verl's examples/data_preprocess/gsm8k.py instruction.
#define DATASET_GSM8K_TEMPLATE "{question} Let's think step by step and output the final answer after \"####\"."

// Fills the generic defaults (no preset): question/answer fields "question"/"answer", answer as
// is, math template, seed 0, shuffle on, no eval split.
void dataset_config_default(DatasetConfig *cfg);
// Applies a built-in preset: "gsm8k" (../shared/data/gsm8k/train.jsonl, test.jsonl as eval,
// fields question/answer with ####, GSM8K template) or "math" (../shared/data/math/train.jsonl,
// test500.jsonl as eval, fields problem/answer, math template). Paths are relative to the working
// directory; override them with path/eval_path.
int dataset_config_preset(DatasetConfig *cfg, const char *name, Error *err);
// Reads a "dataset" config object. Keys: preset (applied first), path, eval_path, eval_count,
// question_field, answer_field, answer_extract ("none"|"gsm8k"|"boxed"), level_field, levels
// (array of 3 / "Level 3", or a range string "3-5"), subject_field, subjects (array of strings),
// filter_eval, prompt_template, system_prompt, seed, shuffle, max_examples, synthetic (an object of
// rl/synth.h keys: min_ops, max_ops, max_operand, allow_sub; replaces path; answers as is; template
// default "Question: {question} Answer:"). Unknown keys are errors.
int dataset_config_from_json(const cJSON *obj, DatasetConfig *cfg, const char *where, Error *err);

typedef struct {
    char *system;   // NULL when there is no system prompt
    char *user;     // the rendered prompt template
    char *answer;   // gold answer after extraction
    char *solution; // the answer field's full text (worked solution; the SFT target)
    int line;       // 1-based line in the source file (for logs)
} DatasetExample;

typedef struct {
    DatasetConfig cfg;
    DatasetExample *train, *eval;
    int num_train, num_eval;
    int skipped_empty_answers;  // rows left out because their gold answer is empty
    uint64_t fingerprint;  // hash of the training prompts and answers in load order
    // Cursor: position within epoch's permutation. order is the permutation of this epoch.
    uint64_t epoch, position;
    int *order;
    uint64_t *eval_hashes;  // synthetic: sorted hashes of the eval questions (kept out of training)
} Dataset;

// Synthetic datasets: num_train is DATASET_SYNTH_WINDOW, a ring of lazily generated slots; the
// cursor's epoch/position address example epoch * window + position of the infinite stream. A
// pointer from dataset_next stays valid for the next DATASET_SYNTH_WINDOW - 1 calls.
#define DATASET_SYNTH_WINDOW 65536
#define DATASET_SYNTH_TEMPLATE "Question: {question} Answer:"

// Loads and prepares everything; rows with an empty gold answer are skipped and counted, every
// other malformed row is an error naming file:line.
int dataset_load(const DatasetConfig *cfg, Dataset *ds, Error *err);
void dataset_free(Dataset *ds);

// The next training example in the epoch order; moves to the next epoch (a new permutation) at
// the end. Never fails for a loaded dataset with num_train > 0.
const DatasetExample *dataset_next(Dataset *ds);

// Cursor state for checkpoints: {"epoch", "position", "seed", "num_train", "fingerprint"}.
cJSON *dataset_cursor_to_json(const Dataset *ds);
// Restores a cursor; fails when seed, size or fingerprint differ from this dataset's (the data
// or its config changed since the checkpoint), naming the field.
int dataset_cursor_from_json(Dataset *ds, const cJSON *obj, Error *err);

// Answer extraction on one string; returns a malloc'd string or NULL with err set.
char *dataset_extract_answer(AnswerExtract how, const char *text, Error *err);
// "Level 3" -> 3, "3" -> 3; 0 when the text ends without a level number ("Level ?").
int dataset_parse_level_text(const char *s);
// Renders a template: every "{question}" is replaced by question. malloc'd; NULL on error.
char *dataset_render_prompt(const char *tmpl, const char *question, Error *err);

#endif
