/* SPNv2 learns: a reduced network trained on 4 synthetic SPEED+ images (192x128 -> 128x128 input,
 * batch = the 4 images, no augmentation, 150 steps at lr 2e-3, one thread) must drive its heatmap
 * loss down by more than 10x and, as the SAVED model (inference build, uakd_spn_decode /
 * uakd_spn_evaluate), put the peaks on those same images within a few pixels and recover every
 * pose. Also the batch-norm recalibration (uakd_spn_recalibrate_bn) against statistics computed
 * here from the layers' inputs.
 *
 * Reference run (this machine, oneDNN backend, 8 s): loss 60.8 at step 1 -> 1.91 over the last 5
 * steps; mean keypoint error 2.1 px (max 5.5 px) on the 128x128 input; 4/4 poses accepted,
 * E_T 0.10 m, E_R 1.6 deg (datasets of seeds 6-8: 1.7-2.1 px, max < 6 px, 4/4). The same weights
 * with the running averages of training (the checkpoint; no recalibration) decode at about 60 px
 * with peaks near 0 and every image rejected: the defect the recalibration fixes
 * (docs/speedplus.md). Zeroing the heatmap gradient, or bn_recal = 0, fails this test. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "test.h"
#include "test_synth_data.h"
#include "uakd/augment.h"
#include "uakd/backend.h"
#include "uakd/safetensors.h"
#include "uakd/spn_train.h"

enum { N_IMG = 4, IN = 128, STEPS = 150 };

static char g_root[1024], g_csv[1100];

static int setup(void) {
    static int done = 0, ok = 0;
    if (done) return ok;
    done = 1;
    snprintf(g_root, sizeof g_root, "%s", test_tmp("spn_overfit_ds"));
    snprintf(g_csv, sizeof g_csv, "%s/kp.csv", g_root);
    static const test_synth_spec spec = {.format = UAKD_SYNTH_SPEEDPLUS, .count = N_IMG, .val_fraction = 0,
                                         .width = 192, .height = 128, .depth_min = 3, .depth_max = 5, .seed = 5};
    ok = test_synth_dataset(g_root, &spec);
    return ok;
}

static const uakd_spnnet_config g_model = {0.25, 0.34, 16, 2, 2, 11, IN, IN, 0, 0, 0};

/* Heatmap losses of the log, in step order. */
static int read_losses(const char *dir, double *loss, int cap) {
    char path[1200], line[2048];
    snprintf(path, sizeof path, "%s/train_log.jsonl", dir);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int n = 0;
    while (fgets(line, sizeof line, f) && n < cap) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *x = cJSON_GetObjectItem(j, "heatmap");
        if (cJSON_IsNumber(x)) loss[n++] = x->valuedouble;
        cJSON_Delete(j);
    }
    fclose(f);
    return n;
}

/* The saved model of dir; with stats_from (a checkpoint) its batch-norm running statistics replaced
 * by that file's. NULL after a failed check. */
static uakd_spnnet *open_model(const char *dir, int max_batch, const char *stats_from) {
    uakd_spn_model_info info;
    uakd_spnnet *m = NULL;
    CHECK_OK(uakd_spn_model_open(dir, max_batch, &info, &m));
    if (!m || !stats_from) return m;
    uakd_safetensors *st = NULL;
    CHECK_OK(uakd_safetensors_open(stats_from, &st));
    int replaced = 0;
    for (int i = 0; st && i < uakd_net_num_params(m->net); i++) {
        const uakd_param *p = uakd_net_param(m->net, i);
        if (!(p->flags & UAKD_PARAM_BUFFER)) continue;
        const int64_t shape[1] = {p->count};
        CHECK_OK(uakd_safetensors_read_f32(st, p->name, 1, shape, p->data));
        replaced++;
    }
    CHECK(replaced > 80); /* running mean and variance of every batch norm */
    uakd_safetensors_free(st);
    return m;
}

/* Decodes m's heatmaps of every image (test crop) and measures the distance of each peak to its
 * projected keypoint, in input pixels, over the keypoints inside the input. */
static void keypoint_errors(uakd_spnnet *m, const uakd_dataset *ds, double *mean, double *max, double *conf) {
    *mean = *max = *conf = NAN;
    if (!m) return;
    uakd_spn_config sc;
    uakd_spn_config_for(&m->cfg, &sc);
    uakd_augment_config ac;
    uakd_augment_config_default(&ac, 0);
    ac.mode = UAKD_CROP_FULL, ac.out_width = IN, ac.out_height = IN;
    uakd_sample_scratch scratch = {0};
    double sum = 0, csum = 0, worst = 0;
    int n = 0;
    for (int i = 0; i < ds->num_instances; i++) {
        uakd_target t;
        CHECK_OK(uakd_sample_prepare(ds, i, &ac, NULL, NULL, &scratch, uakd_net_out(m->net, m->input), NULL, &t));
        CHECK_OK(uakd_spnnet_forward(m, 1, 0, NULL));
        double xy[2 * 11], c[11];
        CHECK_OK(uakd_spn_decode(&sc, uakd_net_out(m->net, m->heatmap), xy, c));
        for (int k = 0; k < 11; k++) {
            const double *g = t.kp2d[k];
            if (!(g[0] >= -0.5 && g[0] < IN - 0.5 && g[1] >= -0.5 && g[1] < IN - 0.5)) continue;
            const double e = hypot(xy[2 * k] - g[0], xy[2 * k + 1] - g[1]);
            sum += e, csum += c[k], n++;
            worst = fmax(worst, e);
        }
    }
    CHECK(n >= 30); /* most of the 44 keypoints lie inside the input */
    *mean = sum / n, *max = worst, *conf = csum / n;
    uakd_sample_scratch_free(&scratch);
}

static void evaluate(uakd_spnnet *m, const uakd_dataset *ds, uakd_spn_eval_stats *st) {
    memset(st, 0, sizeof *st);
    if (!m) return;
    uakd_spn_config sc;
    uakd_spn_config_for(&m->cfg, &sc);
    CHECK_OK(uakd_spn_evaluate(m, &sc, ds, NULL, 0, 0, NULL, NULL, st, NULL));
}

static void test_overfit_four_images(void) {
    if (!setup()) {
        CHECK(setup());
        return;
    }
    uakd_set_num_threads(1);
    uakd_spn_train_config c;
    uakd_spn_train_config_default(&c);
    c.data_root = g_root, c.keypoints_csv = g_csv, c.out_dir = test_tmp("spn_overfit_run");
    c.val_list = NULL;
    c.model = g_model;
    c.batch = N_IMG, c.steps = STEPS, c.log_every = 1, c.ckpt_every = 0, c.cache_bytes = 1 << 24;
    c.erase_p = c.flare_p = c.photometric_p = 0;
    c.lr = 2e-3; /* the default 1e-3 needs 200 steps for the same result */
    uakd_spn_train_result res;
    CHECK_OK(uakd_spn_train_run(&c, &res));
    uakd_set_num_threads(0);
    double loss[STEPS];
    const int n = read_losses(c.out_dir, loss, STEPS);
    CHECK(n == STEPS);
    if (n != STEPS) return;
    double last = 0;
    for (int k = n - 5; k < n; k++) last += loss[k] / 5;
    /* the all-zero prediction scores sum exp(-d^2 / sigma^2) ~ pi sigma^2 = 12.6 per keypoint */
    CHECK_MSG(last < loss[0] / 10 && last < 5, "heatmap loss %g at step 1, %g over the last 5 steps", loss[0], last);

    uakd_dataset *ds = NULL;
    CHECK_OK(uakd_dataset_load_speedplus(g_root, "synthetic", "train", g_csv, &ds));
    if (!ds) return;
    double mean, max, conf;
    uakd_spnnet *m = open_model(c.out_dir, N_IMG, NULL);
    keypoint_errors(m, ds, &mean, &max, &conf);
    CHECK_MSG(mean < 3 && max < 12 && conf > 0.5, "trained images: keypoint error %g px mean, %g max; peak %g", mean,
              max, conf);
    uakd_spn_eval_stats st;
    evaluate(m, ds, &st);
    CHECK_MSG(st.images == N_IMG && st.outcomes[UAKD_SPN_OK] == N_IMG && st.E_T < 0.3 && st.E_R_deg < 5,
              "%d of %d poses accepted, E_T %g m, E_R %g deg", st.outcomes[UAKD_SPN_OK], st.images, st.E_T, st.E_R_deg);
    uakd_spnnet_free(m);
    /* the same weights with the running averages of training (the final checkpoint, written before
     * the recalibration): reported, not asserted */
    char ckpt[1200];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", c.out_dir);
    m = open_model(c.out_dir, N_IMG, ckpt);
    double smean, smax, sconf;
    keypoint_errors(m, ds, &smean, &smax, &sconf);
    uakd_spn_eval_stats sst;
    evaluate(m, ds, &sst);
    uakd_spnnet_free(m);
    fprintf(stderr, "overfit: loss %.3g -> %.3g; keypoint error %.2f px (max %.1f, peak %.2f); %d/%d poses, E_T %.3f m, "
                    "E_R %.2f deg; with the running averages: %.1f px, peak %.2f, %d/%d poses\n",
            loss[0], last, mean, max, conf, st.outcomes[UAKD_SPN_OK], st.images, st.E_T, st.E_R_deg, smean, sconf,
            sst.outcomes[UAKD_SPN_OK], sst.images);
    uakd_dataset_free(ds);
}

/* The expected statistics: for each batch of the recalibration (images {0, 1}, then {2}), a
 * training-mode forward with drop-connect off, and each batch norm's input's per-channel mean and
 * unbiased variance, weighted by the batch's images. Then uakd_spn_recalibrate_bn must reproduce
 * them; afterwards each layer's own momentum is back (one more training forward updates the
 * statistics by it). */
static void test_recalibration_statistics(void) {
    if (!setup()) {
        CHECK(setup());
        return;
    }
    uakd_dataset *ds = NULL;
    CHECK_OK(uakd_dataset_load_speedplus(g_root, "synthetic", "train", g_csv, &ds));
    if (!ds) return;
    uakd_spnnet_config mc = g_model;
    mc.drop_connect = 0.5; /* masks exist; the recalibration must run without them */
    uakd_spnnet *m = NULL;
    CHECK_OK(uakd_spnnet_new(&mc, 2, 1, &m));
    if (!m) {
        uakd_dataset_free(ds);
        return;
    }
    CHECK(m->n_drop > 0);
    uakd_rng rng;
    uakd_rng_seed(&rng, 7);
    CHECK_OK(uakd_net_init(m->net, &rng));
    uakd_net *net = m->net;
    const int layers = uakd_net_num_layers(net);
    int *bn = malloc(sizeof(int) * layers), nbn = 0;
    for (int l = 0; l < layers; l++)
        if (uakd_net_layer(net, l).kind == UAKD_LAYER_BATCHNORM) bn[nbn++] = l;
    CHECK(nbn > 40);
    int64_t total = 0;
    for (int k = 0; k < nbn; k++) total += 2 * uakd_net_layer(net, bn[k]).c;
    double *want = calloc((size_t)total, sizeof *want); /* per layer: means then variances */
    uakd_augment_config ac;
    uakd_augment_config_default(&ac, 0);
    ac.mode = UAKD_CROP_FULL, ac.out_width = IN, ac.out_height = IN;
    uakd_sample_scratch scratch = {0};
    const size_t per = 3 * (size_t)IN * IN;
    static const int batches[2][3] = {{2, 0, 1}, {1, 2, 0}}; /* count, images */
    for (int b = 0; b < 2; b++) {
        const int nb = batches[b][0];
        for (int i = 0; i < nb; i++) {
            uakd_target t;
            CHECK_OK(uakd_sample_prepare(ds, batches[b][1 + i], &ac, NULL, NULL, &scratch,
                                         uakd_net_out(net, m->input) + i * per, NULL, &t));
        }
        CHECK_OK(uakd_spnnet_forward(m, nb, 0, NULL)); /* sets the drop-connect masks to 1 */
        CHECK_OK(uakd_net_forward(net, nb, 1));
        int64_t off = 0;
        for (int k = 0; k < nbn; k++) {
            const uakd_layer_info li = uakd_net_layer(net, bn[k]);
            const float *x = uakd_net_out(net, li.inputs[0]);
            const size_t hw = (size_t)li.h * li.w;
            for (int ch = 0; ch < li.c; ch++) {
                double s = 0, s2 = 0;
                for (int i = 0; i < nb; i++)
                    for (size_t p = 0; p < hw; p++) s += x[((size_t)i * li.c + ch) * hw + p];
                const double cnt = (double)nb * hw, mu = s / cnt;
                for (int i = 0; i < nb; i++)
                    for (size_t p = 0; p < hw; p++) {
                        const double d = x[((size_t)i * li.c + ch) * hw + p] - mu;
                        s2 += d * d;
                    }
                want[off + ch] += nb / 3.0 * mu;
                want[off + li.c + ch] += nb / 3.0 * (cnt > 1 ? s2 / (cnt - 1) : s2);
            }
            off += 2 * li.c;
        }
    }
    const int idx[3] = {0, 1, 2};
    CHECK_OK(uakd_spn_recalibrate_bn(m, ds, idx, 3, 5)); /* 5 > 3: all three */
    int64_t off = 0, bad = 0;
    double worst = 0;
    for (int k = 0; k < nbn; k++) {
        const uakd_layer_info li = uakd_net_layer(net, bn[k]);
        char name[256];
        snprintf(name, sizeof name, "%s.running_mean", li.name);
        const uakd_param *rm = uakd_net_param_find(net, name);
        snprintf(name, sizeof name, "%s.running_var", li.name);
        const uakd_param *rv = uakd_net_param_find(net, name);
        CHECK(rm && rv);
        if (!rm || !rv) break;
        for (int ch = 0; ch < li.c; ch++) {
            const double em = fabs(rm->data[ch] - want[off + ch]) / (1e-3 + fabs(want[off + ch]));
            const double ev = fabs(rv->data[ch] - want[off + li.c + ch]) / (1e-3 + want[off + li.c + ch]);
            worst = fmax(worst, fmax(em, ev));
            bad += !(em < 1e-3 && ev < 1e-3);
        }
        off += 2 * li.c;
    }
    CHECK_MSG(bad == 0, "%lld statistics off, worst relative error %g", (long long)bad, worst);
    /* momenta restored: batch {2} once more in training mode moves the statistics by the layer's momentum
     * (stem 0.1, BiFPN 0.01, head 0.003) towards that batch's, i.e. by m (mu_{2} - mu_all) */
    const char *probe[3] = {"efficientnet.0.1", "bifpn.0.p2_down_channel.conv.bn", "heatmap.bns.0"};
    const float mom[3] = {m->norm[0].momentum, m->norm[1].momentum, m->norm[2].momentum};
    for (int q = 0; q < 3; q++) {
        const int id = uakd_net_find(net, probe[q]);
        CHECK(id >= 0);
        if (id < 0) continue;
        char name[256];
        snprintf(name, sizeof name, "%s.running_mean", probe[q]);
        const uakd_param *rm = uakd_net_param_find(net, name);
        const float before = rm->data[0];
        CHECK_OK(uakd_net_forward(net, 1, 1)); /* the input still holds image 2, the masks 1 */
        const float *x = uakd_net_out(net, uakd_net_layer(net, id).inputs[0]);
        const uakd_layer_info li = uakd_net_layer(net, id);
        double mu = 0;
        for (size_t p = 0; p < (size_t)li.h * li.w; p++) mu += x[p];
        mu /= (double)li.h * li.w;
        CHECK_NEAR(rm->data[0], (1 - mom[q]) * before + mom[q] * mu, 1e-5 * (1 + fabs(mu)));
    }
    CHECK(mom[0] == 0.1f && mom[1] == 0.01f && mom[2] == 0.003f);
    /* n = 0: nothing changes */
    const uakd_param *rm0 = uakd_net_param_find(net, "efficientnet.0.1.running_mean");
    const float keep = rm0->data[0];
    CHECK_OK(uakd_spn_recalibrate_bn(m, ds, idx, 3, 0));
    CHECK(rm0->data[0] == keep);
    free(want);
    free(bn);
    uakd_sample_scratch_free(&scratch);
    uakd_spnnet_free(m);
    uakd_dataset_free(ds);
}

static void test_config_checked(void) {
    uakd_spn_train_config c;
    uakd_spn_train_config_default(&c);
    CHECK(c.bn_recal == 200);
    c.data_root = "x", c.keypoints_csv = "x", c.out_dir = test_tmp("spn_overfit_bad");
    c.bn_recal = -1;
    CHECK_FAILS(uakd_spn_train_run(&c, NULL), UAKD_EINVAL);
}

int main(void) {
    RUN(test_config_checked);
    RUN(test_recalibration_statistics);
    RUN(test_overfit_four_images);
    return TEST_END();
}
