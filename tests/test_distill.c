/* Tests of the distillation module: ensemble directories (scan, designation, strict JSON, the CLI
 * skipping finished members), teacher masses per method, the teacher pass (mean, variance, u),
 * finite-difference checks of the hook's wiring (L_pred into the student's offset and logit maps
 * and L_feat into its FPN features, plan held constant), and end-to-end tiny distillations on the
 * training loop (uakd+pfkd with a trained adapter; adlp+fkd).
 *
 * Fixture: a 16-image synthetic BOP dataset and two 2-step Tiny-H members (width 16) whose
 * classification bias is raised to 2 so that every cell passes the 0.1 confidence threshold
 * (real teachers are confident after training; two steps are not enough). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "test.h"
#include "test_cmd.h"
#include "test_json.h"
#include "test_synth_data.h"
#include "uakd/backend.h"
#include "uakd/distill.h"
#include "uakd/fileio.h"
#include "uakd/synth.h"
#include "uakd/train.h"
#include "uakd/uncertainty.h"

static char g_ds[1024], g_ens[1024];
static int g_ready;

static void train_config(uakd_train_config *c, const char *out, uint64_t seed, int width, int steps) {
    uakd_train_config_default(c);
    c->data_root = g_ds;
    c->variant = "darknet-tiny-h";
    c->width = width;
    c->tower_convs = 1;
    c->input_size = 64;
    c->batch = 2;
    c->steps = steps;
    c->seed = seed;
    c->val_split = NULL;
    c->out_dir = out;
    c->cache_bytes = 0;
}

static int setup(void) {
    if (g_ready) return g_ready > 0;
    g_ready = -1;
    snprintf(g_ds, sizeof g_ds, "%s", test_tmp("distill_ds"));
    snprintf(g_ens, sizeof g_ens, "%s", test_tmp("distill_ens"));
    static const test_synth_spec spec = {.format = UAKD_SYNTH_BOP, .count = 16, .val_fraction = 0.2, .width = 160,
                                         .height = 120, .depth_min = 300, .depth_max = 500, .seed = 1};
    if (!test_synth_dataset(g_ds, &spec)) return fprintf(stderr, "synth: %s\n", uakd_last_error()), 0;
    mkdir(g_ens, 0777);
    for (int e = 0; e < 2; e++) {
        char md[1100], w[1200];
        snprintf(md, sizeof md, "%s/member_%d", g_ens, e);
        uakd_train_config c;
        train_config(&c, md, 1 + (uint64_t)e, 16, 2);
        uakd_train_result r;
        if (uakd_train_run(&c, &r) != UAKD_OK) return fprintf(stderr, "train: %s\n", uakd_last_error()), 0;
        uakd_model_info info;
        uakd_wdrnet *m;
        if (uakd_model_open(md, 1, &info, &m) != UAKD_OK) return 0;
        const uakd_param *bias = uakd_net_param_find(uakd_wdrnet_net(m), "head.cls_logits.bias");
        if (bias) bias->data[0] = 2.0f;
        snprintf(w, sizeof w, "%s/model.safetensors", md);
        uakd_status st = bias ? uakd_wdrnet_save(m, w) : UAKD_EINVAL;
        uakd_wdrnet_free(m);
        if (st != UAKD_OK) return 0;
    }
    uakd_ensemble_info info;
    if (uakd_ensemble_scan(g_ens, 2, 1, &info) != UAKD_OK || uakd_ensemble_write(g_ens, &info) != UAKD_OK) return 0;
    g_ready = 1;
    return 1;
}

static void touch(const char *dir, const char *name, const char *text) {
    char p[1200];
    mkdir(dir, 0777);
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (f) fputs(text, f), fclose(f);
}

static void test_ensemble_dir(void) {
    char root[1024], m0[1100], m1[1100], m2[1100];
    snprintf(root, sizeof root, "%s", test_tmp("distill_fake"));
    mkdir(root, 0777);
    snprintf(m0, sizeof m0, "%s/member_0", root);
    snprintf(m1, sizeof m1, "%s/member_1", root);
    snprintf(m2, sizeof m2, "%s/member_2", root);
    touch(m0, "model.safetensors", "");
    touch(m0, "train_log.jsonl", "{\"step\": 5, \"val_add_01\": 30.5}\n{\"step\": 6, \"loss\": 1}\n");
    touch(m1, "model.safetensors", "");
    touch(m1, "train_log.jsonl", "{\"step\": 5, \"val_add_01\": 20}\n{\"step\": 9, \"val_add_01\": 50.25}\n");
    touch(m2, "checkpoint.safetensors", "");
    uakd_ensemble_info info, back;
    CHECK_OK(uakd_ensemble_scan(root, 4, 7, &info));
    CHECK(info.members == 4);
    CHECK(info.m[0].finished && info.m[1].finished && !info.m[2].finished && !info.m[3].finished);
    CHECK(info.m[2].has_checkpoint && !info.m[3].has_checkpoint);
    CHECK(info.m[0].seed == 7 && info.m[3].seed == 10);
    CHECK_NEAR(info.m[0].val_add_01, 30.5, 0);
    CHECK_NEAR(info.m[1].val_add_01, 50.25, 0);
    CHECK(isnan(info.m[2].val_add_01));
    CHECK(info.pfkd_member == 1);
    CHECK_OK(uakd_ensemble_write(root, &info));
    CHECK_OK(uakd_ensemble_read(root, &back));
    CHECK(back.members == 4 && back.pfkd_member == 1 && back.m[3].seed == 10 && back.m[1].finished);
    /* recorded seeds win over a new base seed */
    CHECK_OK(uakd_ensemble_scan(root, 4, 100, &info));
    CHECK(info.m[0].seed == 7);
    /* strict reading */
    char bad[1100];
    snprintf(bad, sizeof bad, "%s/bad", root);
    touch(bad, "ensemble.json",
          "{\"format\": \"uakd-ensemble\", \"version\": 1, \"pfkd_member\": 0, \"extra\": 1, \"members\": "
          "[{\"dir\": \"member_0\", \"seed\": 1, \"finished\": true, \"val_add_01\": null}]}");
    CHECK_FAILS(uakd_ensemble_read(bad, &back), UAKD_EFORMAT);
    touch(bad, "ensemble.json",
          "{\"format\": \"uakd-ensemble\", \"version\": 1, \"pfkd_member\": 3, \"members\": "
          "[{\"dir\": \"member_0\", \"seed\": 1, \"finished\": true, \"val_add_01\": null}]}");
    CHECK_FAILS(uakd_ensemble_read(bad, &back), UAKD_EFORMAT);
    CHECK_FAILS(uakd_ensemble_scan(root, 0, 1, &info), UAKD_EINVAL);
}

/* The CLI on a finished ensemble trains nothing: both members are skipped, files untouched. */
static void test_ensemble_cli_skips(void) {
    const char *cli = getenv("UAKD_CLI");
    if (!cli || !setup()) {
        CHECK(setup());
        return;
    }
    static char out[1 << 16];
    char cmd[4096], w[1200];
    snprintf(w, sizeof w, "%s/member_0/model.safetensors", g_ens);
    struct stat before, after;
    CHECK(stat(w, &before) == 0);
    snprintf(cmd, sizeof cmd,
             "%s ensemble --members 2 --out %s -- --data %s --obj 1 --variant darknet-tiny-h --width 16 --tower 1 "
             "--input 64 --batch 2 --steps 2 --val-split none --threads 1 2>&1",
             cli, g_ens, g_ds);
    CHECK(test_run_cmd(cmd, out, sizeof out) == 0);
    CHECK(strstr(out, "member_0 finished, skipped") && strstr(out, "member_1 finished, skipped"));
    CHECK(stat(w, &after) == 0 && after.st_mtime == before.st_mtime && after.st_size == before.st_size);
}

/* `uakd uncertainty` with --tau auto: its JSON holds the scan's counts and tau^2 = the median s2
 * the library computes for the same crops. */
static void test_uncertainty_cli(void) {
    const char *cli = getenv("UAKD_CLI");
    if (!cli || !setup()) {
        CHECK(setup());
        return;
    }
    char cmd[8192], js[1100], png[1100];
    snprintf(js, sizeof js, "%s", test_tmp("distill_unc.json"));
    snprintf(png, sizeof png, "%s", test_tmp("distill_unc.png"));
    snprintf(cmd, sizeof cmd, "%s uncertainty --ensemble %s --data %s --max 5 --tau auto --json %s --png %s --threads 1 "
             ">/dev/null 2>&1", cli, g_ens, g_ds, js, png);
    CHECK(system(cmd) == 0);
    cJSON *j = test_read_json(js);
    CHECK(j != NULL);
    if (!j) return;
    uakd_teachers *t = NULL;
    CHECK_OK(uakd_teachers_open(g_ens, 8, -1, &t));
    const int obj = 1;
    uakd_unc_scan s;
    memset(&s, 0, sizeof s);
    double tau2 = 0;
    if (t) CHECK_OK(uakd_teachers_scan(t, g_ds, "train", NULL, &obj, 1, 0.1, 5, &s));
    if (s.cells) CHECK_OK(uakd_unc_auto_tau2((int)(s.cells * 8), s.s2, &tau2));
    CHECK_NEAR(cJSON_GetObjectItemCaseSensitive(j, "crops")->valuedouble, 5, 0);
    CHECK_NEAR(cJSON_GetObjectItemCaseSensitive(j, "teacher_cells")->valuedouble, (double)s.cells, 0);
    CHECK_NEAR(cJSON_GetObjectItemCaseSensitive(j, "tau2_px2")->valuedouble, tau2, 1e-9 * tau2);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "corners")) == 8);
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(j, "u_histogram"), *it;
    double total = 0;
    cJSON_ArrayForEach(it, h) total += it->valuedouble;
    CHECK(cJSON_GetArraySize(h) == 10 && total == (double)s.cells * 8);
    struct stat st;
    CHECK(stat(png, &st) == 0 && st.st_size > 0);
    cJSON_Delete(j);
    uakd_unc_scan_free(&s);
    uakd_teachers_free(t);
}

/* An interrupted ensemble: member_1 lost its final model but has its checkpoint; rerunning the
 * command skips member_0 and resumes member_1 (which then has its model again). */
static void test_ensemble_cli_resume(void) {
    const char *cli = getenv("UAKD_CLI");
    if (!cli || !setup()) {
        CHECK(setup());
        return;
    }
    static char out[1 << 16];
    char dir[1100], cmd[8192], w[1200];
    snprintf(dir, sizeof dir, "%s", test_tmp("distill_ens_resume"));
    snprintf(cmd, sizeof cmd,
             "%s ensemble --members 2 --out %s -- --data %s --obj 1 --variant darknet-tiny-h --width 8 --tower 1 "
             "--input 64 --batch 2 --steps 2 --val-split none --threads 1 2>&1",
             cli, dir, g_ds);
    CHECK(test_run_cmd(cmd, out, sizeof out) == 0);
    snprintf(w, sizeof w, "%s/member_1/model.safetensors", dir);
    CHECK(remove(w) == 0);
    uakd_ensemble_info info;
    CHECK_OK(uakd_ensemble_scan(dir, 2, 1, &info));
    CHECK(info.m[0].finished && !info.m[1].finished && info.m[1].has_checkpoint);
    CHECK(test_run_cmd(cmd, out, sizeof out) == 0);
    CHECK(strstr(out, "member_0 finished, skipped") && strstr(out, "member_1 (seed 2), resuming"));
    struct stat st;
    CHECK(stat(w, &st) == 0);
}

/* `uakd ablate` end to end on the tiny ensemble: a table with the members and both methods, a
 * rerun reuses the finished runs, and changed settings stop it with the difference named. */
static void test_ablate_cli(void) {
    const char *cli = getenv("UAKD_CLI");
    if (!cli || !setup()) {
        CHECK(setup());
        return;
    }
    static char s[1 << 20];
    char dir[2][1100], cmd[8192];
    snprintf(dir[0], sizeof dir[0], "%s", test_tmp("distill_ablate"));
    snprintf(dir[1], sizeof dir[1], "%s", test_tmp("distill_ablate_seq"));
    snprintf(cmd, sizeof cmd, "rm -rf %s %s", dir[0], dir[1]);
    CHECK(system(cmd) == 0);
    /* 0: two parallel runs (--jobs 2); 1: the same command reuses them; 2: other settings stop it;
     * 3: one run after the other in a second directory */
    for (int run = 0; run < 4; run++) {
        snprintf(cmd, sizeof cmd,
                 "%s ablate --ensemble %s --out %s --methods student,uakd --seeds 1 --eval-max 3 --tau 2 --jobs %d -- "
                 "--data %s --obj 1 --variant darknet-tiny-h --width 8 --tower 1 --input 64 --batch 2 --steps %d "
                 "--val-split none --threads 1 2>&1",
                 cli, g_ens, dir[run == 3], run == 3 ? 1 : 2, g_ds, run == 2 ? 3 : 2);
        const int rc = test_run_cmd(cmd, s, sizeof s);
        if (run == 0 || run == 3)
            CHECK_MSG(rc == 0 && strstr(s, "| teacher member_0 ") && strstr(s, "| teacher member_1 ") &&
                          strstr(s, "| student ") && strstr(s, "| uakd "), "%s", s);
        if (run == 1) CHECK_MSG(rc == 0 && strstr(s, "student_seed1 finished with the same settings, reused") &&
                                    strstr(s, "uakd_seed1 finished with the same settings, reused"), "%s", s);
        if (run == 2) CHECK_MSG(rc != 0 && strstr(s, "steps: recorded 2, now 3"), "%s", s);
    }
    /* the parallel runs wrote their logs and the same weights as the sequential ones */
    for (int m = 0; m < 2; m++) {
        const char *name = m ? "uakd_seed1" : "student_seed1";
        snprintf(cmd, sizeof cmd, "grep -q 'step 2/2' %s/%s.log && cmp -s %s/%s/model.safetensors %s/%s/model.safetensors",
                 dir[0], name, dir[0], name, dir[1], name);
        CHECK_MSG(system(cmd) == 0, "%s", name);
    }
}

static void test_masses(void) {
    uakd_distill_config c;
    uakd_distill_config_default(&c);
    CHECK(c.method == UAKD_DISTILL_UAKD_PFKD && c.gamma_p == 5 && c.gamma_f == 0.1 && c.lambda == 0.5 && c.tau2 == 1 &&
          c.region == 11);
    CHECK_NEAR(uakd_distill_teacher_mass(&c, 0.2f, 0.6f), 0.5 * 0.8 + 0.5 * 0.6, 1e-7);
    c.lambda = 1;
    CHECK_NEAR(uakd_distill_teacher_mass(&c, 0.2f, 0.6f), 0.8, 1e-7);
    c.method = UAKD_DISTILL_UAKD;
    c.lambda = 0;
    CHECK_NEAR(uakd_distill_teacher_mass(&c, 0.2f, 0.6f), 0.6, 1e-7);
    c.lambda = 0.5;
    c.method = UAKD_DISTILL_ADLP;
    CHECK(uakd_distill_teacher_mass(&c, 0.2f, 0.6f) == 0.6f); /* confidence alone */
    c.method = UAKD_DISTILL_ADLP_FKD;
    CHECK(uakd_distill_teacher_mass(&c, 0.9f, 0.3f) == 0.3f);
    c.method = UAKD_DISTILL_PFKD;
    CHECK_NEAR(uakd_distill_teacher_mass(&c, 0.9f, 0.3f), 1.0, 0); /* uniform */
    uakd_distill_method m;
    CHECK_OK(uakd_distill_method_parse("adlp+fkd", &m));
    CHECK(m == UAKD_DISTILL_ADLP_FKD && !strcmp(uakd_distill_method_name(m), "adlp+fkd"));
    CHECK_FAILS(uakd_distill_method_parse("fkd", &m), UAKD_EINVAL);
    c.lambda = 2;
    CHECK_FAILS(uakd_distill_config_check(&c), UAKD_EINVAL);
}

/* A student, two images with a box in front of the camera, positives from the assignment. */
typedef struct rig {
    uakd_wdrnet *student;
    uakd_wdr_targets *t;
    uakd_wdr_maps maps;
    uakd_wdr_grads grads;
    uint8_t mask[64 * 64];
} rig;

static int rig_new(rig *r, int width) {
    memset(r, 0, sizeof *r);
    uakd_wdrnet_config mc;
    uakd_wdrnet_config_default(&mc, "darknet-tiny-h");
    mc.width = width, mc.tower_convs = 1, mc.input_size = 64, mc.max_batch = 2, mc.training = 1;
    if (uakd_wdrnet_new(&mc, &r->student) != UAKD_OK) return 0;
    uakd_rng rng;
    uakd_rng_seed(&rng, 5);
    uakd_wdrnet_init(r->student, &rng);
    uakd_net *net = uakd_wdrnet_net(r->student);
    float *in = uakd_net_out(net, uakd_wdrnet_input(r->student));
    for (int i = 0; i < 2 * 3 * 64 * 64; i++) in[i] = (float)uakd_rng_normal(&rng);
    if (uakd_wdrnet_forward(r->student, 2, 1) != UAKD_OK) return 0;
    uakd_wdrnet_maps(r->student, 2, &r->maps);
    uakd_wdrnet_grads(r->student, &r->grads);
    const uakd_wdr_levels *lv = uakd_wdrnet_levels(r->student);
    if (uakd_wdr_targets_new(lv, 2, 1, &r->t) != UAKD_OK) return 0;
    memset(r->mask, 1, sizeof r->mask);
    uakd_wdr_object objs[2];
    const double bmin[3] = {-40, -40, -40}, bmax[3] = {40, 40, 40}, R[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    const double K[9] = {100, 0, 32, 0, 100, 32, 0, 0, 1};
    for (int b = 0; b < 2; b++) {
        memset(&objs[b], 0, sizeof objs[b]);
        const double t[3] = {3.0 * b, -2.0, 400};
        objs[b].cls = 0;
        objs[b].diameter = 139;
        objs[b].mask = r->mask;
        if (uakd_wdr_object_set_box(&objs[b], bmin, bmax, R, t, K) != UAKD_OK) return 0;
    }
    uakd_wdr_config wc;
    uakd_wdr_config_default(&wc);
    if (uakd_wdr_assign(r->t, &wc, objs, &rng) != UAKD_OK) return 0;
    return r->t->npos > 0;
}

static void rig_zero_grads(rig *r) {
    const uakd_wdr_levels *lv = uakd_wdrnet_levels(r->student);
    for (int l = 0; l < lv->n; l++) {
        memset(r->grads.logits[l], 0, sizeof(float) * 2 * lv->gh[l] * lv->gw[l]);
        memset(r->grads.offsets[l], 0, sizeof(float) * 2 * 16 * lv->gh[l] * lv->gw[l]);
    }
}

static void rig_free(rig *r) {
    uakd_wdrnet_free(r->student);
    uakd_wdr_targets_free(r->t);
}

static uakd_status run_hook(uakd_distill *d, rig *r, double terms[2], int *n_seeds) {
    uakd_train_hook_ctx ctx = {0, NULL, r->t, r->student, &r->maps, &r->grads, 2, 0, {0}};
    const uakd_train_hook *h = uakd_distill_hook(d);
    if (h->extra_net) uakd_net_zero_grad(h->extra_net);
    uakd_status st = h->step(h->user, &ctx, terms);
    if (n_seeds) *n_seeds = ctx.n_seeds;
    return st;
}

/* gamma_p / V sum_b sum_k sum_ij pi_ij (a'_i / a_i) |x_i - y_j|^2 with the hook's last plans held
 * constant, x from the (perturbed) maps; row scale a'/a models a changed student logit. */
static double pred_const(const uakd_distill *d, const rig *r, double gamma_p, int lidx, float a_ratio) {
    const uakd_teacher_preds *tp = uakd_distill_teacher_preds(d);
    float pos[64 * 16], logit[64];
    double total = 0;
    int V = 0, toff = 0;
    for (int b = 0; b < 2; b++) {
        int n = 0;
        uakd_wdr_student_local(r->t, &r->maps, b, pos, logit, NULL, 64, &n);
        const int m = tp->m[b];
        if (n > 0 && m > 0) V++;
        for (int k = 0; k < 8 && n > 0 && m > 0; k++) {
            int pn, pm;
            const float *plan = uakd_distill_plan(d, b, k, &pn, &pm);
            float x[64 * 2], y[64 * 2], *pl = malloc(sizeof(float) * (size_t)n * m);
            for (int i = 0; i < n; i++) x[2 * i] = pos[16 * i + 2 * k], x[2 * i + 1] = pos[16 * i + 2 * k + 1];
            for (int j = 0; j < m; j++) y[2 * j] = tp->y[(toff + j) * 16 + 2 * k], y[2 * j + 1] = tp->y[(toff + j) * 16 + 2 * k + 1];
            for (int q = 0; q < n * m; q++) pl[q] = plan[q] * (b == 0 && q / m == lidx ? a_ratio : 1.0f);
            total += uakd_kd_plan_cost(n, x, m, y, pl, 0, NULL);
            free(pl);
        }
        toff += m;
    }
    return V ? gamma_p * total / V : 0;
}

static void test_teacher_pass_and_fd(void) {
    if (!setup()) {
        CHECK(0);
        return;
    }
    rig r;
    CHECK(rig_new(&r, 8));
    uakd_distill_config cfg;
    uakd_distill_config_default(&cfg);
    cfg.region = 5;
    uakd_wdrnet_config mc = *uakd_wdrnet_config_of(r.student);
    uakd_distill *d = NULL;
    CHECK_OK(uakd_distill_new(&cfg, g_ens, &mc, &d));
    if (!d) return rig_free(&r);
    CHECK(uakd_distill_adapter(d) != NULL); /* 8 student channels, 16 teacher channels */
    rig_zero_grads(&r);
    double terms[2];
    int seeds = 0;
    CHECK_OK(run_hook(d, &r, terms, &seeds));
    CHECK(seeds == uakd_wdrnet_levels(r.student)->n);
    CHECK(isfinite(terms[0]) && terms[0] > 0 && isfinite(terms[1]) && terms[1] > 0);
    /* teacher pass: means are the ensemble-mean corners, u = tanh(s2) at tau = 1 */
    const uakd_teacher_preds *tp = uakd_distill_teacher_preds(d);
    CHECK(tp->images == 2 && tp->m[0] > 0 && tp->m[1] > 0);
    double e = 0, su = 0;
    for (int j = 0; j < tp->total; j++)
        for (int k = 0; k < 8; k++) {
            e = fmax(e, fabs(tp->y[j * 16 + 2 * k] * 64.0 - tp->cells[j].corners[2 * k]));
            su += tp->s2[j * 8 + k];
            CHECK_NEAR(tp->u[j * 8 + k], tanh(tp->s2[j * 8 + k]), 1e-6);
        }
    CHECK(e < 1e-3);
    CHECK(su > 0); /* members differ */
    CHECK_NEAR(terms[0], pred_const(d, &r, 5.0, -1, 1), 1e-4 * terms[0]);

    /* L_pred: an offset entry of the first positive cell (corner 3, dy) */
    const uakd_wdr_pos *p = &r.t->pos[0];
    const uakd_wdr_levels *lv = uakd_wdrnet_levels(r.student);
    const int gw = lv->gw[p->level], gh = lv->gh[p->level];
    const size_t oi = ((size_t)(p->image * 16 + 8 + 3) * gh + p->row) * gw + p->col;
    const size_t li = ((size_t)p->image * gh + p->row) * gw + p->col;
    const double g_off = r.grads.offsets[p->level][oi], g_log = r.grads.logits[p->level][li];
    float *off = (float *)r.maps.offsets[p->level];
    const float h = 1e-3f, o0 = off[oi];
    off[oi] = o0 + h;
    const double lp = pred_const(d, &r, 5.0, -1, 1);
    off[oi] = o0 - h;
    const double lm = pred_const(d, &r, 5.0, -1, 1);
    off[oi] = o0;
    const double fd = (lp - lm) / (2.0 * h);
    CHECK_MSG(fabs(fd - g_off) <= 2e-3 * fabs(fd) + 1e-6, "offset: fd %g analytic %g", fd, g_off);
    CHECK(fabs(g_off) > 1e-8);
    /* L_pred: the cell's logit through the student mass (plan linear in a_i) */
    const float *lg = r.maps.logits[p->level];
    float dm;
    const float a0 = uakd_kd_student_mass(lg[li], &dm);
    const float ap = uakd_kd_student_mass(lg[li] + 1e-2f, NULL), am = uakd_kd_student_mass(lg[li] - 1e-2f, NULL);
    const double fdl = (pred_const(d, &r, 5.0, 0, ap / a0) - pred_const(d, &r, 5.0, 0, am / a0)) / 2e-2;
    CHECK_MSG(fabs(fdl - g_log) <= 2e-3 * fabs(fdl) + 1e-7, "logit: fd %g analytic %g", fdl, g_log);

    /* L_feat: an entry of the student's FPN map at the positive cell (through the adapter) */
    uakd_net *net = uakd_wdrnet_net(r.student);
    const int fid = uakd_wdrnet_feature_id(r.student, p->level);
    const size_t fi = ((size_t)(p->image * 8 + 2) * gh + p->row) * gw + p->col;
    const double g_feat = uakd_net_grad(net, fid)[fi];
    float *feat = uakd_net_out(net, fid);
    const float hf = 1e-2f, f0 = feat[fi];
    double tp_[2], tm_[2];
    feat[fi] = f0 + hf;
    CHECK_OK(run_hook(d, &r, tp_, NULL));
    feat[fi] = f0 - hf;
    CHECK_OK(run_hook(d, &r, tm_, NULL));
    feat[fi] = f0;
    const double fdf = (tp_[1] - tm_[1]) / (2.0 * hf);
    CHECK_MSG(fabs(fdf - g_feat) <= 2e-3 * fabs(fdf) + 1e-7, "feature: fd %g analytic %g", fdf, g_feat);
    CHECK(fabs(g_feat) > 0);
    CHECK_NEAR(tp_[0], terms[0], 1e-9 * terms[0]); /* the features do not change L_pred */
    uakd_distill_free(d);
    rig_free(&r);
}

static double log_key(const char *dir, const char *key, int *found) {
    char p[1200], line[4096];
    snprintf(p, sizeof p, "%s/train_log.jsonl", dir);
    FILE *f = fopen(p, "r");
    double v = NAN;
    *found = 0;
    while (f && fgets(line, sizeof line, f)) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *s = j ? cJSON_GetObjectItemCaseSensitive(j, key) : NULL;
        if (cJSON_IsNumber(s)) v = s->valuedouble, (*found)++;
        cJSON_Delete(j);
    }
    if (f) fclose(f);
    return v;
}

static void run_distill(uakd_distill_method method, const char *name, int adapter_expected) {
    uakd_distill_config cfg;
    uakd_distill_config_default(&cfg);
    cfg.method = method;
    cfg.region = 5;
    char out[1100];
    snprintf(out, sizeof out, "%s", test_tmp(name));
    uakd_train_config c;
    train_config(&c, out, 3, 8, 3);
    c.log_every = 1;
    uakd_wdrnet_config mc;
    uakd_train_model_config(&c, &mc);
    uakd_distill *d = NULL;
    CHECK_OK(uakd_distill_new(&cfg, g_ens, &mc, &d));
    if (!d) return;
    uakd_net *ad = uakd_distill_adapter(d);
    CHECK((ad != NULL) == adapter_expected);
    int64_t np = 0;
    float *w0 = NULL;
    if (ad) {
        const float *w = uakd_net_params(ad, &np);
        w0 = malloc(sizeof(float) * (size_t)np);
        memcpy(w0, w, sizeof(float) * (size_t)np);
    }
    c.hook = uakd_distill_hook(d);
    uakd_train_result res;
    CHECK_OK(uakd_train_run(&c, &res));
    CHECK(res.steps_done == 3 && isfinite(res.last_loss));
    int np_, nf;
    const double kp = log_key(out, "kd_pred", &np_), kf = log_key(out, "kd_feat", &nf);
    CHECK(np_ == 3 && nf == 3);
    CHECK(isfinite(kp) && kp > 0 && isfinite(kf) && kf > 0);
    if (ad) {
        const float *w = uakd_net_params(ad, NULL);
        double diff = 0;
        for (int64_t i = 0; i < np; i++) diff = fmax(diff, fabs(w[i] - w0[i]));
        CHECK_MSG(diff > 1e-6, "adapter unchanged (max change %g)", diff);
        char p[1200];
        struct stat st;
        snprintf(p, sizeof p, "%s/checkpoint_extra.safetensors", out);
        CHECK(stat(p, &st) == 0);
    }
    free(w0);
    uakd_distill_free(d);
}

static void test_end_to_end(void) {
    if (!setup()) {
        CHECK(0);
        return;
    }
    run_distill(UAKD_DISTILL_UAKD_PFKD, "distill_uakd_pfkd", 1);
    run_distill(UAKD_DISTILL_ADLP_FKD, "distill_adlp_fkd", 1);
}

static void test_scan(void) {
    if (!setup()) {
        CHECK(0);
        return;
    }
    uakd_teachers *t = NULL;
    CHECK_OK(uakd_teachers_open(g_ens, 4, -1, &t));
    if (!t) return;
    CHECK(uakd_teachers_count(t) == 2 && uakd_teachers_feat_member(t) == 0);
    uakd_ensemble_info info;
    CHECK_OK(uakd_ensemble_read(g_ens, &info));
    CHECK(!strcmp(info.architecture, "darknet-tiny-h width 16 tower 1 input 64"));
    const int obj = 1;
    uakd_unc_scan s;
    CHECK_OK(uakd_teachers_scan(t, g_ds, "train", NULL, &obj, 1, 0.1, 6, &s));
    CHECK(s.images == 6 && s.missing == 0 && s.cells >= 6);
    double mn = INFINITY;
    for (long i = 0; i < s.cells * 8; i++) mn = fmin(mn, s.s2[i]);
    CHECK(mn >= 0);
    double tau2 = 0;
    CHECK_OK(uakd_unc_auto_tau2((int)(s.cells * 8), s.s2, &tau2));
    CHECK(tau2 > 0 && isfinite(tau2));
    /* a list file restricts the scan to its images: the 2nd and 4th instances give exactly their
     * rows of the full scan (one instance per image, the crops are not augmented) */
    uakd_unc_scan all, part;
    CHECK_OK(uakd_teachers_scan(t, g_ds, "train", NULL, &obj, 1, 0.1, 0, &all));
    uakd_bop_options bo = {&obj, 1, 0.1};
    uakd_dataset *ds = NULL;
    CHECK_OK(uakd_dataset_load_bop(g_ds, "train", &bo, &ds));
    char list[256];
    snprintf(list, sizeof list, "# two images\n%d %d\n%d/%d\n", ds->instances[1].scene_id, ds->instances[1].image_id,
             ds->instances[3].scene_id, ds->instances[3].image_id);
    const char *lp = test_tmp("distill_scan_list.txt");
    CHECK_OK(uakd_write_file_atomic(lp, list, strlen(list)));
    CHECK_OK(uakd_teachers_scan(t, g_ds, "train", lp, &obj, 1, 0.1, 0, &part));
    CHECK(part.images == 2 && part.cells > 0);
    /* the cells of instances 1 and 3 in the full scan: count cells per crop by rescanning prefixes */
    uakd_unc_scan p1, p2, p3, p4;
    CHECK_OK(uakd_teachers_scan(t, g_ds, "train", NULL, &obj, 1, 0.1, 1, &p1));
    CHECK_OK(uakd_teachers_scan(t, g_ds, "train", NULL, &obj, 1, 0.1, 2, &p2));
    CHECK_OK(uakd_teachers_scan(t, g_ds, "train", NULL, &obj, 1, 0.1, 3, &p3));
    CHECK_OK(uakd_teachers_scan(t, g_ds, "train", NULL, &obj, 1, 0.1, 4, &p4));
    const long n1 = p2.cells - p1.cells, n3 = p4.cells - p3.cells;
    CHECK(part.cells == n1 + n3);
    if (part.cells == n1 + n3 && all.cells >= p4.cells) {
        CHECK(!memcmp(part.s2, all.s2 + 8 * p1.cells, sizeof(float) * 8 * (size_t)n1));
        CHECK(!memcmp(part.s2 + 8 * n1, all.s2 + 8 * p3.cells, sizeof(float) * 8 * (size_t)n3));
    }
    uakd_unc_scan_free(&p1), uakd_unc_scan_free(&p2), uakd_unc_scan_free(&p3), uakd_unc_scan_free(&p4);
    uakd_unc_scan_free(&all), uakd_unc_scan_free(&part);
    snprintf(list, sizeof list, "0 999999\n");
    CHECK_OK(uakd_write_file_atomic(lp, list, strlen(list)));
    CHECK_FAILS(uakd_teachers_scan(t, g_ds, "train", lp, &obj, 1, 0.1, 0, &part), UAKD_EINVAL);
    uakd_dataset_free(ds);
    uakd_unc_scan_free(&s);
    uakd_teachers_free(t);
    CHECK_FAILS(uakd_teachers_open(test_tmp("distill_fake"), 4, -1, &t), UAKD_EINVAL); /* unfinished members */
}

int main(void) {
    uakd_set_num_threads(1); /* tiny nets: threads only add overhead on a loaded machine */
    RUN(test_masses);
    RUN(test_ensemble_dir);
    RUN(test_ensemble_cli_skips);
    RUN(test_ensemble_cli_resume);
    RUN(test_ablate_cli);
    RUN(test_uncertainty_cli);
    RUN(test_teacher_pass_and_fd);
    RUN(test_scan);
    RUN(test_end_to_end);
    return TEST_END();
}
