/* Reports: exact Markdown of tables and report files, atomic writes, the training-log reader on
 * good and malformed fixtures (tests/data/report/), training-curve pixels and accuracy curves. */
#include <dirent.h>
#include <stdint.h>

#include "test.h"
#include "uakd/report.h"

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void test_strbuf(void) {
    uakd_strbuf b = {0};
    for (int i = 0; i < 1000; i++) CHECK_OK(uakd_strbuf_append(&b, "abc"));
    CHECK(b.len == 3000 && strlen(b.s) == 3000 && !memcmp(b.s + 2997, "abc", 3));
    CHECK_OK(uakd_strbuf_printf(&b, "%d-%s", 42, "x"));
    CHECK(b.len == 3004 && !strcmp(b.s + 3000, "42-x"));
    uakd_strbuf_free(&b);
    CHECK(b.s == NULL && b.len == 0);
}

static void test_table_exact(void) {
    const char *header[3] = {"method", "ADD-0.1d (%)", "note"};
    uakd_md_table *t;
    CHECK_OK(uakd_md_table_new(3, header, &t));
    CHECK_OK(uakd_md_table_align(t, 1, UAKD_ALIGN_RIGHT));
    CHECK_OK(uakd_md_table_align(t, 2, UAKD_ALIGN_CENTER));
    CHECK_FAILS(uakd_md_table_text(t, "early"), UAKD_EINVAL); /* before the first row */
    CHECK_OK(uakd_md_table_row(t));
    CHECK_OK(uakd_md_table_text(t, "student"));
    CHECK_OK(uakd_md_table_num(t, 81.899, 2));
    CHECK_OK(uakd_md_table_text(t, "a|b"));
    CHECK_FAILS(uakd_md_table_text(t, "extra"), UAKD_EINVAL);
    CHECK_OK(uakd_md_table_row(t));
    CHECK_OK(uakd_md_table_text(t, "UAKD+PFKD"));
    CHECK_OK(uakd_md_table_pm(t, 89.04, 0.55, 1));
    CHECK_OK(uakd_md_table_row(t));
    CHECK_OK(uakd_md_table_text(t, "none\nyet"));
    CHECK_OK(uakd_md_table_num(t, NAN, 2));
    CHECK_FAILS(uakd_md_table_align(t, 3, UAKD_ALIGN_LEFT), UAKD_EINVAL);
    uakd_strbuf b = {0};
    CHECK_OK(uakd_md_table_format(t, &b));
    const char *want = "| method    | ADD-0.1d (%) | note |\n"
                       "|:----------|-------------:|:----:|\n"
                       "| student   |        81.90 | a\\|b |\n"
                       "| UAKD+PFKD |   89.0 \xc2\xb1 0.6 |      |\n"
                       "| none yet  |            - |      |\n";
    CHECK_MSG(b.s && !strcmp(b.s, want), "got:\n%s", b.s ? b.s : "(null)");
    uakd_strbuf_free(&b);
    uakd_md_table_free(t);
    /* Narrow columns are at least 3 wide; many rows grow the table. */
    const char *h1[1] = {"n"};
    CHECK_OK(uakd_md_table_new(1, h1, &t));
    for (int i = 0; i < 20; i++) {
        CHECK_OK(uakd_md_table_row(t));
        CHECK_OK(uakd_md_table_num(t, i, 0));
    }
    CHECK_OK(uakd_md_table_format(t, &b));
    CHECK(b.s && !strncmp(b.s, "| n   |\n|:----|\n| 0   |\n", 24) && strstr(b.s, "| 19  |\n") && b.len == 22 * 8);
    uakd_strbuf_free(&b);
    uakd_md_table_free(t);
    uakd_md_table *none = NULL;
    CHECK_FAILS(uakd_md_table_new(0, h1, &none), UAKD_EINVAL);
    CHECK(none == NULL);
}

static int tmp_files_left(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));) n += strstr(e->d_name, ".tmp") != NULL;
    closedir(d);
    return n;
}

static void test_report_file(void) {
    uakd_report *r;
    const char *md = test_tmp("report_test.md");
    CHECK_OK(uakd_report_new(md, "Evaluation", &r));
    CHECK_OK(uakd_report_heading(r, "Accuracy"));
    CHECK_OK(uakd_report_text(r, "%d test images, %s.", 12, "LM-O"));
    const char *header[2] = {"method", "ADD"};
    uakd_md_table *t;
    CHECK_OK(uakd_md_table_new(2, header, &t));
    CHECK_OK(uakd_md_table_row(t));
    CHECK_OK(uakd_md_table_text(t, "student"));
    CHECK_OK(uakd_md_table_num(t, 0.5, 1));
    CHECK_OK(uakd_report_table(r, t));
    uakd_md_table_free(t);
    uakd_image im = {0};
    CHECK_OK(uakd_image_alloc(&im, 4, 3, 3));
    for (int i = 0; i < 36; i++) im.data[i] = (uint8_t)(7 * i);
    CHECK_OK(uakd_report_image(r, &im, "tiny_plot.png", "a [tiny] plot"));
    CHECK_FAILS(uakd_report_image(r, &im, "../escape.png", "x"), UAKD_EINVAL);
    CHECK_FAILS(uakd_report_image(r, &im, "with space.png", "x"), UAKD_EINVAL);
    CHECK_FAILS(uakd_report_image(r, &im, "plot.jpg", "x"), UAKD_EINVAL);
    CHECK_OK(uakd_report_write(r));
    const char *want = "# Evaluation\n"
                       "\n## Accuracy\n"
                       "\n12 test images, LM-O.\n"
                       "\n| method  | ADD |\n|:--------|:----|\n| student | 0.5 |\n"
                       "\n![a (tiny) plot](tiny_plot.png)\n";
    CHECK(!strcmp(uakd_report_markdown(r), want));
    const char *got = slurp(md);
    CHECK_MSG(got && !strcmp(got, want), "file:\n%s", got ? got : "(missing)");
    uakd_image back = {0};
    CHECK_OK(uakd_image_read(test_tmp("tiny_plot.png"), 3, 1, &back));
    CHECK(back.data && back.width == 4 && !memcmp(back.data, im.data, 36));
    CHECK(tmp_files_left(test_tmp("")) == 0);
    uakd_image_free(&back);
    uakd_image_free(&im);
    uakd_report_free(r);

    /* A report into a missing directory fails on write and leaves nothing behind. */
    CHECK_OK(uakd_report_new(test_tmp("no_such_dir/r.md"), "x", &r));
    CHECK_FAILS(uakd_report_write(r), UAKD_EIO);
    uakd_report_free(r);
}

static void test_log_good(void) {
    uakd_train_log log;
    CHECK_OK(uakd_train_log_read("tests/data/report/train_good.jsonl", &log));
    CHECK(log.rows == 4 && log.nkeys == 6);
    if (log.rows != 4 || log.nkeys != 6) return;
    const char *keys[6] = {"loss", "cls", "pose", "lr", "img_s", "kd_ot"};
    for (int k = 0; k < 6; k++) CHECK(!strcmp(log.keys[k], keys[k]) && uakd_train_log_key(&log, keys[k]) == k);
    CHECK(uakd_train_log_key(&log, "step") == -1 && uakd_train_log_key(&log, "nope") == -1);
    const double step[4] = {0, 10, 20, 30};
    for (int r = 0; r < 4; r++) CHECK(log.step[r] == step[r]);
    const double *loss = log.values, *cls = log.values + 4, *lr = log.values + 12, *img_s = log.values + 16,
                 *kd = log.values + 20;
    CHECK(loss[0] == 2.5 && loss[1] == 1.2 && loss[2] == 0.8 && isnan(loss[3])); /* null */
    CHECK(cls[3] == 0.1 && lr[1] == 1e-3 && lr[3] == 5e-4);
    CHECK(img_s[2] == 39.8 && isnan(img_s[3])); /* missing */
    CHECK(isnan(kd[0]) && isnan(kd[1]) && kd[2] == 0.25 && isnan(kd[3]));
    uakd_train_log_free(&log);
    CHECK(log.keys == NULL && log.rows == 0);
}

static void check_bad_log(const char *name, uakd_status want, const char *where) {
    char path[256];
    snprintf(path, sizeof path, "tests/data/report/%s", name);
    uakd_train_log log;
    CHECK_FAILS(uakd_train_log_read(path, &log), want);
    CHECK_MSG(strstr(uakd_last_error(), where) != NULL, "message \"%s\" lacks \"%s\"", uakd_last_error(), where);
    CHECK(log.keys == NULL && log.values == NULL);
}

static void test_log_malformed(void) {
    check_bad_log("train_truncated.jsonl", UAKD_EFORMAT, "train_truncated.jsonl:3:");
    check_bad_log("train_no_step.jsonl", UAKD_EFORMAT, "train_no_step.jsonl:2:");
    check_bad_log("train_string.jsonl", UAKD_EFORMAT, "train_string.jsonl:3: key \"phase\"");
    check_bad_log("train_fractional_step.jsonl", UAKD_EFORMAT, "train_fractional_step.jsonl:2:");
    check_bad_log("train_duplicate.jsonl", UAKD_EFORMAT, "train_duplicate.jsonl:1: key \"loss\" appears twice");
    check_bad_log("train_two_objects.jsonl", UAKD_EFORMAT, "train_two_objects.jsonl:1:");
    check_bad_log("train_empty.jsonl", UAKD_EFORMAT, "no lines");
    check_bad_log("missing.jsonl", UAKD_EIO, "missing.jsonl");
}

static int near_color(const uakd_image *im, int x, int y, const uint8_t rgb[3], int tol) {
    if (x < 0 || y < 0 || x >= im->width || y >= im->height) return 0;
    const uint8_t *p = im->data + ((size_t)y * im->width + x) * 3;
    for (int c = 0; c < 3; c++)
        if (abs((int)p[c] - (int)rgb[c]) > tol) return 0;
    return 1;
}

static void test_training_curves(void) {
    uakd_train_log log;
    CHECK_OK(uakd_train_log_read("tests/data/report/train_good.jsonl", &log));
    uakd_image im = {0};
    CHECK_OK(uakd_plot_train_log(&log, NULL, 0, NULL, &im)); /* loss terms, log y */
    CHECK(im.width == 800 && im.height == 500);
    uakd_image_free(&im);
    const char *keys[1] = {"cls"}, *bad[1] = {"nope"};
    uakd_plot_opts o = {.fix_x = 1, .x_max = 30, .fix_y = 1, .y_max = 0.6};
    uakd_plot_frame f = {.left = 0};
    CHECK_FAILS(uakd_plot_train_log(&log, bad, 1, &o, &im), UAKD_EINVAL);
    CHECK_OK(uakd_plot_train_log(&log, keys, 1, &o, &im));
    /* cls: (0, 0.5) (10, 0.3) (20, 0.2) (30, 0.1); check the middle of each segment. A
     * single-series chart with a name keeps the frame of a lines plot with legend. */
    const uakd_plot_series s = {"cls", log.step, log.values + 4, 4};
    uakd_image ref = {0};
    CHECK_OK(uakd_plot_lines(&o, &s, 1, &ref, &f));
    CHECK(ref.data && im.data && !memcmp(ref.data, im.data, (size_t)im.width * im.height * 3));
    uint8_t c0[3];
    uakd_plot_color(0, c0);
    const double mid[3][2] = {{5, 0.4}, {15, 0.25}, {25, 0.15}};
    for (int i = 0; i < 3; i++) {
        double px = f.left + mid[i][0] / 30 * (f.right - f.left), py = f.bottom - mid[i][1] / 0.6 * (f.bottom - f.top);
        CHECK_MSG(near_color(&im, (int)px, (int)py, c0, 50), "segment %d", i);
    }
    uakd_image_free(&ref);
    uakd_image_free(&im);
    uakd_train_log_free(&log);
}

static void test_accuracy_curve(void) {
    const double err[5] = {0.05, 0.1, 0.2, INFINITY, NAN};
    double thr[6], rate[6];
    CHECK_OK(uakd_accuracy_curve(err, 5, 6, 0.5, thr, rate));
    const double want_thr[6] = {0, 0.1, 0.2, 0.3, 0.4, 0.5}, want_rate[6] = {0, 20, 40, 60, 60, 60};
    for (int i = 0; i < 6; i++) {
        CHECK_NEAR(thr[i], want_thr[i], 1e-15);
        CHECK_NEAR(rate[i], want_rate[i], 1e-12); /* "below": an error equal to the threshold fails */
    }
    CHECK_FAILS(uakd_accuracy_curve(err, 0, 6, 0.5, thr, rate), UAKD_EINVAL);
    CHECK_FAILS(uakd_accuracy_curve(err, 5, 1, 0.5, thr, rate), UAKD_EINVAL);
}

int main(void) {
    RUN(test_strbuf);
    RUN(test_table_exact);
    RUN(test_report_file);
    RUN(test_log_good);
    RUN(test_log_malformed);
    RUN(test_training_curves);
    RUN(test_accuracy_curve);
    return TEST_END();
}
