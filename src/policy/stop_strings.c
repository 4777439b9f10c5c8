#include "policy/stop_strings.h"

#include <stdlib.h>
#include <string.h>

int stop_strings_check(void *ctx, int seq, const int *tokens, int n) {
    const StopStrings *s = ctx;
    if (!s->tok || s->num_stops == 0) return 0;
    // A match ending at the newest token spans at most strlen(stop) tokens (every token decodes to
    // at least one byte, a few more for a multi-byte character split across tokens).
    size_t longest = 0;
    for (int i = 0; i < s->num_stops; i++)
        if (strlen(s->stops[i]) > longest) longest = strlen(s->stops[i]);
    int from = n - (int)longest - 4;
    if (from < 0) from = 0;
    char *text = NULL;
    Error e;
    if (tokenizer_decode(s->tok, tokens + from, n - from, 0, &text, &e)) return 0;
    int hit = 0;
    for (int i = 0; i < s->num_stops && !hit; i++) hit = strstr(text, s->stops[i]) != NULL;
    free(text);
    return hit;
}
