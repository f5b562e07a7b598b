/* The report of `uakd eval` on an SPNv2 model (through the CLI, UAKD_CLI): a two-step model
 * trained on a tiny SPEED+-like dataset is evaluated; eval.json, eval.md and every PNG it links
 * exist, the PNGs decode with the chart and grid sizes, the example grid shows the green
 * ground-truth overlay, and the Markdown table holds the numbers of eval.json (both parsed). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "test_synth_data.h"
#include "uakd/fileio.h"
#include "uakd/image.h"

static char g_root[1024], g_csv[1100], g_model[1024];

static int setup(void) {
    snprintf(g_root, sizeof g_root, "%s", test_tmp("spn_report_ds"));
    const test_synth_spec spec = {UAKD_SYNTH_SPEEDPLUS, 7, 3.0 / 7, 320, 200, 3, 6, 9};
    if (!test_synth_dataset(g_root, &spec)) return 0;
    snprintf(g_csv, sizeof g_csv, "%s/kp.csv", g_root);
    snprintf(g_model, sizeof g_model, "%s", test_tmp("spn_report_model"));
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "%s train --family spnv2 --data %s --keypoints %s --reduced --input 128x128 --batch 2 --steps 2 "
             "--log-every 1 --val-every 1 --threads 1 --out %s >/dev/null 2>&1",
             getenv("UAKD_CLI"), g_root, g_csv, g_model);
    return system(cmd) == 0;
}

static cJSON *read_json(const char *path) {
    void *data = NULL;
    size_t size = 0;
    if (uakd_read_file(path, 1 << 20, &data, &size) != UAKD_OK) return NULL;
    cJSON *j = cJSON_ParseWithLength(data, size);
    free(data);
    return j;
}

static double json_num(const cJSON *o, const char *key) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

/* The cells of the table row whose first cell is `name` (with '*' for a thresholded domain). */
static int table_row(const char *md, const char *name, double cells[5]) {
    char key[128];
    snprintf(key, sizeof key, "\n| %s ", name);
    const char *p = strstr(md, key);
    if (!p) return 0;
    p += strlen(key);
    for (int c = 0; c < 5; c++) {
        p = strchr(p, '|');
        if (!p) return 0;
        char *end;
        cells[c] = strtod(p + 1, &end);
        if (end == p + 1) return 0;
        p = end;
    }
    return 1;
}

static int png_size(const char *dir, const char *name, int *w, int *h, long *green) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    uakd_image im = {0};
    if (uakd_image_read(path, 3, 1, &im) != UAKD_OK) return 0;
    *w = im.width, *h = im.height;
    if (green) {
        *green = 0;
        for (long i = 0; i < (long)im.width * im.height; i++) {
            const uint8_t *q = im.data + 3 * i;
            *green += q[0] < 60 && q[1] > 150 && q[2] < 60;
        }
    }
    uakd_image_free(&im);
    return 1;
}

static void test_report(void) {
    char dir[1200], cmd[6000], path[1400];
    snprintf(dir, sizeof dir, "%s/report", g_model);
    snprintf(cmd, sizeof cmd,
             "%s eval --model %s --data %s --keypoints %s --list validation --examples 2 --out %s --threads 1 "
             ">/dev/null 2>&1",
             getenv("UAKD_CLI"), g_model, g_root, g_csv, dir);
    CHECK(system(cmd) == 0);
    snprintf(path, sizeof path, "%s/eval.json", dir);
    cJSON *j = read_json(path);
    CHECK(j != NULL);
    void *md = NULL;
    size_t md_len = 0;
    snprintf(path, sizeof path, "%s/eval.md", dir);
    CHECK_OK(uakd_read_file(path, 1 << 20, &md, &md_len));
    if (!j || !md) {
        cJSON_Delete(j), free(md);
        return;
    }
    /* the table holds eval.json's numbers at the printed precision */
    const cJSON *d = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "domains"), 0);
    double cells[5];
    CHECK(table_row(md, "synthetic", cells));
    const double images = json_num(d, "images"), ok = json_num(d, "ok");
    CHECK(images == 3);
    CHECK(cells[0] == images);
    CHECK(cells[1] == images - ok);
    CHECK_NEAR(cells[2], json_num(d, "E_T_m"), 0.5e-4 + 1e-12);
    CHECK_NEAR(cells[3], json_num(d, "E_R_deg"), 0.5e-3 + 1e-12);
    CHECK_NEAR(cells[4], json_num(d, "E_pose"), 0.5e-5 + 1e-12);
    CHECK(json_num(d, "E_T_m") > 0 && json_num(d, "E_pose") > 0);
    /* every linked PNG exists and decodes with the chart (800 x 500) or grid size */
    static const char *const charts[] = {"accuracy_translation.png", "accuracy_rotation.png", "training.png",
                                         "validation.png"};
    for (int i = 0; i < 4; i++) {
        char link[64];
        snprintf(link, sizeof link, "](%s)", charts[i]);
        CHECK_MSG(strstr(md, link) != NULL, "eval.md does not link %s", charts[i]);
        int w = 0, h = 0;
        CHECK_MSG(png_size(dir, charts[i], &w, &h, NULL) && w == 800 && h == 500, "%s: %d x %d", charts[i], w, h);
    }
    /* two 320 x 200 images in 384 x 240 cells with 4-pixel gaps */
    CHECK(strstr(md, "](examples_synthetic.png)") != NULL);
    int w = 0, h = 0;
    long green = 0;
    CHECK(png_size(dir, "examples_synthetic.png", &w, &h, &green));
    CHECK_MSG(w == 2 * (384 + 4) + 4 && h == 240 + 8, "grid %d x %d", w, h);
    CHECK_MSG(green > 100, "%ld green pixels of the ground-truth overlay", green);
    cJSON_Delete(j);
    free(md);
    /* --examples 0: no grid; --json elsewhere */
    char dir2[1300], json2[1300];
    snprintf(dir2, sizeof dir2, "%s/report2", g_model);
    snprintf(json2, sizeof json2, "%s/other.json", g_model);
    snprintf(cmd, sizeof cmd,
             "%s eval --model %s --data %s --keypoints %s --list validation --max 1 --examples 0 --out %s --json %s "
             "--threads 1 >/dev/null 2>&1",
             getenv("UAKD_CLI"), g_model, g_root, g_csv, dir2, json2);
    CHECK(system(cmd) == 0);
    j = read_json(json2);
    CHECK(json_num(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "domains"), 0), "images") == 1);
    cJSON_Delete(j);
    snprintf(path, sizeof path, "%s/examples_synthetic.png", dir2);
    FILE *f = fopen(path, "rb");
    CHECK(f == NULL);
    if (f) fclose(f);
    snprintf(path, sizeof path, "%s/eval.md", dir2);
    f = fopen(path, "rb");
    CHECK(f != NULL);
    if (f) fclose(f);
}

int main(void) {
    if (!getenv("UAKD_CLI")) {
        SKIP(test_report, "needs UAKD_CLI (make test sets it)");
        return TEST_END();
    }
    CHECK(setup());
    RUN(test_report);
    return TEST_END();
}
