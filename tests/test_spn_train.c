/* SPNv2 training on SPEED+ (uakd/spn_train.h) with a tiny reduced network on a tiny dataset
 * written with the synth API: the heatmap loss decreases, the step schedule is logged, an
 * interrupted and resumed run gives the same weights as an uninterrupted one, validations are
 * logged on lines of their own, a set interruption flag stops before the first step, the model files
 * reopen and evaluate consistently, bad config.json files are refused, and the CLI round trip
 * (`uakd train --family spnv2`, `uakd eval` auto-detecting the family) works. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cjson/cJSON.h>

#include "test.h"
#include "test_json.h"
#include "test_synth_data.h"
#include "uakd/backend.h"
#include "uakd/fileio.h"
#include "uakd/spn_train.h"
#include "uakd/synth.h"

static char g_root[1024], g_csv[1100];

static int setup(void) {
    static int done = 0, ok = 0;
    if (done) return ok;
    done = 1;
    snprintf(g_root, sizeof g_root, "%s", test_tmp("spn_train_ds"));
    snprintf(g_csv, sizeof g_csv, "%s/kp.csv", g_root);
    static const test_synth_spec spec = {.format = UAKD_SYNTH_SPEEDPLUS, .count = 12, .val_fraction = 2.0 / 12,
                                         .width = 192, .height = 128, .depth_min = 3, .depth_max = 5, .seed = 3};
    ok = test_synth_dataset(g_root, &spec);
    return ok;
}

static void tiny_config(uakd_spn_train_config *c, const char *out, int64_t steps) {
    uakd_spn_train_config_default(c);
    c->data_root = g_root;
    c->keypoints_csv = g_csv;
    c->out_dir = out;
    const uakd_spnnet_config m = {0.25, 0.34, 16, 2, 2, 11, 128, 128, 0, 0, 0};
    c->model = m;
    c->batch = 2;
    c->steps = steps;
    c->val_list = NULL;
    c->log_every = 1;
    c->ckpt_every = 0;
    c->cache_bytes = 1 << 24;
}

/* Reads "key" of every line of a JSON-lines log that has it (at most cap). */
static int read_log(const char *dir, const char *key, double *v, int64_t *steps, int cap) {
    char path[1200];
    snprintf(path, sizeof path, "%s/train_log.jsonl", dir);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[2048];
    int n = 0;
    while (fgets(line, sizeof line, f) && n < cap) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *x = cJSON_GetObjectItem(j, key), *s = cJSON_GetObjectItem(j, "step");
        if (cJSON_IsNumber(x) && cJSON_IsNumber(s)) v[n] = x->valuedouble, steps[n++] = (int64_t)s->valuedouble;
        cJSON_Delete(j);
    }
    fclose(f);
    return n;
}

static void test_loss_decreases_and_schedule(void) {
    if (!setup()) {
        CHECK(setup());
        return;
    }
    uakd_spn_train_config c;
    tiny_config(&c, test_tmp("spn_train_run"), 40);
    uakd_spn_train_result res;
    CHECK_OK(uakd_spn_train_run(&c, &res));
    CHECK(res.steps_done == 40);
    double loss[64], lr[64];
    int64_t st[64], st2[64];
    const int n = read_log(c.out_dir, "heatmap", loss, st, 64);
    CHECK(n == 40 && read_log(c.out_dir, "lr", lr, st2, 64) == 40);
    if (n != 40) return;
    double first = 0, last = 0;
    for (int k = 0; k < 5; k++) first += loss[k] / 5, last += loss[n - 5 + k] / 5;
    CHECK_MSG(last < 0.5 * first, "heatmap loss %g over the first 5 steps, %g over the last 5", first, last);
    /* log line "step" s reports the step with index s - 1; milestones 30 and 36 of 40 */
    for (int k = 0; k < n; k++) {
        const int64_t s = st2[k] - 1;
        const double want = s < 30 ? 1e-3 : s < 36 ? 1e-4 : 1e-5;
        CHECK_MSG(fabs(lr[k] - want) < 1e-12, "step %lld lr %g, want %g", (long long)s, lr[k], want);
    }
}

static int stop_at_3(const uakd_train_progress *p, void *user) {
    (void)user;
    return p->step == 3;
}

static int load_params(const char *dir, float **out, int64_t *count) {
    uakd_spn_model_info info;
    uakd_spnnet *m = NULL;
    if (uakd_spn_model_open(dir, 1, &info, &m) != UAKD_OK) return 0;
    float *p = uakd_net_params(m->net, count);
    *out = malloc(sizeof(float) * (size_t)*count);
    memcpy(*out, p, sizeof(float) * (size_t)*count);
    uakd_spnnet_free(m);
    return 1;
}

/* With and without drop-connect (whose masks come from the checkpointed loop stream): a run
 * stopped at step 3 and resumed ends with the weights of the uninterrupted run, bit for bit; the
 * drop-connect run's weights differ from the plain run's. */
static void test_resume_is_exact(void) {
    if (!setup()) {
        CHECK(setup());
        return;
    }
    static const double rates[2] = {0, 0.5};
    float *plain = NULL;
    int64_t nplain = 0;
    for (int k = 0; k < 2; k++) {
        uakd_spn_train_config a, b;
        char da[64], db[64];
        snprintf(da, sizeof da, "spn_train_straight_%d", k);
        snprintf(db, sizeof db, "spn_train_resumed_%d", k);
        tiny_config(&a, test_tmp(da), 6);
        a.model.drop_connect = rates[k];
        CHECK_OK(uakd_spn_train_run(&a, NULL));
        tiny_config(&b, test_tmp(db), 6);
        b.model.drop_connect = rates[k];
        b.progress = stop_at_3;
        CHECK_FAILS(uakd_spn_train_run(&b, NULL), UAKD_EINTERRUPTED);
        b.progress = NULL;
        b.resume = 1;
        uakd_spn_train_result res;
        CHECK_OK(uakd_spn_train_run(&b, &res));
        CHECK(res.steps_done == 3);
        float *pa = NULL, *pb = NULL;
        int64_t na = 0, nb = 0;
        CHECK(load_params(a.out_dir, &pa, &na) && load_params(b.out_dir, &pb, &nb));
        CHECK_MSG(na == nb && na > 1000 && pa && pb && !memcmp(pa, pb, sizeof(float) * (size_t)na),
                  "drop-connect %g: the resumed run differs", rates[k]);
        if (k == 0) plain = pa, nplain = na;
        else CHECK(plain && na == nplain && memcmp(pa, plain, sizeof(float) * (size_t)na) != 0);
        if (k == 1) free(pa);
        free(pb);
        double loss[16];
        int64_t steps[16];
        CHECK(read_log(b.out_dir, "loss", loss, steps, 16) == 6); /* no duplicated lines after the resume */
        CHECK(steps[5] == 6);
    }
    free(plain);
}

/* Validation every 2 steps of 3 on the 2 validation images: each on a line of its own after the
 * step's line ({"step", "val_e_t", "val_e_r_deg", "val_e_pose", "val_rejected"}, no loss). */
static void test_validation_log(void) {
    if (!setup()) {
        CHECK(setup());
        return;
    }
    uakd_spn_train_config c;
    tiny_config(&c, test_tmp("spn_train_val"), 3);
    c.val_list = "validation";
    c.val_every = 2;
    c.log_every = 2;
    uakd_spn_train_result res;
    CHECK_OK(uakd_spn_train_run(&c, &res));
    CHECK(res.val.images == 2 && res.steps_done == 3);
    char path[1200], line[2048];
    snprintf(path, sizeof path, "%s/train_log.jsonl", c.out_dir);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (!f) return;
    static const int want_step[4] = {2, 2, 3, 3}, want_val[4] = {0, 1, 0, 1};
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *s = cJSON_GetObjectItem(j, "step");
        const int val = cJSON_IsNumber(cJSON_GetObjectItem(j, "val_e_t")) &&
                        cJSON_IsNumber(cJSON_GetObjectItem(j, "val_e_r_deg")) &&
                        cJSON_IsNumber(cJSON_GetObjectItem(j, "val_e_pose")) &&
                        cJSON_GetObjectItem(j, "val_rejected") != NULL;
        const int terms =
            cJSON_IsNumber(cJSON_GetObjectItem(j, "loss")) && cJSON_IsNumber(cJSON_GetObjectItem(j, "heatmap"));
        if (n < 4) {
            CHECK_MSG(cJSON_IsNumber(s) && s->valueint == want_step[n], "line %d: %s", n, line);
            CHECK_MSG(val == want_val[n] && terms == !want_val[n], "line %d: %s", n, line);
        }
        n++;
        cJSON_Delete(j);
    }
    fclose(f);
    CHECK(n == 4);
}

/* An interruption flag already set: a checkpoint at step 0, no final model, EINTERRUPTED. */
static void test_interrupt_flag(void) {
    if (!setup()) {
        CHECK(setup());
        return;
    }
    static volatile sig_atomic_t stop = 1;
    uakd_spn_train_config c;
    tiny_config(&c, test_tmp("spn_train_stop"), 3);
    c.interrupt = &stop;
    uakd_spn_train_result res;
    CHECK_FAILS(uakd_spn_train_run(&c, &res), UAKD_EINTERRUPTED);
    CHECK(res.steps_done == 0);
    char path[1200];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", c.out_dir);
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    if (f) fclose(f);
    snprintf(path, sizeof path, "%s/model.safetensors", c.out_dir);
    f = fopen(path, "rb");
    CHECK(f == NULL);
    if (f) fclose(f);
}

static void test_open_and_evaluate(void) {
    if (!setup()) {
        CHECK(setup());
        return;
    }
    const char *dir = test_tmp("spn_train_run"); /* written by the first test */
    CHECK(uakd_spn_model_is(dir));
    uakd_spn_model_info info;
    uakd_spnnet *m = NULL;
    CHECK_OK(uakd_spn_model_open(dir, 2, &info, &m));
    if (!m) return;
    CHECK(info.num_keypoints == 11 && info.model.in_w == 128 && info.keypoints[9][2] == 0.2591);
    uakd_dataset *ds = NULL;
    CHECK_OK(uakd_dataset_load_speedplus(g_root, "synthetic", "validation", g_csv, &ds));
    uakd_spn_config sc;
    uakd_spn_config_for(&info.model, &sc);
    uakd_spn_eval_stats s;
    uakd_spn_eval_sample samples[2];
    CHECK_OK(uakd_spn_evaluate(m, &sc, ds, NULL, 0, 0, NULL, NULL, &s, samples));
    CHECK(s.images == 2);
    int total = 0;
    for (int k = 0; k < UAKD_SPN_OUTCOMES; k++) total += s.outcomes[k];
    CHECK(total == 2);
    const double mean = (samples[0].score.e_pose + samples[1].score.e_pose) / 2;
    CHECK_NEAR(s.E_pose, mean, 1e-12);
    for (int i = 0; i < 2; i++)
        if (samples[i].pose.outcome != UAKD_SPN_OK) CHECK_NEAR(samples[i].score.e_pose, 1 + M_PI, 1e-12);
    uakd_dataset_free(ds);
    uakd_spnnet_free(m);
}

static void test_bad_config(void) {
    const char *dir = test_tmp("spn_bad_config");
    char path[1200], cmd[1400];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    CHECK(system(cmd) == 0);
    snprintf(path, sizeof path, "%s/config.json", dir);
    remove(path); /* from an earlier run */
    CHECK(uakd_spn_model_is(dir) == 0);
    const char *bad = "{\"family\": \"spnv2\", \"model\": {\"width_mult\": 1, \"depth_mult\": 1, \"bifpn_width\": 64,"
                      " \"bifpn_layers\": 3, \"head_depth\": 3, \"keypoints\": 11, \"in_w\": 768, \"in_h\": 512,"
                      " \"group_norm\": 0, \"large_backbone\": 0}, \"keypoints\": [], \"colour\": 1}";
    CHECK_OK(uakd_write_file_atomic(path, bad, strlen(bad)));
    CHECK(uakd_spn_model_is(dir));
    uakd_spn_model_info info;
    CHECK_FAILS(uakd_spn_model_info_read(dir, &info, NULL, 0), UAKD_EFORMAT); /* unknown key */
    const char *few = "{\"family\": \"spnv2\", \"model\": {\"width_mult\": 1, \"depth_mult\": 1, \"bifpn_width\": 64,"
                      " \"bifpn_layers\": 3, \"head_depth\": 3, \"keypoints\": 11, \"in_w\": 768, \"in_h\": 512,"
                      " \"group_norm\": 0, \"large_backbone\": 0}, \"keypoints\": [[0, 0, 0]]}";
    CHECK_OK(uakd_write_file_atomic(path, few, strlen(few)));
    CHECK_FAILS(uakd_spn_model_info_read(dir, &info, NULL, 0), UAKD_EFORMAT); /* 1 keypoint for 11 maps */
}

static void test_cli(void) {
    const char *cli = getenv("UAKD_CLI");
    if (!setup()) {
        CHECK(setup());
        return;
    }
    char cmd[8192], out[1100], json[1200];
    snprintf(out, sizeof out, "%s", test_tmp("spn_cli_run"));
    snprintf(cmd, sizeof cmd,
             "%s train --family spnv2 --data %s --keypoints %s --reduced --input 128x128 --batch 2 --steps 3 "
             "--threads 1 --out %s >/dev/null 2>&1",
             cli, g_root, g_csv, out);
    CHECK(system(cmd) == 0);
    snprintf(json, sizeof json, "%s/e.json", out);
    snprintf(cmd, sizeof cmd, "%s eval --model %s --data %s --keypoints %s --json %s --threads 1 >/dev/null 2>&1", cli, out,
             g_root, g_csv, json);
    CHECK(system(cmd) == 0);
    cJSON *j = test_read_json(json);
    const cJSON *d0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "domains"), 0);
    CHECK(cJSON_GetObjectItem(d0, "images") && cJSON_GetObjectItem(d0, "images")->valueint == 2);
    CHECK(cJSON_IsNumber(cJSON_GetObjectItem(d0, "E_pose")));
    cJSON_Delete(j);
    snprintf(cmd, sizeof cmd, "%s train --family spnv2 --data %s --keypoints %s --input 100x128 --out %s >/dev/null 2>&1",
             cli, g_root, g_csv, out);
    CHECK(WEXITSTATUS(system(cmd)) == 2); /* not a multiple of 128 */
}

int main(void) {
    uakd_set_num_threads(1);
    RUN(test_loss_decreases_and_schedule);
    RUN(test_resume_is_exact);
    RUN(test_validation_log);
    RUN(test_interrupt_flag);
    RUN(test_open_and_evaluate);
    RUN(test_bad_config);
    if (getenv("UAKD_CLI")) RUN(test_cli);
    else SKIP(test_cli, "UAKD_CLI not set (run through make test)");
    return TEST_END();
}
