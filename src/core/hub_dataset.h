// `pionrl download gsm8k|math|math500`: fetch the public files of a math data set and convert them
// to the JSONL the dataset presets read (the layout of ../shared/data):
//   gsm8k   -> DIR/gsm8k/{train,test}.jsonl   {"question", "answer"}            (answer ends "#### N")
//   math    -> DIR/math/{train,test}.jsonl    {"problem", "solution", "answer", "subject", "level",
//   math500 -> DIR/math/test500.jsonl          "unique_id"}  (answer = last \boxed{} of the solution)
// Source URLs: --url SPLIT=URL, else $PIONRL_<DATASET>_<SPLIT>_URL, else the defaults below.
#ifndef PIONRL_HUB_DATASET_H
#define PIONRL_HUB_DATASET_H

#include <stddef.h>

#include "core/error.h"
#include "core/hub.h"

#define HUB_GSM8K_URL_BASE "https://raw.githubusercontent.com/openai/grade-school-math/master/grade_school_math/data"
#define HUB_MATH_TAR_URL "https://people.eecs.berkeley.edu/~hendrycks/MATH.tar"
#define HUB_MATH500_PATH "/datasets/HuggingFaceH4/MATH-500/resolve/main/test.jsonl"  // after HF_ENDPOINT

// 1 for gsm8k, math, math500.
int hub_dataset_known(const char *name);
// NULL-terminated list of a data set's split names ("train", "test"); NULL for an unknown name.
const char *const *hub_dataset_splits(const char *name);
// The source URL of one split: an override "SPLIT=URL" from `overrides` (NULL-terminated, may be
// NULL), else the environment variable PIONRL_<NAME>_<SPLIT>_URL (upper case), else the default.
int hub_dataset_source(const HubOptions *o, const char *name, const char *split, const char *const *overrides,
                       char *url, size_t n, Error *err);
// Downloads (resumable, into DIR/<set>/.source/) and converts every split. force: fetch the source
// files again even when present. With o->offline, converts the source files already there.
int hub_dataset_download(const HubOptions *o, const char *name, const char *to_dir, const char *const *overrides,
                         int force, Error *err);

// Converters (no network). count gets the number of records written (may be NULL).
// GSM8K JSONL (question, answer) -> same fields, validated.
int hub_convert_gsm8k(const char *src, const char *dst, long *count, Error *err);
// MATH: a tar archive of per-problem JSON files (the original MATH.tar: MATH/<split>/<subject>/N.json
// with problem, level, type, solution; only members under <split>/ are taken, in natural order), a
// JSONL file or a JSON array of such records. "type" or "subject" gives the subject; answer is the
// record's "answer" or the last \boxed{} of the solution; records with neither are skipped.
int hub_convert_math(const char *src, const char *split, const char *dst, long *count, long *skipped, Error *err);
// MATH-500 JSONL (problem, solution, answer, subject, level, unique_id) -> same fields, validated.
int hub_convert_math500(const char *src, const char *dst, long *count, Error *err);

// Content of the last \boxed{...} (or \fbox{...}, or "\boxed x") in text, braces matched; 0 when
// found, -1 when absent, unbalanced or longer than n-1 bytes.
int math_last_boxed(const char *text, char *out, size_t n);

#endif
