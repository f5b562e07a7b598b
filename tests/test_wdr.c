/* Tests of the WDRNet mathematics: levels and offset coding (hand values), quotas (hand values),
 * target assignment (counts, mask, uniformity, reproducibility), the focal and pose losses and
 * their gradients against PyTorch (tests/data/wdr/parity.json, written by scripts/ref_wdr.py) and
 * against finite differences, inference decoding and teacher cells against the Python rule, the
 * crop -> image mapping, and the student local predictions with their backward. */
#include <cjson/cJSON.h>

#include "test.h"
#include "test_json.h"
#include "uakd/geom.h"
#include "uakd/mesh.h"
#include "uakd/wdr.h"

/* ---------- fixture loading ---------- */


static double *doubles(const cJSON *a, int *n) {
    int m = cJSON_GetArraySize(a);
    double *x = malloc((size_t)(m ? m : 1) * sizeof *x);
    for (int i = 0; i < m; i++) x[i] = cJSON_GetArrayItem(a, i)->valuedouble;
    if (n) *n = m;
    return x;
}

static float *floats(const cJSON *a, int *n) {
    int m = cJSON_GetArraySize(a);
    float *x = malloc((size_t)(m ? m : 1) * sizeof *x);
    for (int i = 0; i < m; i++) x[i] = (float)cJSON_GetArrayItem(a, i)->valuedouble;
    if (n) *n = m;
    return x;
}

static void copy_doubles(const cJSON *a, double *out, int n) {
    for (int i = 0; i < n; i++) out[i] = cJSON_GetArrayItem(a, i)->valuedouble;
}

static double num(const cJSON *o, const char *key) { return cJSON_GetObjectItem(o, key)->valuedouble; }
static const cJSON *item(const cJSON *o, const char *key) { return cJSON_GetObjectItem(o, key); }
static const cJSON *at(const cJSON *a, int i) { return cJSON_GetArrayItem(a, i); }

/* The parity batch: levels, targets (marked from the fixture) and maps. */
typedef struct fixture {
    cJSON *json;
    uakd_wdr_levels lv;
    uakd_wdr_targets *t;
    uakd_wdr_maps m;
    float *logits[2], *offsets[2];
    int nlog[2], noff[2];
} fixture;

static int fixture_parse(fixture *fx) {
    memset(fx, 0, sizeof *fx);
    fx->json = test_read_json("tests/data/wdr/parity.json");
    if (!fx->json) return 0;
    const cJSON *j = fx->json;
    int W = (int)num(j, "in_w"), H = (int)num(j, "in_h"), L = (int)num(j, "levels"), N = (int)num(j, "n"),
        C = (int)num(j, "c");
    if (uakd_wdr_levels_init(&fx->lv, L, W, H) != UAKD_OK) return 0;
    for (int l = 0; l < L; l++) {
        CHECK(fx->lv.gw[l] == (int)at(at(item(j, "grids"), l), 0)->valuedouble);
        CHECK(fx->lv.gh[l] == (int)at(at(item(j, "grids"), l), 1)->valuedouble);
    }
    if (uakd_wdr_targets_new(&fx->lv, N, C, &fx->t) != UAKD_OK) return 0;
    uakd_wdr_object obj[2];
    memset(obj, 0, sizeof obj);
    for (int i = 0; i < N; i++) {
        const cJSON *o = at(item(j, "objects"), i);
        obj[i].cls = (int)num(o, "cls");
        obj[i].diameter = num(o, "diameter");
        copy_doubles(item(o, "K"), obj[i].K, 9);
        copy_doubles(item(o, "corners_cam"), obj[i].corners_cam, 24);
        copy_doubles(item(o, "corners2d"), obj[i].corners2d, 16);
    }
    CHECK_OK(uakd_wdr_targets_reset(fx->t, obj));
    const cJSON *pos = item(j, "positives");
    for (int p = 0; p < cJSON_GetArraySize(pos); p++) {
        const cJSON *q = at(pos, p);
        CHECK_OK(uakd_wdr_targets_mark(fx->t, (int)at(q, 0)->valuedouble, (int)at(q, 1)->valuedouble,
                                       (int)at(q, 2)->valuedouble, (int)at(q, 3)->valuedouble, 1));
    }
    for (int l = 0; l < L; l++) { /* the ignored cells */
        const cJSON *lab = at(item(j, "labels"), l);
        int cells = uakd_wdr_level_cells(&fx->lv, l);
        for (int i = 0; i < cJSON_GetArraySize(lab); i++)
            if (at(lab, i)->valuedouble < 0) {
                int img = i / (C * cells), cell = i % cells;
                CHECK_OK(uakd_wdr_targets_mark(fx->t, img, l, cell % fx->lv.gw[l], cell / fx->lv.gw[l], -1));
            }
        for (int i = 0; i < cJSON_GetArraySize(lab); i++) CHECK(fx->t->label[l][i] == (int)at(lab, i)->valuedouble);
    }
    fx->m.n = N;
    fx->m.c = C;
    for (int l = 0; l < L; l++) {
        fx->logits[l] = floats(at(item(j, "logits"), l), &fx->nlog[l]);
        fx->offsets[l] = floats(at(item(j, "offsets"), l), &fx->noff[l]);
        CHECK(fx->nlog[l] == N * C * uakd_wdr_level_cells(&fx->lv, l));
        CHECK(fx->noff[l] == 16 * fx->nlog[l]);
        fx->m.logits[l] = fx->logits[l];
        fx->m.offsets[l] = fx->offsets[l];
    }
    return 1;
}

static void fixture_free(fixture *fx) {
    for (int l = 0; l < 2; l++) {
        free(fx->logits[l]);
        free(fx->offsets[l]);
    }
    uakd_wdr_targets_free(fx->t);
    cJSON_Delete(fx->json);
}

/* The parity fixture; when it is missing or malformed, a failed check and 0 with nothing held. */
static int fixture_load(fixture *fx) {
    if (fixture_parse(fx)) return 1;
    CHECK_MSG(0, "tests/data/wdr/parity.json missing or malformed (run scripts/ref_wdr.py)");
    fixture_free(fx);
    return 0;
}

/* ---------- levels, coding, quotas ---------- */

static void test_levels_and_coding(void) {
    uakd_wdr_levels lv;
    CHECK_OK(uakd_wdr_levels_init(&lv, 5, 256, 256));
    int g[5] = {32, 16, 8, 4, 2};
    for (int l = 0; l < 5; l++) {
        CHECK(lv.stride[l] == 8 << l && lv.anchor[l] == 32 << l && lv.gw[l] == g[l] && lv.gh[l] == g[l]);
    }
    CHECK_OK(uakd_wdr_levels_init(&lv, 4, 100, 60)); /* ceil: 13x8, 7x4, 4x2, 2x1 */
    CHECK(lv.gw[0] == 13 && lv.gh[0] == 8 && lv.gw[1] == 7 && lv.gh[1] == 4 && lv.gw[2] == 4 && lv.gh[2] == 2);
    CHECK(lv.gw[3] == 2 && lv.gh[3] == 1);
    CHECK_OK(uakd_wdr_levels_set_grid(&lv, 0, 12, 7));
    CHECK(uakd_wdr_level_cells(&lv, 0) == 84);
    CHECK_FAILS(uakd_wdr_levels_set_grid(&lv, 4, 1, 1), UAKD_EINVAL);
    CHECK_FAILS(uakd_wdr_levels_init(&lv, 6, 64, 64), UAKD_EINVAL);
    CHECK_FAILS(uakd_wdr_levels_init(&lv, 4, 0, 64), UAKD_EINVAL);

    CHECK_OK(uakd_wdr_levels_init(&lv, 4, 128, 128));
    double c[2];
    uakd_wdr_cell_centre(&lv, 1, 2, 1, c); /* stride 16: (2*16 + 8, 1*16 + 8) */
    CHECK_NEAR(c[0], 40, 0);
    CHECK_NEAR(c[1], 24, 0);
    double corners[16], off[16], back[16];
    for (int k = 0; k < 8; k++) {
        corners[2 * k] = 104 - 8 * k; /* corner 0 = (104, -8): dx = 64/64 = 1, dy = -32/64 = -0.5 */
        corners[2 * k + 1] = -8 + 3 * k;
    }
    uakd_wdr_encode(&lv, 1, 2, 1, corners, off);
    CHECK_NEAR(off[0], 1.0, 1e-15);
    CHECK_NEAR(off[8], -0.5, 1e-15);
    CHECK_NEAR(off[7], (104 - 56 - 40) / 64.0, 1e-15);
    CHECK_NEAR(off[15], (-8 + 21 - 24) / 64.0, 1e-15);
    uakd_wdr_decode_cell(&lv, 1, 2, 1, off, back);
    for (int k = 0; k < 16; k++) CHECK_NEAR(back[k], corners[k], 1e-12);
    /* x from 48 to 104, y from -8 to 13: S = 56 + 1 */
    CHECK_NEAR(uakd_wdr_box_size(corners), 57, 1e-12);
}

static void test_quotas(void) {
    uakd_wdr_levels lv;
    CHECK_OK(uakd_wdr_levels_init(&lv, 4, 256, 256));
    int q[5];
    /* S = 64: log2 ratios 1, 0, -1, -2 -> g = e^-1, 1, e^-1, e^-4; 10 g / sum = 2.10, 5.70, 2.10, 0.10 */
    CHECK(uakd_wdr_quotas(&lv, 64, 10, q) == 10);
    CHECK(q[0] == 2 && q[1] == 6 && q[2] == 2 && q[3] == 0);
    /* S = 32: g = 1, e^-1, e^-4, e^-9 -> 7.21, 2.65, 0.13, 0.001 */
    CHECK(uakd_wdr_quotas(&lv, 32, 10, q) == 10);
    CHECK(q[0] == 7 && q[1] == 3 && q[2] == 0 && q[3] == 0);
    /* S = 32 * 2^1.5: log2 ratios 1.5, 0.5, -0.5, -1.5 -> 10 g / sum = 0.60, 4.40, 4.40, 0.60 */
    CHECK(uakd_wdr_quotas(&lv, 32 * pow(2, 1.5), 10, q) == 10);
    CHECK(q[0] == 1 && q[1] == 4 && q[2] == 4 && q[3] == 1);
    /* absurd size: everything underflows, all goes to the last level */
    CHECK(uakd_wdr_quotas(&lv, 1e300, 10, q) == 10 && q[3] == 10);
}

static void test_affine(void) {
    /* crop_from_image: scale 2 with a 30 degree rotation, then shift */
    double a = 2 * cos(M_PI / 6), b = 2 * sin(M_PI / 6);
    double m[6] = {a, -b, 5, b, a, -7}, inv[6];
    CHECK_OK(uakd_wdr_affine_invert(m, inv));
    double img[2] = {13.5, -4.25};
    double pts[4] = {m[0] * img[0] + m[1] * img[1] + m[2], m[3] * img[0] + m[4] * img[1] + m[5], m[2], m[5]};
    CHECK_OK(uakd_wdr_crop_to_image(m, pts, 2));
    CHECK_NEAR(pts[0], 13.5, 1e-12);
    CHECK_NEAR(pts[1], -4.25, 1e-12);
    CHECK_NEAR(pts[2], 0, 1e-12); /* the crop point m(0, 0) is the image origin */
    CHECK_NEAR(pts[3], 0, 1e-12);
    double sing[6] = {1, 2, 0, 2, 4, 0};
    CHECK_FAILS(uakd_wdr_affine_invert(sing, inv), UAKD_EDEGENERATE);
}

static void test_object_set_box(void) {
    uakd_wdr_object obj;
    memset(&obj, 0, sizeof obj);
    double bmin[3] = {-0.05, -0.04, -0.03}, bmax[3] = {0.05, 0.04, 0.03}, R[9], q[4] = {0.9, 0.1, -0.3, 0.2};
    double t[3] = {0.01, -0.02, 0.6}, K[9] = {500, 0, 64, 0, 505, 60, 0, 0, 1};
    uakd_quat_to_rot(q, R);
    CHECK_OK(uakd_wdr_object_set_box(&obj, bmin, bmax, R, t, K));
    uakd_camera cam = {500, 505, 64, 60, {0}};
    uakd_pose pose;
    memcpy(pose.R, R, sizeof R);
    memcpy(pose.t, t, sizeof t);
    double X[24], uv[2], xc[3];
    uakd_bbox_corners(bmin, bmax, X);
    for (int k = 0; k < 8; k++) {
        CHECK(uakd_camera_project(&cam, &pose, &X[3 * k], uv));
        CHECK_NEAR(obj.corners2d[2 * k], uv[0], 1e-9);
        CHECK_NEAR(obj.corners2d[2 * k + 1], uv[1], 1e-9);
        uakd_pose_apply(&pose, &X[3 * k], xc);
        for (int i = 0; i < 3; i++) CHECK_NEAR(obj.corners_cam[3 * k + i], xc[i], 1e-15);
    }
    double behind[3] = {0, 0, 0.01};
    CHECK_FAILS(uakd_wdr_object_set_box(&obj, bmin, bmax, R, behind, K), UAKD_EINVAL);
}

/* ---------- assignment ---------- */

/* 128x128 input, object of 2D size S = 71 (quotas 2, 6, 3, 0), visible mask x in [40, 90), y in [30, 100):
 * candidate centres: stride 8: 6 x 8 = 48; stride 16: 4 x 4 = 16; stride 32: 2 x 2 = 4; stride 64: 0. */
static void make_assign_case(uakd_wdr_levels *lv, uint8_t *mask, uakd_wdr_object *obj) {
    CHECK_OK(uakd_wdr_levels_init(lv, 4, 128, 128));
    for (int y = 0; y < 128; y++)
        for (int x = 0; x < 128; x++) mask[y * 128 + x] = x >= 40 && x < 90 && y >= 30 && y < 100;
    memset(obj, 0, sizeof *obj);
    obj->cls = 1;
    obj->diameter = 0.1;
    double K[9] = {200, 0, 64, 0, 200, 64, 0, 0, 1};
    memcpy(obj->K, K, sizeof K);
    for (int k = 0; k < 8; k++) {
        obj->corners2d[2 * k] = 30 + 63.0 * (k & 1) + k;        /* x from 30 to 100: w = 70 */
        obj->corners2d[2 * k + 1] = 40 + 63.0 * ((k >> 1) & 1); /* y from 40 to 103: h = 63 */
        for (int i = 0; i < 3; i++) obj->corners_cam[3 * k + i] = i == 2 ? 0.5 : 0.01 * k;
    }
    obj->mask = mask;
}

static void test_assign(void) {
    uakd_wdr_levels lv;
    static uint8_t mask[128 * 128];
    uakd_wdr_object obj[3];
    make_assign_case(&lv, mask, &obj[0]);
    obj[1] = obj[0];
    obj[1].cls = -1; /* no object */
    obj[2] = obj[0];
    obj[2].cls = 0;
    obj[2].mask = NULL; /* fully occluded */
    int q[5];
    uakd_wdr_quotas(&lv, 71, 10, q);
    /* log2(71 / A) = 1.150, 0.150, -0.850, -1.850: g = .2666, .9778, .4853, .0326 (sum 1.7623);
     * 10 g / sum = 1.51, 5.55, 2.75, 0.18 */
    CHECK(q[0] == 2 && q[1] == 6 && q[2] == 3 && q[3] == 0);
    int ncand[4] = {48, 16, 4, 0};
    uakd_wdr_config cfg;
    uakd_wdr_config_default(&cfg);
    uakd_wdr_targets *t;
    CHECK_OK(uakd_wdr_targets_new(&lv, 3, 2, &t));
    uakd_rng rng, rng2;
    uakd_rng_seed(&rng, 5);
    CHECK_OK(uakd_wdr_assign(t, &cfg, obj, &rng));
    CHECK(t->npos == 2 + 6 + 3);
    for (int l = 0; l < 4; l++) {
        int cells = uakd_wdr_level_cells(&lv, l), npos = 0, nign = 0, other = 0;
        for (int i = 0; i < 3 * 2 * cells; i++) {
            int img = i / (2 * cells), cls = (i / cells) % 2, lab = t->label[l][i];
            if (img != 0 || cls != 1) other += lab != 0;
            else {
                npos += lab == 1;
                nign += lab == -1;
            }
        }
        CHECK(npos == (q[l] < ncand[l] ? q[l] : ncand[l]));
        CHECK(npos + nign == ncand[l]);
        CHECK(other == 0);
    }
    for (int j = 0; j < t->npos; j++) {
        const uakd_wdr_pos *p = &t->pos[j];
        CHECK(p->image == 0 && p->cls == 1);
        CHECK(j == 0 || p->level >= t->pos[j - 1].level);
        double c[2], off[16], back[16];
        uakd_wdr_cell_centre(&lv, p->level, p->col, p->row, c);
        CHECK(mask[(int)c[1] * 128 + (int)c[0]]);
        for (int k = 0; k < 16; k++) off[k] = p->offset[k];
        uakd_wdr_decode_cell(&lv, p->level, p->col, p->row, off, back);
        for (int k = 0; k < 16; k++) CHECK_NEAR(back[k], obj[0].corners2d[k], 1e-4);
    }
    /* anew each call: a second call draws differently; reseeding reproduces the first draw */
    uakd_wdr_pos first[11];
    memcpy(first, t->pos, sizeof first);
    CHECK_OK(uakd_wdr_assign(t, &cfg, obj, &rng));
    int same = 1;
    for (int j = 0; j < 11; j++) same &= first[j].col == t->pos[j].col && first[j].row == t->pos[j].row;
    CHECK(!same);
    uakd_rng_seed(&rng2, 5);
    CHECK_OK(uakd_wdr_assign(t, &cfg, obj, &rng2));
    for (int j = 0; j < 11; j++) CHECK(first[j].col == t->pos[j].col && first[j].row == t->pos[j].row);

    /* uniform draws: each of the 48 stride-8 candidates is positive with probability 2/48 */
    int hits[16 * 16] = {0}, rounds = 3000;
    for (int r = 0; r < rounds; r++) {
        CHECK_OK(uakd_wdr_assign(t, &cfg, obj, &rng));
        for (int j = 0; j < t->npos; j++)
            if (t->pos[j].level == 0) hits[t->pos[j].row * 16 + t->pos[j].col]++;
    }
    double expect = rounds * 2.0 / 48, sd = sqrt(expect);
    int cand = 0;
    for (int i = 0; i < 256; i++) {
        if (hits[i]) cand++;
        CHECK(hits[i] == 0 || fabs(hits[i] - expect) < 5 * sd);
    }
    CHECK(cand == 48);

    const uakd_wdr_pos *p0 = &t->pos[0];
    CHECK_FAILS(uakd_wdr_targets_mark(t, 0, p0->level, p0->col, p0->row, -1), UAKD_EINVAL); /* marked twice */
    CHECK_FAILS(uakd_wdr_targets_mark(t, 1, 0, 0, 0, 1), UAKD_EINVAL);  /* image without object */
    CHECK_FAILS(uakd_wdr_targets_mark(t, 0, 4, 0, 0, 1), UAKD_EINVAL);  /* level out of range */
    obj[0].cls = 2;
    CHECK_FAILS(uakd_wdr_assign(t, &cfg, obj, &rng), UAKD_EINVAL); /* class beyond the head's 2 */
    uakd_wdr_targets_free(t);
}

/* ---------- losses: parity with PyTorch ---------- */

static double max_abs(const double *x, int n) {
    double m = 0;
    for (int i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}

static void test_loss_parity(void) {
    fixture fx;
    if (!fixture_load(&fx)) return;
    uakd_wdr_config cfg;
    uakd_wdr_config_default(&cfg);
    float *gl[2], *go[2];
    uakd_wdr_grads g;
    for (int l = 0; l < 2; l++) {
        g.logits[l] = gl[l] = malloc(fx.nlog[l] * sizeof(float));
        g.offsets[l] = go[l] = malloc(fx.noff[l] * sizeof(float));
    }
    uakd_wdr_loss loss;
    CHECK_OK(uakd_wdr_loss_eval(&cfg, fx.t, &fx.m, &g, &loss));
    /* identical float32 inputs, both sides in double: only summation order differs */
    CHECK_NEAR(loss.cls, num(fx.json, "loss_cls"), 1e-12);
    CHECK_NEAR(loss.pose, num(fx.json, "loss_pose"), 1e-12);
    CHECK_NEAR(loss.total, num(fx.json, "loss_total"), 1e-12);
    CHECK(loss.npos == 12);
    /* gradients are stored as float32: relative 1e-6 of the largest entry of each tensor */
    for (int l = 0; l < 2; l++) {
        int n;
        double *ref = doubles(at(item(fx.json, "grad_logits"), l), &n), worst = 0, scale = max_abs(ref, n);
        CHECK(n == fx.nlog[l]);
        for (int i = 0; i < n; i++) worst = fmax(worst, fabs(gl[l][i] - ref[i]));
        CHECK_MSG(worst <= 1e-6 * scale, "grad logits level %d: max diff %g (scale %g)", l, worst, scale);
        free(ref);
        ref = doubles(at(item(fx.json, "grad_offsets"), l), &n);
        scale = max_abs(ref, n);
        worst = 0;
        CHECK(n == fx.noff[l] && scale > 0);
        for (int i = 0; i < n; i++) worst = fmax(worst, fabs(go[l][i] - ref[i]));
        CHECK_MSG(worst <= 1e-6 * scale, "grad offsets level %d: max diff %g (scale %g)", l, worst, scale);
        free(ref);
    }
    /* the other normalisations: plain sums */
    cfg.cls_norm = UAKD_WDR_NORM_NONE;
    cfg.pose_norm = UAKD_WDR_NORM_NONE;
    double v;
    CHECK_OK(uakd_wdr_focal_loss(&cfg, fx.t, &fx.m, 1, NULL, &v));
    CHECK_NEAR(v, num(fx.json, "loss_cls_sum"), 1e-11);
    CHECK_OK(uakd_wdr_pose_loss(&cfg, fx.t, &fx.m, 1, NULL, &v));
    CHECK_NEAR(v, num(fx.json, "loss_pose_sum"), 1e-11);
    cfg.pose_norm = UAKD_WDR_NORM_NPOS;
    CHECK_OK(uakd_wdr_pose_loss(&cfg, fx.t, &fx.m, 1, NULL, &v));
    CHECK_NEAR(v, num(fx.json, "loss_pose_sum") / 12, 1e-12);

    uakd_wdr_maps bad = fx.m;
    bad.c = 3;
    CHECK_FAILS(uakd_wdr_loss_eval(&cfg, fx.t, &bad, &g, &loss), UAKD_EINVAL);
    for (int l = 0; l < 2; l++) {
        free(gl[l]);
        free(go[l]);
    }
    fixture_free(&fx);
}

/* ---------- losses: finite differences ---------- */

static double eval_total(const uakd_wdr_config *cfg, const fixture *fx) {
    uakd_wdr_loss loss;
    CHECK_OK(uakd_wdr_loss_eval(cfg, fx->t, &fx->m, NULL, &loss));
    return loss.total;
}

/* Central difference on entry i of map `arr` with the step actually representable in float. */
static double fd(const uakd_wdr_config *cfg, const fixture *fx, float *arr, int i, double h) {
    float x0 = arr[i];
    arr[i] = (float)(x0 + h);
    double hp = (double)arr[i] - x0, lp = eval_total(cfg, fx);
    arr[i] = (float)(x0 - h);
    double hm = x0 - (double)arr[i], lm = eval_total(cfg, fx);
    arr[i] = x0;
    return (lp - lm) / (hp + hm);
}

static void check_fd(const uakd_wdr_config *cfg, fixture *fx) {
    float *gl[2], *go[2];
    uakd_wdr_grads g;
    for (int l = 0; l < 2; l++) {
        g.logits[l] = gl[l] = malloc(fx->nlog[l] * sizeof(float));
        g.offsets[l] = go[l] = malloc(fx->noff[l] * sizeof(float));
    }
    uakd_wdr_loss loss;
    CHECK_OK(uakd_wdr_loss_eval(cfg, fx->t, &fx->m, &g, &loss));
    int checked_logits = 0, checked_offsets = 0;
    for (int l = 0; l < 2; l++) {
        for (int i = 0; i < fx->nlog[l]; i += 3) { /* every third logit, all kinds of labels */
            double num_g = fd(cfg, fx, fx->logits[l], i, 1e-3);
            CHECK_MSG(fabs(num_g - gl[l][i]) <= 1e-5 + 1e-3 * fabs(gl[l][i]), "logit %d/%d: fd %g vs %g", l, i, num_g,
                      gl[l][i]);
            checked_logits++;
        }
        /* every offset entry of the positive cells (their class), plus zeros elsewhere */
        int cells = uakd_wdr_level_cells(&fx->lv, l);
        for (int j = 0; j < fx->t->npos; j++) {
            const uakd_wdr_pos *p = &fx->t->pos[j];
            if (p->level != l) continue;
            for (int k = 0; k < 16; k++) {
                int i = ((p->image * 16 * fx->t->c + 16 * p->cls + k) * cells) + p->row * fx->lv.gw[l] + p->col;
                double num_g = fd(cfg, fx, fx->offsets[l], i, 1e-5);
                CHECK_MSG(fabs(num_g - go[l][i]) <= 2e-5 + 2e-3 * fabs(go[l][i]), "offset %d/%d: fd %g vs %g", l, i,
                          num_g, go[l][i]);
                checked_offsets++;
            }
        }
        int bg = 32 * cells + 5; /* image 1, class 0 (its object is class 1): no pose gradient */
        CHECK_NEAR(fd(cfg, fx, fx->offsets[l], bg, 1e-3), 0, 1e-12);
        CHECK(go[l][bg] == 0);
    }
    CHECK(checked_logits > 50 && checked_offsets == 16 * 12);
    for (int l = 0; l < 2; l++) {
        free(gl[l]);
        free(go[l]);
    }
}

static void test_loss_gradients_fd(void) {
    fixture fx;
    if (!fixture_load(&fx)) return;
    uakd_wdr_config cfg;
    uakd_wdr_config_default(&cfg);
    check_fd(&cfg, &fx);
    cfg.focal_gamma = 1.5; /* other settings, other normalisations */
    cfg.focal_alpha = 0.6;
    cfg.huber_delta = 0.1;
    cfg.w_cls = 2;
    cfg.w_pose = 0.5;
    cfg.cls_norm = UAKD_WDR_NORM_IMAGES;
    cfg.pose_norm = UAKD_WDR_NORM_NPOS;
    check_fd(&cfg, &fx);
    fixture_free(&fx);
}

/* The focal loss stays finite with correct limits for huge logits. */
static void test_focal_extremes(void) {
    uakd_wdr_levels lv;
    CHECK_OK(uakd_wdr_levels_init(&lv, 1, 16, 8)); /* grid 2 x 1 */
    uakd_wdr_targets *t;
    CHECK_OK(uakd_wdr_targets_new(&lv, 1, 1, &t));
    uakd_wdr_object obj;
    memset(&obj, 0, sizeof obj);
    obj.diameter = 1;
    obj.K[0] = obj.K[4] = obj.K[8] = 1;
    CHECK_OK(uakd_wdr_targets_reset(t, &obj));
    CHECK_OK(uakd_wdr_targets_mark(t, 0, 0, 0, 0, 1));
    uakd_wdr_config cfg;
    uakd_wdr_config_default(&cfg);
    float logits[2], grad[2], *gp[1] = {grad};
    uakd_wdr_maps m = {1, 1, {logits}, {NULL}};
    double v;
    /* positive at -80: L = 0.25 * 1 * 80; dL/dx = 0.25 * (0 - 1) = -0.25; background at +80: L = 0.75 * 80,
     * dL/dx = 0.75 * (1 - 0) */
    logits[0] = -80;
    logits[1] = 80;
    CHECK_OK(uakd_wdr_focal_loss(&cfg, t, &m, 1, gp, &v));
    CHECK_NEAR(v, 0.25 * 80 + 0.75 * 80, 1e-9);
    CHECK_NEAR(grad[0], -0.25, 1e-7);
    CHECK_NEAR(grad[1], 0.75, 1e-7);
    /* well classified: ~0 loss and gradient */
    logits[0] = 80;
    logits[1] = -80;
    CHECK_OK(uakd_wdr_focal_loss(&cfg, t, &m, 1, gp, &v));
    CHECK(v >= 0 && v < 1e-30 && fabs(grad[0]) < 1e-30 && fabs(grad[1]) < 1e-30);
    logits[1] = NAN; /* a diverged network is reported, not summed silently */
    CHECK_FAILS(uakd_wdr_focal_loss(&cfg, t, &m, 1, gp, &v), UAKD_EDEGENERATE);
    /* x = 0, y = 1: L = 0.25 * 0.25 * ln 2; dL/dx = 0.25 * 0.25 * (2 * 0.5 * -ln 2 - 0.5) */
    logits[0] = 0;
    logits[1] = -80;
    CHECK_OK(uakd_wdr_focal_loss(&cfg, t, &m, 1, gp, &v));
    CHECK_NEAR(v, 0.0625 * log(2), 1e-12);
    CHECK_NEAR(grad[0], 0.0625 * (-log(2) - 0.5), 1e-7);
    uakd_wdr_targets_free(t);
}

/* Pose loss by hand: K = identity-like, ray through the corner -> zero loss; a point at distance
 * 0.5 D along x from the ray -> Huber = 0.5 - 0.01 on that component. */
static void test_pose_by_hand(void) {
    uakd_wdr_levels lv;
    CHECK_OK(uakd_wdr_levels_init(&lv, 1, 16, 16)); /* 2 x 2 grid, centres 4 and 12, anchor 32 */
    uakd_wdr_targets *t;
    CHECK_OK(uakd_wdr_targets_new(&lv, 1, 1, &t));
    uakd_wdr_object obj;
    memset(&obj, 0, sizeof obj);
    obj.diameter = 2;
    double K[9] = {10, 0, 4, 0, 10, 4, 0, 0, 1};
    memcpy(obj.K, K, sizeof K);
    for (int k = 0; k < 8; k++) { /* all corners on the optical axis at depth 1 + k, except corner 3 */
        obj.corners_cam[3 * k + 2] = 1 + k;
        obj.corners_cam[3 * k] = k == 3 ? 1.0 : 0.0;
    }
    CHECK_OK(uakd_wdr_targets_reset(t, &obj));
    CHECK_OK(uakd_wdr_targets_mark(t, 0, 0, 0, 0, 1)); /* centre (4, 4) = principal point */
    float off[16 * 4] = {0};
    uakd_wdr_maps m = {1, 1, {NULL}, {off}};
    uakd_wdr_config cfg;
    uakd_wdr_config_default(&cfg);
    double v;
    CHECK_OK(uakd_wdr_pose_loss(&cfg, t, &m, 1, NULL, &v));
    /* corner 3 at (1, 0, 4): distance vector (1, 0, 0) / D = 0.5 -> 0.49; mean over 24 */
    CHECK_NEAR(v, 0.49 / 24, 1e-15);
    /* the same corner at distance 0.02 D (0.04): exactly the Huber joint, 25 e^2 = |e| - 0.01 = 0.01 */
    obj.corners_cam[9] = 0.04;
    CHECK_OK(uakd_wdr_targets_reset(t, &obj));
    CHECK_OK(uakd_wdr_targets_mark(t, 0, 0, 0, 0, 1));
    CHECK_OK(uakd_wdr_pose_loss(&cfg, t, &m, 1, NULL, &v));
    CHECK_NEAR(v, 0.01 / 24, 1e-15);
    obj.corners_cam[9] = 0.02; /* e = 0.01 < delta: 25 e^2 = 0.0025 */
    CHECK_OK(uakd_wdr_targets_reset(t, &obj));
    CHECK_OK(uakd_wdr_targets_mark(t, 0, 0, 0, 0, 1));
    CHECK_OK(uakd_wdr_pose_loss(&cfg, t, &m, 1, NULL, &v));
    CHECK_NEAR(v, 0.0025 / 24, 1e-15);
    double singular[9] = {0};
    memcpy(obj.K, singular, sizeof singular);
    CHECK_OK(uakd_wdr_targets_reset(t, &obj));
    CHECK_OK(uakd_wdr_targets_mark(t, 0, 0, 0, 0, 1));
    CHECK_FAILS(uakd_wdr_pose_loss(&cfg, t, &m, 1, NULL, &v), UAKD_EDEGENERATE);
    uakd_wdr_targets_free(t);
}

/* ---------- decoding and teacher cells: parity with the Python rule ---------- */

static void check_cells(const uakd_wdr_cell *cells, int count, const cJSON *ref) {
    CHECK(count == cJSON_GetArraySize(ref));
    for (int i = 0; i < count && i < cJSON_GetArraySize(ref); i++) {
        const cJSON *r = at(ref, i);
        CHECK(cells[i].level == (int)num(r, "level") && cells[i].col == (int)num(r, "col") &&
              cells[i].row == (int)num(r, "row"));
        CHECK_NEAR(cells[i].conf, num(r, "conf"), 1e-12);
        for (int k = 0; k < 16; k++) CHECK_NEAR(cells[i].corners[k], at(item(r, "corners"), k)->valuedouble, 1e-9);
    }
}

static void test_decode_parity(void) {
    fixture fx;
    if (!fixture_load(&fx)) return;
    uakd_wdr_config cfg;
    uakd_wdr_config_default(&cfg);
    uakd_wdr_cell cells[32];
    int count, total = 0;
    const cJSON *dec = item(fx.json, "decoded");
    for (int d = 0; d < cJSON_GetArraySize(dec); d++) {
        const cJSON *r = at(dec, d);
        CHECK_OK(uakd_wdr_decode(&fx.lv, &cfg, &fx.m, (int)num(r, "image"), (int)num(r, "cls"), cells, 32, &count));
        check_cells(cells, count, item(r, "cells"));
        total += count;
        for (int i = 1; i < count; i++) /* level by level, best first */
            CHECK(cells[i].level > cells[i - 1].level || cells[i].conf <= cells[i - 1].conf);
    }
    CHECK(total > 20);
    CHECK_FAILS(uakd_wdr_decode(&fx.lv, &cfg, &fx.m, 0, 0, cells, 10, &count), UAKD_EINVAL);
    cfg.conf_thresh = 0.999999; /* nothing passes: a missing prediction, not an error */
    CHECK_OK(uakd_wdr_decode(&fx.lv, &cfg, &fx.m, 0, 0, cells, 32, &count));
    CHECK(count == 0);

    /* correspondences: corner k of cell i pairs with 3D corner k; crop -> image by the inverse affine */
    cfg.conf_thresh = 0.1;
    CHECK_OK(uakd_wdr_decode(&fx.lv, &cfg, &fx.m, 0, 1, cells, 32, &count));
    double bmin[3] = {-1, -2, -3}, bmax[3] = {1, 2, 3}, box[24], p2[32 * 16], p3[32 * 24];
    double m[6] = {0.5, 0, 10, 0, 0.5, -4}; /* crop = image / 2 + (10, -4) */
    uakd_bbox_corners(bmin, bmax, box);
    CHECK_OK(uakd_wdr_correspondences(cells, count, box, m, p2, p3));
    for (int i = 0; i < count; i++)
        for (int k = 0; k < 8; k++) {
            int j = 8 * i + k;
            CHECK_NEAR(p2[2 * j], 2 * (cells[i].corners[2 * k] - 10), 1e-12);
            CHECK_NEAR(p2[2 * j + 1], 2 * (cells[i].corners[2 * k + 1] + 4), 1e-12);
            for (int c = 0; c < 3; c++) CHECK(p3[3 * j + c] == box[3 * k + c]);
        }
    fixture_free(&fx);
}

static void test_teacher_parity(void) {
    cJSON *json = test_read_json("tests/data/wdr/parity.json");
    if (!json) {
        CHECK_MSG(0, "tests/data/wdr/parity.json missing");
        return;
    }
    const cJSON *ens = item(json, "ensemble");
    int E = (int)num(ens, "E");
    uakd_wdr_levels lv;
    CHECK_OK(uakd_wdr_levels_init(&lv, 2, (int)num(json, "in_w"), (int)num(json, "in_h")));
    uakd_wdr_maps members[3];
    float *arrays[3][4];
    for (int e = 0; e < E && e < 3; e++) {
        members[e].n = members[e].c = 1;
        for (int l = 0; l < 2; l++) {
            members[e].logits[l] = arrays[e][l] = floats(at(at(item(ens, "logits"), e), l), NULL);
            members[e].offsets[l] = arrays[e][2 + l] = floats(at(at(item(ens, "offsets"), e), l), NULL);
        }
    }
    float conf0[48], conf1[12], *conf[2] = {conf0, conf1};
    CHECK_OK(uakd_wdr_ensemble_conf(&lv, E, members, 0, 0, conf));
    for (int l = 0; l < 2; l++) {
        int n;
        double *ref = doubles(at(item(ens, "conf"), l), &n);
        CHECK(n == uakd_wdr_level_cells(&lv, l));
        for (int i = 0; i < n; i++) CHECK_NEAR(conf[l][i], ref[i], 1e-7);
        free(ref);
    }
    uakd_wdr_config cfg;
    uakd_wdr_config_default(&cfg);
    uakd_wdr_cell cells[16];
    double member_pos[16 * 3 * 16];
    int count;
    CHECK_OK(uakd_wdr_teacher_cells(&lv, &cfg, E, members, 0, 0, cells, member_pos, 16, &count));
    const cJSON *ref = item(ens, "cells");
    check_cells(cells, count, ref);
    CHECK(count > 5);
    for (int i = 0; i < count && i < cJSON_GetArraySize(ref); i++)
        for (int e = 0; e < E; e++) {
            double mean = 0;
            for (int k = 0; k < 16; k++)
                CHECK_NEAR(member_pos[(i * E + e) * 16 + k], at(at(item(at(ref, i), "members"), e), k)->valuedouble,
                           1e-9);
            for (int f = 0; f < E; f++) mean += member_pos[(i * E + f) * 16 + 3] / E;
            CHECK_NEAR(cells[i].corners[3], mean, 1e-9);
        }
    CHECK_FAILS(uakd_wdr_teacher_cells(&lv, &cfg, E, members, 0, 1, cells, member_pos, 16, &count), UAKD_EINVAL);
    for (int e = 0; e < E && e < 3; e++)
        for (int a = 0; a < 4; a++) free(arrays[e][a]);
    cJSON_Delete(json);
}

/* ---------- student local predictions ---------- */

static double student_dot(const fixture *fx, int image, const float *wpos, const float *wlog, int *count) {
    float pos[32 * 16], logit[32];
    CHECK_OK(uakd_wdr_student_local(fx->t, &fx->m, image, pos, logit, NULL, 32, count));
    double s = 0;
    for (int j = 0; j < *count; j++) {
        s += wlog[j] * logit[j];
        for (int k = 0; k < 16; k++) s += (double)wpos[16 * j + k] * pos[16 * j + k];
    }
    return s;
}

static void test_student_local(void) {
    fixture fx;
    if (!fixture_load(&fx)) return;
    float pos[32 * 16], logit[32];
    int idx[32], count;
    CHECK_OK(uakd_wdr_student_local(fx.t, &fx.m, 1, pos, logit, idx, 32, &count));
    CHECK(count == 6); /* 4 + 2 positives per image in the fixture */
    for (int j = 0; j < count; j++) {
        const uakd_wdr_pos *p = &fx.t->pos[idx[j]];
        CHECK(p->image == 1);
        int cells = uakd_wdr_level_cells(&fx.lv, p->level), at_ = p->row * fx.lv.gw[p->level] + p->col;
        CHECK(logit[j] == fx.m.logits[p->level][(1 * 2 + p->cls) * cells + at_]);
        double c[2], A = fx.lv.anchor[p->level];
        uakd_wdr_cell_centre(&fx.lv, p->level, p->col, p->row, c);
        float dx3 = fx.m.offsets[p->level][(1 * 32 + 16 * p->cls + 3) * cells + at_];
        float dy3 = fx.m.offsets[p->level][(1 * 32 + 16 * p->cls + 11) * cells + at_];
        CHECK_NEAR(pos[16 * j + 6], (c[0] + A * dx3) / 64, 1e-6);
        CHECK_NEAR(pos[16 * j + 7], (c[1] + A * dy3) / 48, 1e-6);
    }
    CHECK_FAILS(uakd_wdr_student_local(fx.t, &fx.m, 1, pos, logit, idx, 3, &count), UAKD_EINVAL);

    /* backward of the linear form sum w.pos + wl.logit: gradients accumulate on top of 1 */
    float wpos[6 * 16], wlog[6];
    uakd_rng r;
    uakd_rng_seed(&r, 3);
    for (int i = 0; i < 6 * 16; i++) wpos[i] = (float)uakd_rng_normal(&r);
    for (int i = 0; i < 6; i++) wlog[i] = (float)uakd_rng_normal(&r);
    float *gl[2], *go[2];
    uakd_wdr_grads g;
    for (int l = 0; l < 2; l++) {
        g.logits[l] = gl[l] = malloc(fx.nlog[l] * sizeof(float));
        g.offsets[l] = go[l] = malloc(fx.noff[l] * sizeof(float));
        for (int i = 0; i < fx.nlog[l]; i++) gl[l][i] = 1;
        for (int i = 0; i < fx.noff[l]; i++) go[l][i] = 1;
    }
    CHECK_OK(uakd_wdr_student_local_backward(fx.t, 1, wpos, wlog, 6, &g));
    CHECK_FAILS(uakd_wdr_student_local_backward(fx.t, 1, wpos, wlog, 7, &g), UAKD_EINVAL);
    int n;
    for (int l = 0; l < 2; l++) {
        for (int i = 0; i < fx.noff[l]; i += 1) {
            float x0 = fx.offsets[l][i];
            double h = 1e-2;
            fx.offsets[l][i] = (float)(x0 + h);
            double hp = (double)fx.offsets[l][i] - x0, lp = student_dot(&fx, 1, wpos, wlog, &n);
            fx.offsets[l][i] = (float)(x0 - h);
            double hm = x0 - (double)fx.offsets[l][i], lm = student_dot(&fx, 1, wpos, wlog, &n);
            fx.offsets[l][i] = x0;
            double num_g = (lp - lm) / (hp + hm);
            CHECK_MSG(fabs(num_g - (go[l][i] - 1)) < 1e-4 * (1 + fabs(num_g)), "offset %d/%d: fd %g vs %g", l, i,
                      num_g, go[l][i] - 1);
        }
        for (int i = 0; i < fx.nlog[l]; i++) {
            float x0 = fx.logits[l][i];
            fx.logits[l][i] = x0 + 0.5f;
            double lp = student_dot(&fx, 1, wpos, wlog, &n);
            fx.logits[l][i] = x0 - 0.5f;
            double lm = student_dot(&fx, 1, wpos, wlog, &n);
            fx.logits[l][i] = x0;
            CHECK_NEAR((lp - lm) / 1.0, gl[l][i] - 1, 1e-5);
        }
    }
    for (int l = 0; l < 2; l++) {
        free(gl[l]);
        free(go[l]);
    }
    fixture_free(&fx);
}

int main(void) {
    RUN(test_levels_and_coding);
    RUN(test_quotas);
    RUN(test_affine);
    RUN(test_object_set_box);
    RUN(test_assign);
    RUN(test_loss_parity);
    RUN(test_loss_gradients_fd);
    RUN(test_focal_extremes);
    RUN(test_pose_by_hand);
    RUN(test_decode_parity);
    RUN(test_teacher_parity);
    RUN(test_student_local);
    return TEST_END();
}
