/* Tests of the SPNv2 heatmap mathematics: coordinate conventions and targets (hand values), the loss,
 * decoding and student backward against PyTorch (tests/data/spn/parity.json, written by
 * scripts/ref_spn.py), sub-pixel accuracy on synthetic Gaussians with and without noise, non-zero
 * ensemble spread for peaks sharing an integer argmax, finite differences of the student backward,
 * keypoint selection, correspondences, the pose sanity check with the SPEED+ camera, and the
 * random-erasing and sun-flare augmentations. */
#include <cjson/cJSON.h>

#include "test.h"
#include "test_json.h"
#include "uakd/spn.h"

/* ---------- helpers ---------- */


static double *doubles(const cJSON *j, const char *key, int *n) {
    const cJSON *a = cJSON_GetObjectItem(j, key);
    int m = cJSON_GetArraySize(a);
    double *x = malloc((size_t)(m ? m : 1) * sizeof *x);
    for (int i = 0; i < m; i++) x[i] = cJSON_GetArrayItem(a, i)->valuedouble;
    if (n) *n = m;
    return x;
}

static float *to_floats(const double *x, int n) {
    float *f = malloc((size_t)(n ? n : 1) * sizeof *f);
    for (int i = 0; i < n; i++) f[i] = (float)x[i];
    return f;
}

static double num(const cJSON *o, const char *key) { return cJSON_GetObjectItem(o, key)->valuedouble; }

/* A small configuration: 64x48 input, 16x12 heatmaps, K keypoints. */
static uakd_spn_config small_config(int K) {
    uakd_spn_config cfg;
    uakd_spn_config_default(&cfg);
    cfg.keypoints = K;
    cfg.in_w = 64;
    cfg.in_h = 48;
    cfg.min_keypoints = K < 5 ? K : 5;
    if (cfg.min_keypoints < 4) cfg.min_keypoints = 4;
    return cfg;
}

/* Writes the Gaussian exp(-((c - x)^2 + (r - y)^2) / (2 s^2)) (heatmap px) into map (hh, hw). */
static void gaussian(float *map, int hw, int hh, double x, double y, double s) {
    for (int r = 0; r < hh; r++)
        for (int c = 0; c < hw; c++)
            map[r * hw + c] = (float)exp(-((c - x) * (c - x) + (r - y) * (r - y)) / (2 * s * s));
}

/* ---------- conventions and targets ---------- */

static void test_config_and_conventions(void) {
    uakd_spn_config cfg;
    uakd_spn_config_default(&cfg);
    CHECK_OK(uakd_spn_config_check(&cfg));
    CHECK(cfg.keypoints == 11 && cfg.in_w == 768 && cfg.in_h == 512 && cfg.stride == 4 && cfg.sigma == 2);
    CHECK(cfg.conf_thresh == 0.5 && cfg.thresh_step == 0.1 && cfg.min_keypoints == 5 && cfg.z_max == 50);
    int hw, hh;
    uakd_spn_heatmap_size(&cfg, &hw, &hh);
    CHECK(hw == 192 && hh == 128);
    /* heatmap pixel 0 covers input pixels 0..3: its centre is input 1.5; the left image edge -0.5
     * is heatmap -0.5; input 767 (last pixel) is heatmap 191.375 */
    double in[2] = {1.5, 5.5}, hm[2], back[2];
    uakd_spn_to_heatmap(&cfg, in, hm);
    CHECK_NEAR(hm[0], 0, 1e-15);
    CHECK_NEAR(hm[1], 1, 1e-15);
    in[0] = -0.5;
    in[1] = 767;
    uakd_spn_to_heatmap(&cfg, in, hm);
    CHECK_NEAR(hm[0], -0.5, 1e-15);
    CHECK_NEAR(hm[1], 191.375, 1e-12);
    uakd_spn_to_input(&cfg, hm, back);
    CHECK_NEAR(back[0], -0.5, 1e-12);
    CHECK_NEAR(back[1], 767, 1e-12);

    uakd_spn_config bad = cfg;
    bad.in_w = 766;
    CHECK_FAILS(uakd_spn_config_check(&bad), UAKD_EINVAL);
    bad = cfg;
    bad.keypoints = 0;
    CHECK_FAILS(uakd_spn_config_check(&bad), UAKD_EINVAL);
    bad = cfg;
    bad.min_keypoints = 3;
    CHECK_FAILS(uakd_spn_config_check(&bad), UAKD_EINVAL);
    bad = cfg;
    bad.sigma = 0;
    CHECK_FAILS(uakd_spn_config_check(&bad), UAKD_EINVAL);
    bad = cfg;
    bad.refine = (uakd_spn_refine)7;
    CHECK_FAILS(uakd_spn_config_check(&bad), UAKD_EINVAL);
    bad = cfg;
    bad.window = 0;
    CHECK_FAILS(uakd_spn_config_check(&bad), UAKD_EINVAL);
    bad = cfg;
    bad.conf_thresh = 0;
    CHECK_FAILS(uakd_spn_config_check(&bad), UAKD_EINVAL);
    bad = cfg;
    bad.keypoints = 4; /* min_keypoints 5 > 4 keypoints: selection refuses */
    CHECK_OK(uakd_spn_config_check(&bad));
    double conf[4] = {1, 1, 1, 1};
    uint8_t sel[4];
    int count, ok;
    double t;
    CHECK_FAILS(uakd_spn_select(&bad, conf, sel, &count, &t, &ok), UAKD_EINVAL);
}

static void test_targets_by_hand(void) {
    uakd_spn_config cfg = small_config(5);
    /* k0 at heatmap (3, 2) exactly; k1 at the left edge (visible); k2 just past the right edge;
     * k3 valid = 0; k4 NaN */
    double kp[10] = {13.5, 9.5, -0.5, 20, 63.5, 20, 30, 30, NAN, 10};
    uint8_t valid[5] = {1, 1, 1, 0, 1}, vis[5];
    float *t = malloc(5 * 16 * 12 * sizeof *t);
    CHECK_OK(uakd_spn_targets(&cfg, 1, kp, valid, t, vis));
    CHECK(vis[0] == 1 && vis[1] == 1 && vis[2] == 0 && vis[3] == 0 && vis[4] == 0);
    CHECK_NEAR(t[2 * 16 + 3], 1, 0);
    CHECK_NEAR(t[2 * 16 + 4], exp(-1.0 / 8), 1e-7);         /* one pixel right: exp(-1 / (2 * 4)) */
    CHECK_NEAR(t[3 * 16 + 4], exp(-2.0 / 8), 1e-7);         /* diagonal */
    CHECK_NEAR(t[11 * 16 + 15], exp(-(144.0 + 81) / 8), 1e-12); /* far corner */
    /* k1: x_hm = -0.5, y_hm = 20.5 / 4 - 0.5 = 4.625: pixel (5, 0) holds exp(-(0.25 + 0.140625) / 8) */
    CHECK_NEAR(t[192 + 5 * 16], exp(-(0.25 + 0.140625) / 8), 1e-7);
    for (int m = 2; m < 5; m++) {
        float mx = 0;
        for (int i = 0; i < 192; i++) mx = fmaxf(mx, fabsf(t[m * 192 + i]));
        CHECK(mx == 0);
    }
    CHECK_OK(uakd_spn_targets(&cfg, 1, kp, NULL, t, vis)); /* no valid flags: only geometry decides */
    CHECK(vis[3] == 1 && vis[4] == 0);

    /* loss by hand: visible maps 0, 1, 3 (nvis = 3); prediction = target + 0.1 on one pixel of maps
     * 0..3 and garbage on map 4: L = 3 * 0.01 / 3, gradient scale * 2 * 0.1 / 3 on the visible ones */
    float *pred = malloc(5 * 192 * sizeof *pred), *d = malloc(5 * 192 * sizeof *d);
    memcpy(pred, t, 5 * 192 * sizeof *pred);
    for (int m = 0; m < 4; m++) pred[m * 192 + 17] += 0.1f;
    pred[4 * 192 + 3] = 1e6f;
    double loss;
    CHECK_OK(uakd_spn_loss(&cfg, 1, pred, t, vis, 2.0, d, &loss));
    CHECK_NEAR(loss, 0.01, 1e-8);
    CHECK_NEAR(d[3 * 192 + 17], 2.0 * 2 * 0.1 / 3, 1e-7);
    CHECK_NEAR(d[3 * 192 + 18], 0, 0);
    CHECK_NEAR(d[2 * 192 + 17], 0, 0);
    CHECK_NEAR(d[4 * 192 + 3], 0, 0);
    uint8_t none[5] = {0, 0, 0, 0, 0};
    CHECK_OK(uakd_spn_loss(&cfg, 1, pred, t, none, 1.0, d, &loss));
    CHECK(loss == 0 && d[17] == 0);
    pred[5] = INFINITY;
    CHECK_FAILS(uakd_spn_loss(&cfg, 1, pred, t, vis, 1.0, NULL, &loss), UAKD_EDEGENERATE);
    CHECK_FAILS(uakd_spn_loss(&cfg, 0, pred, t, vis, 1.0, NULL, &loss), UAKD_EINVAL);
    free(pred);
    free(d);
    free(t);
}

/* ---------- PyTorch parity ---------- */

static void test_parity(void) {
    cJSON *j = test_read_json("tests/data/spn/parity.json");
    CHECK_MSG(j != NULL, "tests/data/spn/parity.json missing: run /usr/bin/python3 scripts/ref_spn.py");
    if (!j) return;
    uakd_spn_config cfg = small_config((int)num(j, "k"));
    cfg.min_keypoints = 4;
    CHECK(cfg.in_w == (int)num(j, "in_w") && cfg.in_h == (int)num(j, "in_h") && cfg.stride == (int)num(j, "stride"));
    CHECK(cfg.sigma == num(j, "sigma") && cfg.window == (int)num(j, "window"));
    int N = (int)num(j, "n"), K = cfg.keypoints, plane = 16 * 12, nmaps = N * K, cnt;
    double *kp = doubles(j, "kp", &cnt), *valid_d = doubles(j, "valid", NULL), *vis_d = doubles(j, "vis", NULL);
    CHECK(cnt == 2 * nmaps);
    double *tref = doubles(j, "targets", &cnt), *pred_d = doubles(j, "pred", NULL), *dpred_ref = doubles(j, "dpred", NULL);
    CHECK(cnt == nmaps * plane);
    uint8_t valid[16], vis[16];
    for (int m = 0; m < nmaps; m++) valid[m] = (uint8_t)valid_d[m];

    /* targets: float32 of exp, 1e-6 */
    float *t = malloc((size_t)nmaps * plane * sizeof *t), *dpred = malloc((size_t)nmaps * plane * sizeof *dpred);
    CHECK_OK(uakd_spn_targets(&cfg, N, kp, valid, t, vis));
    double worst = 0;
    for (int i = 0; i < nmaps * plane; i++) worst = fmax(worst, fabs(t[i] - tref[i]));
    CHECK_NEAR(worst, 0, 1e-6);
    for (int m = 0; m < nmaps; m++) CHECK(vis[m] == (uint8_t)vis_d[m]);

    /* loss (relative 1e-6: float targets vs double) and gradient with a scale */
    float *pred = to_floats(pred_d, nmaps * plane);
    double loss;
    CHECK_OK(uakd_spn_loss(&cfg, N, pred, t, vis, 3.0, dpred, &loss));
    CHECK_NEAR(loss, num(j, "loss"), 1e-6 * num(j, "loss"));
    worst = 0;
    for (int i = 0; i < nmaps * plane; i++) worst = fmax(worst, fabs(dpred[i] - 3.0 * dpred_ref[i]));
    CHECK_NEAR(worst, 0, 1e-7);

    /* decoding: plain and corrected soft-argmax, quadratic (input px, 1e-5); conf exact */
    double *plain = doubles(j, "plain", NULL), *corr = doubles(j, "corrected", NULL),
           *quad = doubles(j, "quadratic", NULL), *conf_ref = doubles(j, "conf", NULL);
    for (int n = 0; n < N; n++) {
        double xy[2 * 8], conf[8];
        const float *hm = pred + (size_t)n * K * plane;
        cfg.correct = 0;
        CHECK_OK(uakd_spn_decode(&cfg, hm, xy, conf));
        for (int i = 0; i < 2 * K; i++) CHECK_NEAR(xy[i], plain[2 * n * K + i], 1e-5);
        cfg.correct = 1;
        CHECK_OK(uakd_spn_decode(&cfg, hm, xy, conf));
        for (int i = 0; i < 2 * K; i++) CHECK_NEAR(xy[i], corr[2 * n * K + i], 1e-5);
        for (int k = 0; k < K; k++) CHECK((float)conf[k] == (float)conf_ref[n * K + k]); /* the map's value */
        cfg.refine = UAKD_SPN_QUADRATIC;
        CHECK_OK(uakd_spn_decode(&cfg, hm, xy, conf));
        for (int i = 0; i < 2 * K; i++) CHECK_NEAR(xy[i], quad[2 * n * K + i], 1e-5);
        cfg.refine = UAKD_SPN_SOFTARGMAX;
    }

    /* student backward (accumulating into a non-zero buffer), 1e-6 relative to the largest entry */
    double *dpos_d = doubles(j, "dpos", NULL), *dconf_d = doubles(j, "dconf", NULL), *dhm_ref = doubles(j, "dhm", NULL);
    float *dpos = to_floats(dpos_d, 2 * nmaps), *dconf = to_floats(dconf_d, nmaps);
    float *dhm = malloc((size_t)nmaps * plane * sizeof *dhm);
    for (int i = 0; i < nmaps * plane; i++) dhm[i] = 0.25f;
    double big = 0;
    for (int i = 0; i < nmaps * plane; i++) big = fmax(big, fabs(dhm_ref[i]));
    for (int n = 0; n < N; n++)
        CHECK_OK(uakd_spn_student_local_backward(&cfg, pred + (size_t)n * K * plane, dpos + 2 * n * K, dconf + n * K,
                                                 dhm + (size_t)n * K * plane));
    worst = 0;
    for (int i = 0; i < nmaps * plane; i++) worst = fmax(worst, fabs(dhm[i] - 0.25 - dhm_ref[i]));
    fprintf(stderr, "     worst dhm diff %.3g (largest entry %.3g)\n", worst, big);
    CHECK_NEAR(worst, 0, 1e-6 * big);
    CHECK(big > 0.01);

    free(kp), free(valid_d), free(vis_d), free(tref), free(pred_d), free(dpred_ref), free(t), free(dpred);
    free(pred), free(plain), free(corr), free(quad), free(conf_ref), free(dpos_d), free(dconf_d), free(dhm_ref);
    free(dpos), free(dconf), free(dhm);
    cJSON_Delete(j);
}

/* ---------- sub-pixel accuracy ---------- */

static void test_subpixel_accuracy(void) {
    uakd_spn_config cfg;
    uakd_spn_config_default(&cfg);
    cfg.in_w = 192; /* 48 x 32 heatmaps */
    cfg.in_h = 128;
    int hw = 48, hh = 32;
    float *map = malloc((size_t)hw * hh * sizeof *map);
    uakd_rng rng;
    uakd_rng_seed(&rng, 7);
    double err_corr = 0, err_quad = 0, err_plain = 0, mean_noisy[2] = {0, 0}, max_noisy[2] = {0, 0};
    const int trials = 200;
    for (int it = 0; it < trials; it++) {
        /* centres anywhere, including within half a pixel of the border */
        double x = uakd_rng_range(&rng, -0.45, hw - 0.55), y = uakd_rng_range(&rng, -0.45, hh - 0.55), xy[2], c;
        gaussian(map, hw, hh, x, y, 2);
        cfg.refine = UAKD_SPN_SOFTARGMAX;
        cfg.correct = 1;
        CHECK_OK(uakd_spn_peak(&cfg, map, xy, &c));
        err_corr = fmax(err_corr, hypot(xy[0] - x, xy[1] - y));
        CHECK(c > 0.9 && c <= 1);
        cfg.correct = 0;
        CHECK_OK(uakd_spn_peak(&cfg, map, xy, &c));
        err_plain = fmax(err_plain, hypot(xy[0] - x, xy[1] - y));
        cfg.refine = UAKD_SPN_QUADRATIC;
        CHECK_OK(uakd_spn_peak(&cfg, map, xy, &c));
        err_quad = fmax(err_quad, hypot(xy[0] - x, xy[1] - y));
        /* noise of standard deviation 0.02 (2% of the peak) */
        for (int i = 0; i < hw * hh; i++) map[i] += (float)(0.02 * uakd_rng_normal(&rng));
        for (int m = 0; m < 2; m++) {
            cfg.refine = m ? UAKD_SPN_QUADRATIC : UAKD_SPN_SOFTARGMAX;
            cfg.correct = 1;
            CHECK_OK(uakd_spn_peak(&cfg, map, xy, &c));
            mean_noisy[m] += hypot(xy[0] - x, xy[1] - y) / trials;
            max_noisy[m] = fmax(max_noisy[m], hypot(xy[0] - x, xy[1] - y));
        }
    }
    fprintf(stderr, "     heatmap px, noise-free max error: corrected soft-argmax %.2e, quadratic %.2e, plain "
                    "soft-argmax %.3f; noise 0.02: mean / max %.3f / %.3f (soft-argmax), %.3f / %.3f (quadratic)\n",
            err_corr, err_quad, err_plain, mean_noisy[0], max_noisy[0], mean_noisy[1], max_noisy[1]);
    CHECK(err_corr < 1e-3);
    CHECK(err_quad < 1e-3);
    CHECK(err_plain > 0.2); /* the truncated-window centroid is biased: why the correction exists */
    CHECK(mean_noisy[0] < 0.06 && max_noisy[0] < 0.25);
    CHECK(mean_noisy[1] < 0.2 && max_noisy[1] < 0.75); /* 3 samples per axis: more sensitive to noise */

    CHECK_FAILS(uakd_spn_peak(&cfg, (map[5] = NAN, map), (double[2]){0}, (double[1]){0}), UAKD_EDEGENERATE);
    /* all values <= 0: the argmax pixel itself */
    for (int i = 0; i < hw * hh; i++) map[i] = -1;
    map[10 * hw + 20] = -0.5f;
    double xy[2], c;
    CHECK_OK(uakd_spn_peak(&cfg, map, xy, &c));
    CHECK(xy[0] == 20 && xy[1] == 10 && c == -0.5);
    free(map);
}

/* Two members whose peaks share the integer argmax still decode apart (ensemble variance > 0). */
static void test_ensemble_spread(void) {
    uakd_spn_config cfg = small_config(1);
    int hw = 16, hh = 12;
    float *a = malloc((size_t)hw * hh * sizeof *a), *b = malloc((size_t)hw * hh * sizeof *b);
    gaussian(a, hw, hh, 7.10, 5.00, 2);
    gaussian(b, hw, hh, 7.22, 5.05, 2);
    const float *members[2] = {a, b};
    for (int method = 0; method < 2; method++) {
        cfg.refine = (uakd_spn_refine)method;
        float pred[4], conf[2];
        CHECK_OK(uakd_spn_member_peaks(&cfg, 2, members, pred, conf));
        /* same argmax pixel (7, 5), heatmap shift (0.12, 0.05) = input shift (0.48, 0.2) */
        CHECK_NEAR(pred[2] - pred[0], 0.48, 1e-3);
        CHECK_NEAR(pred[3] - pred[1], 0.20, 1e-3);
        CHECK_NEAR(pred[0], 4 * 7.10 + 1.5, 1e-3);
        double var = 0.5 * ((pred[2] - pred[0]) * (pred[2] - pred[0]) + (pred[3] - pred[1]) * (pred[3] - pred[1]));
        CHECK(var > 0.1); /* unbiased variance of 2 members: (d^2) / 2 per axis, summed */
        CHECK_NEAR(conf[0], a[5 * hw + 7], 0);
        float pos[2], c1;
        CHECK_OK(uakd_spn_local(&cfg, b, pos, &c1)); /* normalised by the input size */
        CHECK_NEAR(pos[0], pred[2] / 64, 1e-6);
        CHECK_NEAR(pos[1], pred[3] / 48, 1e-6);
    }
    free(a);
    free(b);
}

/* ---------- student local predictions and their backward ---------- */

static void test_student_backward_fd(void) {
    uakd_spn_config cfg = small_config(2);
    cfg.window = 3;
    int hw = 16, hh = 12, plane = hw * hh;
    float *hm = malloc(2 * (size_t)plane * sizeof *hm), *dhm = calloc(2 * (size_t)plane, sizeof *dhm);
    uakd_rng rng;
    uakd_rng_seed(&rng, 99);
    gaussian(hm, hw, hh, 6.3, 4.6, 2);
    gaussian(hm + plane, hw, hh, 0.2, 10.7, 2.5); /* window clipped by two borders, wider than sigma */
    for (int i = 0; i < 2 * plane; i++) hm[i] = (float)(0.9 * hm[i] + 0.05 * uakd_rng_normal(&rng) - 0.02);
    float pos[4], conf[2], dpos[4] = {0.7f, -1.3f, 0.4f, 2.1f}, dconf[2] = {0.5f, -0.8f};
    CHECK_OK(uakd_spn_student_local(&cfg, hm, pos, conf));
    double xy[4], c[2];
    CHECK_OK(uakd_spn_decode(&cfg, hm, xy, c));
    for (int k = 0; k < 2; k++) {
        CHECK_NEAR(pos[2 * k], xy[2 * k] / 64, 1e-6);
        CHECK_NEAR(pos[2 * k + 1], xy[2 * k + 1] / 48, 1e-6);
        CHECK_NEAR(conf[k], c[k], 0);
    }
    CHECK_OK(uakd_spn_student_local_backward(&cfg, hm, dpos, dconf, dhm));
    double worst = 0, big = 0;
    int checked = 0;
    for (int i = 0; i < 2 * plane; i++) {
        float h0 = hm[i];
        if (fabsf(h0) < 3e-3f) continue; /* the kink of max(h, 0) */
        double f[2];
        float hv[2] = {h0 + 1e-3f, h0 - 1e-3f};
        for (int s = 0; s < 2; s++) {
            hm[i] = hv[s];
            CHECK_OK(uakd_spn_decode(&cfg, hm, xy, c));
            f[s] = 0;
            for (int k = 0; k < 2; k++)
                f[s] += dpos[2 * k] * xy[2 * k] / 64 + dpos[2 * k + 1] * xy[2 * k + 1] / 48 + dconf[k] * c[k];
        }
        hm[i] = h0;
        double fd = (f[0] - f[1]) / ((double)hv[0] - hv[1]);
        worst = fmax(worst, fabs(fd - dhm[i]));
        big = fmax(big, fabs(dhm[i]));
        checked++;
    }
    CHECK(checked > 100);
    CHECK(big > 0.4); /* the dconf entries */
    CHECK_NEAR(worst, 0, 2e-4);
    /* a map without any positive value: the argmax pixel, only the confidence has a gradient */
    for (int i = 0; i < plane; i++) hm[plane + i] = -0.5f - 0.001f * i;
    memset(dhm, 0, 2 * (size_t)plane * sizeof *dhm);
    CHECK_OK(uakd_spn_student_local(&cfg, hm, pos, conf));
    CHECK_NEAR(pos[2], 1.5 / 64, 1e-7);
    CHECK_NEAR(pos[3], 1.5 / 48, 1e-7);
    CHECK_OK(uakd_spn_student_local_backward(&cfg, hm, dpos, dconf, dhm));
    int nonzero = 0;
    for (int i = 0; i < plane; i++) nonzero += dhm[plane + i] != 0;
    CHECK(nonzero == 1 && dhm[plane] == dconf[1]);
    /* a second call accumulates */
    float before = dhm[4 * hw + 6];
    CHECK_OK(uakd_spn_student_local_backward(&cfg, hm, dpos, dconf, dhm));
    CHECK_NEAR(dhm[4 * hw + 6], 2 * before, 1e-6);
    free(hm);
    free(dhm);
}

/* ---------- selection, correspondences, pose check ---------- */

static void test_select(void) {
    uakd_spn_config cfg;
    uakd_spn_config_default(&cfg);
    uint8_t sel[11];
    int count, ok;
    double t;
    double c1[11] = {0.9, 0.8, 0.7, 0.6, 0.55, 0.5, 0.3, 0.2, 0.1, 0.0, -0.1};
    CHECK_OK(uakd_spn_select(&cfg, c1, sel, &count, &t, &ok));
    CHECK(ok == 1 && count == 5 && t == 0.5 && sel[4] == 1 && sel[5] == 0); /* 0.5 is not above 0.5 */
    double c2[11] = {0.9, 0.8, 0.45, 0.35, 0.31, 0.2, 0.05, 0, 0, 0, 0};
    CHECK_OK(uakd_spn_select(&cfg, c2, sel, &count, &t, &ok));
    CHECK(ok == 1 && count == 5 && fabs(t - 0.3) < 1e-12 && sel[4] == 1 && sel[5] == 0);
    double c3[11] = {0.9, 0.8, 0.45, 0.35, 0.05, 0.1, 0.1, 0, 0, 0, 0.0999};
    /* at 0.1: only 4 above -> rejected, nothing selected */
    CHECK_OK(uakd_spn_select(&cfg, c3, sel, &count, &t, &ok));
    CHECK(ok == 0 && count == 0);
    int any = 0;
    for (int k = 0; k < 11; k++) any |= sel[k];
    CHECK(!any);
    double c4[11] = {0.9, 0.8, 0.45, 0.35, 0.11, 0.1, 0.1, 0, 0, 0, 0.0999};
    CHECK_OK(uakd_spn_select(&cfg, c4, sel, &count, &t, &ok));
    CHECK(ok == 1 && count == 5 && fabs(t - 0.1) < 1e-12);

    double xy[22], kp3d[33], p2[22], p3[33];
    for (int k = 0; k < 11; k++) {
        xy[2 * k] = 10 + k;
        xy[2 * k + 1] = 20 - k;
        for (int d = 0; d < 3; d++) kp3d[3 * k + d] = 100 * k + d;
    }
    double A[6] = {2.5, 0, 3, 0, 2.5, -1}; /* image_from_input: resize by 2.5, then shift */
    CHECK_OK(uakd_spn_correspondences(&cfg, xy, sel, kp3d, A, p2, p3, &count));
    CHECK(count == 5);
    /* selected: 0, 1, 2, 3, 4 */
    CHECK_NEAR(p2[8], 2.5 * 14 + 3, 1e-12);
    CHECK_NEAR(p2[9], 2.5 * 16 - 1, 1e-12);
    CHECK(p3[12] == 400 && p3[14] == 402);
    CHECK_OK(uakd_spn_correspondences(&cfg, xy, sel, kp3d, NULL, p2, p3, &count));
    CHECK(p2[8] == 14 && p2[9] == 16);
}

static void test_pose_check(void) {
    /* SPEED+ camera (data-and-metrics.md), 1920x1200 */
    uakd_camera cam = {2988.5795, 2988.3401, 960, 600, {-0.22383, 0.51410, -0.000665, -0.000214, -0.13124}};
    uakd_pose p = {{1, 0, 0, 0, 1, 0, 0, 0, 1}, {0.3, -0.2, 10}};
    CHECK(uakd_spn_pose_check(&p, &cam, 1920, 1200, 50) == UAKD_SPN_POSE_OK);
    p.t[2] = 55;
    CHECK(uakd_spn_pose_check(&p, &cam, 1920, 1200, 50) == UAKD_SPN_POSE_DEPTH);
    p.t[2] = -10;
    CHECK(uakd_spn_pose_check(&p, &cam, 1920, 1200, 50) == UAKD_SPN_POSE_DEPTH);
    p.t[2] = 0;
    CHECK(uakd_spn_pose_check(&p, &cam, 1920, 1200, 50) == UAKD_SPN_POSE_DEPTH);
    p.t[2] = NAN;
    CHECK(uakd_spn_pose_check(&p, &cam, 1920, 1200, 50) == UAKD_SPN_POSE_DEPTH);
    /* x/z = 0.35: pinhole u = 960 + 1046 = 2006 > 1920, with distortion ~1986: outside */
    p.t[0] = 3.5;
    p.t[1] = 0;
    p.t[2] = 10;
    CHECK(uakd_spn_pose_check(&p, &cam, 1920, 1200, 50) == UAKD_SPN_POSE_FOV);
    /* x/z = 0.3: u ~ 960 + 0.3 * 0.98 * 2988.6 ~ 1839: inside */
    p.t[0] = 3;
    CHECK(uakd_spn_pose_check(&p, &cam, 1920, 1200, 50) == UAKD_SPN_POSE_OK);
    /* x/z = 2, beyond the fold: the distortion maps it to u ~ 540, inside the image, yet it is 63
     * degrees off axis */
    p.t[0] = 20;
    double uv[2];
    uakd_camera_distort_to_pixel(&cam, 2.0, 0, uv);
    CHECK(uv[0] > 0 && uv[0] < 1920);
    CHECK(uakd_spn_pose_check(&p, &cam, 1920, 1200, 50) == UAKD_SPN_POSE_FOV);
    p.t[0] = 0;
    p.t[1] = -6.5; /* v = 600 - 0.65 * ~0.93 * 2988 < 0 */
    CHECK(uakd_spn_pose_check(&p, &cam, 1920, 1200, 50) == UAKD_SPN_POSE_FOV);
}

/* ---------- augmentation ---------- */

static uakd_image constant_image(int w, int h, int c, uint8_t v) {
    uakd_image im;
    memset(&im, 0, sizeof im);
    CHECK_OK(uakd_image_alloc(&im, w, h, c));
    if (im.data) memset(im.data, v, (size_t)w * h * c);
    return im;
}

static void test_random_erase(void) {
    uakd_spn_erase_config ec;
    uakd_spn_erase_config_default(&ec);
    CHECK(ec.area_min == 0.02 && ec.area_max == 0.33 && ec.aspect_min == 0.3 && ec.aspect_max == 3.3);
    int W = 80, H = 60, erased = 0;
    for (uint64_t seed = 1; seed <= 20; seed++) {
        uakd_image im = constant_image(W, H, 3, 77), im2 = constant_image(W, H, 3, 77);
        uakd_rng r1, r2;
        uakd_rng_seed(&r1, seed);
        uakd_rng_seed(&r2, seed);
        uakd_spn_rect rect, rect2;
        CHECK_OK(uakd_spn_random_erase(&im, &r1, &ec, &rect));
        CHECK_OK(uakd_spn_random_erase(&im2, &r2, &ec, &rect2));
        CHECK(memcmp(&rect, &rect2, sizeof rect) == 0 && memcmp(im.data, im2.data, (size_t)W * H * 3) == 0);
        if (rect.w == 0) {
            uakd_image_free(&im);
            uakd_image_free(&im2);
            continue;
        }
        erased++;
        CHECK(rect.x >= 0 && rect.y >= 0 && rect.x + rect.w <= W && rect.y + rect.h <= H);
        double frac = (double)rect.w * rect.h / (W * H);
        CHECK(frac > 0.015 && frac < 0.36);
        long outside_changed = 0, inside_same = 0;
        double mean = 0;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                for (int c = 0; c < 3; c++) {
                    uint8_t v = im.data[(y * W + x) * 3 + c];
                    int in = x >= rect.x && x < rect.x + rect.w && y >= rect.y && y < rect.y + rect.h;
                    if (!in) outside_changed += v != 77;
                    else {
                        inside_same += v == 77;
                        mean += v;
                    }
                }
        mean /= 3.0 * rect.w * rect.h;
        CHECK(outside_changed == 0);
        CHECK(inside_same < 0.05 * 3 * rect.w * rect.h); /* uniform noise hits 77 with p = 1/256 */
        CHECK(mean > 100 && mean < 155);                 /* uniform 0..255: 127.5 */
        uakd_image_free(&im);
        uakd_image_free(&im2);
    }
    CHECK(erased >= 18);
    /* different seeds give different rectangles */
    uakd_image a = constant_image(W, H, 3, 0);
    uakd_rng r;
    uakd_spn_rect ra, rb;
    uakd_rng_seed(&r, 1);
    CHECK_OK(uakd_spn_random_erase(&a, &r, &ec, &ra));
    uakd_rng_seed(&r, 2);
    CHECK_OK(uakd_spn_random_erase(&a, &r, &ec, &rb));
    CHECK(memcmp(&ra, &rb, sizeof ra) != 0);
    uakd_image_free(&a);
    /* a rectangle that can never fit: nothing changes; RGBA keeps its alpha */
    uakd_image b = constant_image(W, H, 4, 200);
    ec.area_min = ec.area_max = 1;
    ec.aspect_min = ec.aspect_max = 1;
    CHECK_OK(uakd_spn_random_erase(&b, &r, &ec, &ra));
    CHECK(ra.w == 0 && ra.h == 0 && b.data[0] == 200 && b.data[(W * H - 1) * 4 + 2] == 200);
    uakd_spn_erase_config_default(&ec);
    CHECK_OK(uakd_spn_random_erase(&b, &r, &ec, &ra));
    CHECK(ra.w > 0);
    int alpha_ok = 1;
    for (int i = 0; i < W * H; i++) alpha_ok &= b.data[4 * i + 3] == 200;
    CHECK(alpha_ok);
    ec.area_min = 0;
    CHECK_FAILS(uakd_spn_random_erase(&b, &r, &ec, &ra), UAKD_EINVAL);
    uakd_image_free(&b);
}

static void test_sun_flare(void) {
    uakd_spn_flare_config fc;
    uakd_spn_flare_config_default(&fc);
    int W = 96, H = 64;
    for (uint64_t seed = 3; seed < 8; seed++) {
        uakd_image im = constant_image(W, H, 3, 40), im2 = constant_image(W, H, 3, 40);
        uakd_rng r1, r2;
        uakd_rng_seed(&r1, seed);
        uakd_rng_seed(&r2, seed);
        uakd_spn_flare f, f2;
        CHECK_OK(uakd_spn_sun_flare(&im, &r1, &fc, &f));
        CHECK_OK(uakd_spn_sun_flare(&im2, &r2, &fc, &f2));
        CHECK(memcmp(im.data, im2.data, (size_t)W * H * 3) == 0 && f.cx[0] == f2.cx[0]);
        CHECK(f.count == 4);
        CHECK(f.cx[0] >= 0 && f.cx[0] < W && f.cy[0] >= 0 && f.cy[0] < 0.5 * H);
        CHECK(f.radius[0] >= 0.05 * W && f.radius[0] <= 0.15 * W);
        CHECK(f.intensity[0] >= 0.6 && f.intensity[0] <= 1.0);
        long bad_outside = 0, darker = 0, grey = 0;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                const uint8_t *p = im.data + (y * W + x) * 3;
                int inside = 0;
                for (int i = 0; i < f.count; i++)
                    inside |= (x - f.cx[i]) * (x - f.cx[i]) + (y - f.cy[i]) * (y - f.cy[i]) < f.radius[i] * f.radius[i];
                if (!inside) bad_outside += p[0] != 40;
                darker += p[0] < 40;
                grey += p[0] != p[1] || p[1] != p[2];
            }
        CHECK(bad_outside == 0 && darker == 0 && grey == 0);
        /* the pixel nearest the main centre gains at least the main disc's value there */
        int px = (int)lround(f.cx[0]), py = (int)lround(f.cy[0]);
        if (px >= W) px = W - 1;
        double q = ((px - f.cx[0]) * (px - f.cx[0]) + (py - f.cy[0]) * (py - f.cy[0])) / (f.radius[0] * f.radius[0]);
        double gain = 255 * f.intensity[0] * (1 - q) * (1 - q);
        CHECK(im.data[(py * W + px) * 3] >= fmin(255, 40 + gain - 0.5));
        CHECK(im.data[(py * W + px) * 3] > 40 + 100);
        uakd_image_free(&im);
        uakd_image_free(&im2);
    }
    /* saturation at 255 */
    uakd_image s = constant_image(W, H, 1, 250);
    uakd_rng r;
    uakd_rng_seed(&r, 11);
    uakd_spn_flare f;
    CHECK_OK(uakd_spn_sun_flare(&s, &r, &fc, &f));
    int px = (int)f.cx[0], py = (int)f.cy[0];
    CHECK(s.data[py * W + px] == 255);
    fc.ghosts = UAKD_SPN_MAX_FLARES;
    CHECK_FAILS(uakd_spn_sun_flare(&s, &r, &fc, &f), UAKD_EINVAL);
    uakd_image_free(&s);
}

int main(void) {
    RUN(test_config_and_conventions);
    RUN(test_targets_by_hand);
    RUN(test_parity);
    RUN(test_subpixel_accuracy);
    RUN(test_ensemble_spread);
    RUN(test_student_backward_fd);
    RUN(test_select);
    RUN(test_pose_check);
    RUN(test_random_erase);
    RUN(test_sun_flare);
    return TEST_END();
}
