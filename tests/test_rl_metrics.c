// metrics.jsonl writing, resume truncation, the progress line, and `pionrl report` (loading,
// collapse flags, HTML) on synthetic runs.
#include <cjson/cJSON.h>
#include <sys/stat.h>

#include "core/fileio.h"
#include "rl/metrics.h"
#include "rl/report.h"
#include "test.h"

static char tmpdir[256];

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

static void write_text(const char *path, const char *text) {
    Error err;
    file_write_atomic(path, text, strlen(text), &err);
}

static void test_metrics_writer(void) {
    Error err;
    char dir[512];
    snprintf(dir, sizeof dir, "%s", tmp_path("run_w"));
    CHECK(dir_create(dir, &err) == 0);
    MetricsWriter w;
    CHECK_MSG(metrics_open(&w, dir, &err) == 0, "%s", err.msg);
    for (long step = 1; step <= 3; step++) {
        MetricsLine line;
        CHECK(metrics_line_init(&line, step, &err) == 0);
        CHECK(metrics_set(&line, "reward_mean", 0.25 * step) == 0);
        CHECK(metrics_set(&line, "kl", NAN) == 0);
        CHECK(metrics_set(&line, "grad_norm", INFINITY) == 0);
        CHECK(metrics_set_in(&line, "update_rms", "model.layers.0.mlp.up_proj.weight", 1e-3) == 0);
        CHECK(metrics_set_in(&line, "update_rms", "model.layers.0.mlp.down_proj.weight", 3e-3) == 0);
        CHECK(metrics_set_str(&line, "optimizer", "pion") == 0);
        CHECK(metrics_set_bool(&line, "eval", step == 2) == 0);
        CHECK(metrics_set_int(&line, "tokens", 1000 * step) == 0);
        CHECK(metrics_set(&line, "reward_mean", 0.5 * step) == 0);  // replaces
        CHECK_MSG(metrics_write(&w, &line, &err) == 0, "%s", err.msg);
        metrics_line_free(&line);
    }
    metrics_close(&w);
    char *text = file_read_all(tmp_path("run_w/metrics.jsonl"), NULL, &err);
    CHECK(text != NULL);
    const char *first = "{\"step\":1,\"reward_mean\":0.5,\"kl\":null,\"grad_norm\":null,\"update_rms\":"
                        "{\"model.layers.0.mlp.up_proj.weight\":0.001,\"model.layers.0.mlp.down_proj.weight\":0.003},"
                        "\"optimizer\":\"pion\",\"eval\":false,\"tokens\":1000}\n";
    CHECK_MSG(strncmp(text, first, strlen(first)) == 0, "got %s", text);
    int lines = 0;
    for (char *p = text; *p; p++) lines += *p == '\n';
    CHECK(lines == 3);
    free(text);
    // Resume at step 2: step 3 goes; an incomplete last line (killed mid-write) goes too.
    FILE *f = fopen(tmp_path("run_w/metrics.jsonl"), "a");
    CHECK(f != NULL);
    fputs("{\"step\":4,\"rew", f);
    fclose(f);
    int kept = -1;
    CHECK_MSG(metrics_truncate_after(dir, 2, &kept, &err) == 0, "%s", err.msg);
    CHECK(kept == 2);
    text = file_read_all(tmp_path("run_w/metrics.jsonl"), NULL, &err);
    CHECK(text && strstr(text, "\"step\":2") && !strstr(text, "\"step\":3") && !strstr(text, "\"step\":4"));
    free(text);
    CHECK(metrics_truncate_after(tmp_path("no_such_run"), 2, &kept, &err) == 0 && kept == 0);
    CHECK(metrics_open(&w, tmp_path("no_such_run"), &err) == -1 && strstr(err.msg, "no_such_run/metrics.jsonl"));
}

static void test_standard_keys(void) {
    Error err;
    MetricsLine line;
    CHECK(metrics_line_init(&line, 7, &err) == 0);
    LossStats ls;
    loss_stats_init(&ls);
    ls.loss = 0.5;
    ls.policy_loss = 0.5;
    ls.tokens = 10;
    ls.seqs = 2;
    ls.clip_low = 1;
    ls.clip_high = 2;
    ls.ratio_sum = 10;
    ls.ratio_max = 1.3;
    loss_stats_finish(&ls);
    CHECK(metrics_set_loss_stats(&line, &ls, 0, 0) == 0);
    AdvantageStats as = {4, 1, 0.5, 0.25, 0.2, 0.8};
    CHECK(metrics_set_advantage_stats(&line, &as) == 0);
    char *text = metrics_line_text(&line);
    CHECK_MSG(strcmp(text, "{\"step\":7,\"loss\":0.5,\"policy_loss\":0.5,\"clip_fraction\":0.3,"
                           "\"clip_fraction_low\":0.1,\"clip_fraction_high\":0.2,\"ratio_mean\":1,"
                           "\"ratio_max\":1.3,\"loss_tokens\":10,\"reward_mean\":0.5,\"reward_std\":0.25,"
                           "\"reward_group_std_mean\":0.2,\"zero_variance_groups\":1,"
                           "\"zero_variance_fraction\":0.25,\"advantage_abs_mean\":0.8}") == 0, "%s", text);
    free(text);
    CHECK(metrics_set_loss_stats(&line, &ls, 1, 1) == 0);
    CHECK(cJSON_IsNumber(cJSON_GetObjectItem(line.obj, "kl")) && cJSON_GetObjectItem(line.obj, "seq_ratio_mean"));
    metrics_line_free(&line);
}

static void test_progress(void) {
    char buf[256];
    progress_format(buf, sizeof buf, 12, 200, 0.5123, 0.484, 1234.4, 3725);
    CHECK_MSG(strcmp(buf, "step 12/200 | reward 0.512 | acc 48.4% | 1234 tok/s | ETA 1h02m") == 0, "%s", buf);
    progress_format(buf, sizeof buf, 1, 10, NAN, NAN, NAN, -1);
    CHECK_MSG(strcmp(buf, "step 1/10 | reward - | acc - | - tok/s | ETA -") == 0, "%s", buf);
    progress_format(buf, sizeof buf, 1, 10, 1, 1, 10, 75);
    CHECK(strstr(buf, "ETA 1m15s"));
    // Not a terminal: one plain line per update.
    FILE *f = tmpfile();
    CHECK(f != NULL);
    Progress p;
    progress_init(&p, f, 10, 0);
    CHECK(p.tty == 0);
    progress_update(&p, 1, 0.5, 0.25, 100);
    progress_update(&p, 2, 0.5, 0.25, 100);
    progress_finish(&p);
    rewind(f);
    char line[256];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        CHECK(strncmp(line, "step ", 5) == 0 && line[strlen(line) - 1] == '\n' && !strchr(line, '\r'));
        n++;
    }
    CHECK(n == 2);
    fclose(f);
    // Terminal mode: carriage returns, padding over a longer previous line, newline at the end.
    f = tmpfile();
    progress_init(&p, f, 10, 0);
    p.tty = 1;
    progress_update(&p, 1, 0.123456, 0.5, 123456);
    progress_update(&p, 2, 0.5, 0.5, 1);
    progress_finish(&p);
    rewind(f);
    char all[1024] = {0};
    size_t got = fread(all, 1, sizeof all - 1, f);
    fclose(f);
    CHECK(got > 0 && all[0] == '\r' && all[got - 1] == '\n');
    char *second = strchr(all + 1, '\r');
    CHECK(second && strlen(second) - 1 == strlen(strchr(all + 1, '\r')) - 1);
    CHECK(strlen(second + 1) - 1 >= strlen("step 1/10 | reward 0.123 | acc 50.0% | 123456 tok/s | ETA 0s"));
}

// Synthetic run: `kind` 0 healthy, 1 collapsing at step 30, 2 NaN at step 12.
static void make_run(const char *name, int kind, const char *config) {
    Error err;
    const char *dir = tmp_path(name);
    dir_create(dir, &err);
    char path[600];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "w");
    for (int s = 1; s <= 50; s++) {
        double reward = 0.2 + 0.01 * s, entropy = 0.8 - 0.004 * s, len = 200 + s;
        if (kind == 1 && s >= 30) reward = 0.001, entropy = 0.01, len = 12;
        fprintf(f, "{\"step\":%d,\"reward_mean\":%g,\"accuracy\":%g,\"entropy\":%g,\"response_length_mean\":%g,"
                   "\"grad_norm\":%s,\"update_rms\":{\"a\":0.001,\"b\":0.003},\"tokens_per_s\":%d",
                s, reward, reward, entropy, len, kind == 2 && s == 12 ? "null" : "1.5", 1000 + s);
        if (s % 10 == 0) fprintf(f, ",\"eval_accuracy\":%g", kind == 1 && s >= 30 ? 0.0 : 0.3 + 0.002 * s);
        fprintf(f, "}\n");
    }
    fclose(f);
    if (config) {
        snprintf(path, sizeof path, "%s/config.json", dir);
        write_text(path, config);
    }
}

static void test_report_flags(void) {
    Error err;
    make_run("healthy", 0, "{\"optimizer\": {\"name\": \"pion\", \"lr\": 1e-6}}");
    make_run("collapse", 1, "{\"optimizer\": \"muon\"}");
    make_run("nan", 2, "not json");
    ReportRun r;
    CHECK_MSG(report_load_run(tmp_path("healthy/"), &r, &err) == 0, "%s", err.msg);
    CHECK(strcmp(r.optimizer, "pion") == 0 && strcmp(r.label, "healthy (pion)") == 0);
    CHECK(r.num_lines == 50 && r.num_flags == 0);
    CHECK(r.series[RM_EVAL_ACCURACY].n == 5 && r.series[RM_REWARD].n == 50 && r.series[RM_KL].n == 0);
    CHECK_NEAR(r.series[RM_UPDATE_RMS].value[0], 0.002, 1e-12);
    report_run_free(&r);

    CHECK_MSG(report_load_run(tmp_path("collapse"), &r, &err) == 0, "%s", err.msg);
    CHECK(strcmp(r.label, "collapse (muon)") == 0);
    int seen[6] = {0};
    for (int i = 0; i < r.num_flags; i++) {
        seen[r.flags[i].kind]++;
        // Every rule reports the step of the drop itself, not where the 3-point mean caught up.
        if (r.flags[i].kind == FLAG_EVAL_ACCURACY || r.flags[i].kind == FLAG_ACCURACY) CHECK(r.flags[i].step == 30);
        if (r.flags[i].kind == FLAG_ENTROPY) CHECK(r.flags[i].step == 30);
        if (r.flags[i].kind == FLAG_LENGTH) CHECK(r.flags[i].step == 30);
        if (r.flags[i].kind == FLAG_REWARD) CHECK(r.flags[i].step == 30);
    }
    CHECK(seen[FLAG_EVAL_ACCURACY] && seen[FLAG_REWARD] && seen[FLAG_ACCURACY] && seen[FLAG_ENTROPY] &&
          seen[FLAG_LENGTH] && !seen[FLAG_NAN]);
    report_run_free(&r);

    CHECK_MSG(report_load_run(tmp_path("nan"), &r, &err) == 0, "%s", err.msg);
    CHECK(r.optimizer[0] == 0 && strcmp(r.label, "nan") == 0);
    CHECK(r.num_flags == 1 && r.flags[0].kind == FLAG_NAN && r.flags[0].step == 12 &&
          r.flags[0].metric == RM_GRAD_NORM);
    CHECK_MSG(strstr(r.flags[0].text, "grad_norm at step 12"), "%s", r.flags[0].text);
    report_run_free(&r);

    // A single dip that recovers is not a collapse.
    ReportRun dip = {0};
    double steps[8] = {1, 2, 3, 4, 5, 6, 7, 8}, vals[8] = {0.5, 0.5, 0.5, 0.0, 0.5, 0.5, 0.5, 0.5};
    dip.series[RM_EVAL_ACCURACY] = (ReportSeries){steps, vals, 8, 8};
    report_detect_collapse(&dip);
    CHECK(dip.num_flags == 0);
    vals[6] = vals[7] = 0.0;  // falls at the end and stays
    vals[3] = 0.5;
    report_detect_collapse(&dip);
    CHECK(dip.num_flags == 1 && dip.flags[0].step == 7);
}

static void test_report_html(void) {
    Error err;
    const char *dirs[3] = {tmp_path("healthy"), tmp_path("collapse"), tmp_path("nan")};
    const char *out = tmp_path("report.html");
    CHECK_MSG(report_write(dirs, 3, out, "GSM8K <optimizers>", &err) == 0, "%s", err.msg);
    char *html = file_read_all(out, NULL, &err);
    CHECK(html != NULL);
    CHECK(strncmp(html, "<!DOCTYPE html>", 15) == 0 && strstr(html, "</html>"));
    CHECK(strstr(html, "<title>GSM8K &lt;optimizers&gt;</title>"));
    CHECK(strstr(html, "healthy (pion)") && strstr(html, "collapse (muon)"));
    CHECK(strstr(html, "eval accuracy fell to 0 at step 30"));
    CHECK(strstr(html, "NaN/Inf in grad_norm at step 12"));
    int svgs = 0;
    for (const char *p = html; (p = strstr(p, "<svg")); p++) svgs++;
    CHECK_MSG(svgs == 8, "%d charts", svgs);  // the metrics present in the synthetic runs
    CHECK(strstr(html, "Not recorded by any run: kl, clip_fraction, snr, erank, head_norm_spread, loss."));
    // Self-contained: no scripts, and the only URL is the SVG namespace.
    int urls = 0, ns = 0;
    for (const char *p = html; (p = strstr(p, "http")); p++) urls++;
    for (const char *p = html; (p = strstr(p, "http://www.w3.org/2000/svg")); p++) ns++;
    CHECK(!strstr(html, "<script") && urls == ns && ns == svgs);
    CHECK(!strstr(html, "nan,") && !strstr(html, "inf,"));
    free(html);
}

static void test_report_errors(void) {
    Error err;
    ReportRun r;
    CHECK(report_load_run(tmp_path("missing"), &r, &err) == -1 && strstr(err.msg, "missing/metrics.jsonl"));
    char dir[512];
    snprintf(dir, sizeof dir, "%s", tmp_path("bad"));
    dir_create(dir, &err);
    write_text(tmp_path("bad/metrics.jsonl"), "{\"step\":1}\n{\"step\":2,}\n{\"step\":3}\n");
    CHECK(report_load_run(dir, &r, &err) == -1);
    CHECK_MSG(strstr(err.msg, "bad/metrics.jsonl:2: not a JSON object"), "%s", err.msg);
    write_text(tmp_path("bad/metrics.jsonl"), "{\"step\":1}\n{\"reward_mean\":2}\n");
    CHECK(report_load_run(dir, &r, &err) == -1 && strstr(err.msg, ":2: missing numeric 'step'"));
    write_text(tmp_path("bad/metrics.jsonl"), "\n");
    CHECK(report_load_run(dir, &r, &err) == -1 && strstr(err.msg, "no metric lines"));
    // An incomplete last line is ignored; repeated steps keep the last value.
    write_text(tmp_path("bad/metrics.jsonl"),
               "{\"step\":1,\"reward_mean\":0.1}\n{\"step\":2,\"reward_mean\":0.2}\n{\"step\":2,\"reward_mean\":0.3}\n"
               "{\"step\":3,\"rew");
    CHECK_MSG(report_load_run(dir, &r, &err) == 0, "%s", err.msg);
    CHECK(r.dropped_partial == 1 && r.series[RM_REWARD].n == 2 && r.series[RM_REWARD].value[1] == 0.3);
    report_run_free(&r);
    const char *none[1] = {NULL};
    CHECK(report_write(none, 0, tmp_path("x.html"), "t", &err) == -1 && strstr(err.msg, "no run"));
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pionrl_test_rl_metrics_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        printf("cannot create a temporary directory\n");
        return 1;
    }
    RUN(test_metrics_writer);
    RUN(test_standard_keys);
    RUN(test_progress);
    RUN(test_report_flags);
    RUN(test_report_html);
    RUN(test_report_errors);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", tmpdir);
    return test_summary("test_rl_metrics");
}
