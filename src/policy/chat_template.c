// ChatML rendering (Qwen2, Qwen2.5, Qwen3) written out in C instead of running the Jinja template:
// the output is byte-identical to transformers' apply_chat_template for system/user/assistant/tool
// messages without tool definitions. Other template families are refused with a clear error.
#include <stdlib.h>
#include <string.h>

#include "policy/tokenizer_internal.h"

typedef struct {
    char *buf;
    size_t len, cap;
    int oom;
} Str;

static void put(Str *s, const char *text, size_t n) {
    if (s->oom) return;
    if (buf_reserve(&s->buf, &s->cap, s->len + n)) {
        s->oom = 1;
        return;
    }
    memcpy(s->buf + s->len, text, n);
    s->len += n;
    s->buf[s->len] = 0;
}

static void puts_(Str *s, const char *text) { put(s, text, strlen(text)); }

static int starts_with(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }
static int ends_with(const char *s, const char *p) {
    size_t a = strlen(s), b = strlen(p);
    return a >= b && !strcmp(s + a - b, p);
}

// Last occurrence of needle in hay, or NULL.
static const char *find_last(const char *hay, const char *needle) {
    const char *last = NULL;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) last = p;
    return last;
}

// Qwen3 splits an assistant message "…<think>R</think>C" into reasoning R and content C (the Jinja
// template's split('</think>') logic). [rb, re) and [cb, ce) are spans of msg.
static void split_reasoning(const char *msg, const char **rb, const char **re, const char **cb, const char **ce) {
    const char *first_close = strstr(msg, "</think>");
    const char *last_close = find_last(msg, "</think>");
    *cb = last_close + strlen("</think>");
    *ce = msg + strlen(msg);
    while (**cb == '\n') (*cb)++;  // content.lstrip('\n')
    // reasoning = msg.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n')
    const char *head_end = first_close;
    while (head_end > msg && head_end[-1] == '\n') head_end--;
    const char *open = NULL;
    for (const char *p = strstr(msg, "<think>"); p && p < head_end; p = strstr(p + 1, "<think>"))
        if (p + strlen("<think>") <= head_end) open = p;
    *rb = open ? open + strlen("<think>") : msg;
    while (*rb < head_end && **rb == '\n') (*rb)++;
    *re = head_end;
}

static int render_chatml(const Tokenizer *t, const ChatMessage *msgs, int n, int add_generation_prompt,
                         int enable_thinking, Str *out, Error *err) {
    for (int i = 0; i < n; i++) {
        const char *r = msgs[i].role;
        if (!r || !msgs[i].content) return error_set(err, "chat message %d has no role or no content", i);
        // Qwen2.5/Qwen3 templates drop other roles silently; refuse them instead. The plain ChatML
        // template (Qwen2) renders any role the same way.
        if (t->chat_tool_response && strcmp(r, "system") && strcmp(r, "user") && strcmp(r, "assistant") &&
            strcmp(r, "tool"))
            return error_set(err, "chat message %d: role '%s' is not supported (system, user, assistant, tool)", i, r);
        if (!r[0] || strchr(r, '\n')) return error_set(err, "chat message %d: role '%s' is not a valid role", i, r);
    }
    int first = 0;
    if (n > 0 && !strcmp(msgs[0].role, "system")) {
        puts_(out, "<|im_start|>system\n");
        puts_(out, msgs[0].content);
        puts_(out, "<|im_end|>\n");
        first = 1;
    } else if (t->chat_default_system) {
        puts_(out, "<|im_start|>system\n");
        puts_(out, t->chat_default_system);
        puts_(out, "<|im_end|>\n");
    }
    // The last user turn that is not a wrapped tool response: assistant turns after it keep their
    // reasoning (Qwen3), earlier ones lose it.
    int last_query = n - 1;
    for (int i = n - 1; i >= 0; i--) {
        const char *c = msgs[i].content;
        if (!strcmp(msgs[i].role, "user") &&
            !(starts_with(c, "<tool_response>") && ends_with(c, "</tool_response>"))) {
            last_query = i;
            break;
        }
    }
    for (int i = first; i < n; i++) {
        const char *role = msgs[i].role, *c = msgs[i].content;
        if (!strcmp(role, "user") || !strcmp(role, "system") || !t->chat_tool_response) {
            puts_(out, "<|im_start|>");
            puts_(out, role);
            puts_(out, "\n");
            puts_(out, c);
            puts_(out, "<|im_end|>\n");
        } else if (!strcmp(role, "assistant")) {
            puts_(out, "<|im_start|>assistant\n");
            if (t->chat_strip_reasoning && strstr(c, "</think>")) {
                const char *rb, *re, *cb, *ce;
                split_reasoning(c, &rb, &re, &cb, &ce);
                // reasoning_content.strip('\n') (the lstrip part is done already)
                while (re > rb && re[-1] == '\n') re--;
                if (i > last_query && (i == n - 1 || re > rb)) {
                    puts_(out, "<think>\n");
                    put(out, rb, (size_t)(re - rb));
                    puts_(out, "\n</think>\n\n");
                }
                put(out, cb, (size_t)(ce - cb));
            } else if (t->chat_strip_reasoning && i > last_query && i == n - 1) {
                // The last assistant turn after the query always shows a (here empty) think block.
                puts_(out, "<think>\n\n</think>\n\n");
                const char *cb = c;
                while (*cb == '\n') cb++;
                puts_(out, cb);
            } else {
                puts_(out, c);
            }
            puts_(out, "<|im_end|>\n");
        } else {  // tool: consecutive tool messages share one user turn
            if (i == 0 || strcmp(msgs[i - 1].role, "tool")) puts_(out, "<|im_start|>user");
            puts_(out, "\n<tool_response>\n");
            puts_(out, c);
            puts_(out, "\n</tool_response>");
            if (i == n - 1 || strcmp(msgs[i + 1].role, "tool")) puts_(out, "<|im_end|>\n");
        }
    }
    if (add_generation_prompt) {
        puts_(out, "<|im_start|>assistant\n");
        if (t->chat_thinking && !enable_thinking) puts_(out, "<think>\n\n</think>\n\n");
    }
    return 0;
}

int chat_template_render(const Tokenizer *t, const ChatMessage *msgs, int n, int add_generation_prompt,
                         int enable_thinking, char **text, Error *err) {
    *text = NULL;
    if (n < 0 || (n > 0 && !msgs)) return error_set(err, "chat_template_render: bad message list");
    if (t->chat == CHAT_UNSUPPORTED) return error_set(err, "chat template not supported: %s", t->chat_note);
    Str out = {0};
    puts_(&out, "");
    if (t->chat == CHAT_CHATML) {
        if (render_chatml(t, msgs, n, add_generation_prompt, enable_thinking, &out, err)) {
            free(out.buf);
            return -1;
        }
    } else {
        // No template (base model): the contents, concatenated as they are.
        for (int i = 0; i < n; i++) {
            if (!msgs[i].content) {
                free(out.buf);
                return error_set(err, "chat message %d has no content", i);
            }
            puts_(&out, msgs[i].content);
        }
    }
    if (out.oom) {
        free(out.buf);
        return error_set(err, "out of memory");
    }
    *text = out.buf;
    return 0;
}

const char *chat_template_family(const Tokenizer *t) {
    switch (t->chat) {
    case CHAT_CHATML: return t->chat_thinking ? "chatml-qwen3" : "chatml";
    case CHAT_UNSUPPORTED: return "unsupported";
    default: return "plain";
    }
}
