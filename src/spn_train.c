/* The SPNv2 family of the training loop (uakd/spn_train.h; the loop itself: train_loop.c). Per
 * step s of S:
 *   batch = loader (whole image -> in_w x in_h, photometric p = 0.5), then erasing / sun flare;
 *   H = Gaussian targets (sigma 2) of the projected keypoints; L = sum (h - H)^2 / n_visible
 *   (+ hook terms), its gradient into the heatmaps (and the hook's seeds) for the loop's backward;
 *   lr(s) = lr0 gamma^(#milestones <= s), milestones floor(15 S / 20), floor(18 S / 20).
 * Before a validation and before the final model is saved, the batch-norm statistics are
 * recomputed for the current weights on the first bn_recal training images: momentum n_j / N_j
 * for batch j of n_j images, N_j images so far, gives mu = sum_j n_j mu_j / N (and the same for
 * the unbiased variances).
 * Random streams: initialisation split(seed, 1); the loop's stream split(seed, 2) (erasing and
 * flare, then the drop-connect masks of the forward; checkpointed); the loader's (seed, position). */
#include "uakd/spn_train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "uakd/fileio.h"
#include "uakd/json.h"
#include "uakd/train_loop.h"
#include "uakd/weights.h"

void uakd_spn_train_config_default(uakd_spn_train_config *c) {
    memset(c, 0, sizeof *c);
    c->domain = "synthetic";
    c->train_list = "train";
    c->val_list = "validation";
    uakd_spnnet_config_phi(0, &c->model);
    c->batch = 8;
    c->steps = 10000;
    c->lr = 1e-3;
    c->weight_decay = 1e-4;
    c->gamma = 0.1;
    c->erase_p = c->flare_p = c->photometric_p = 0.5;
    c->bn_recal = 200;
    c->seed = 1;
    c->loader_threads = 1;
    c->cache_bytes = (size_t)1 << 30;
    c->val_max = 200;
    c->ckpt_every = 500;
    c->log_every = 10;
}

/* The family's part of a run (the loop holds the optimizers, loader, state and log). */
typedef struct run {
    const uakd_spn_train_config *c;
    uakd_spn_train_result *res;
    uakd_dataset *ds, *val_ds;
    int *train_idx;
    int n_val;
    uakd_spnnet *m;
    uakd_spn_config spn;
    float *targets;
    uint8_t *vis;
    double *kp;
    uint8_t *valid;
    uakd_image im;
    int64_t recal_step; /* the step whose weights the batch-norm statistics were recomputed for; -1: none */
} run;

static void run_free(run *r) {
    uakd_spnnet_free(r->m);
    free(r->train_idx);
    free(r->targets), free(r->vis), free(r->kp), free(r->valid);
    uakd_image_free(&r->im);
    uakd_dataset_free(r->ds);
    uakd_dataset_free(r->val_ds);
}

static uakd_status check_config(const uakd_spn_train_config *c) {
    if (!c->data_root || !c->out_dir || !c->keypoints_csv || !c->domain || !c->train_list)
        return uakd_fail(UAKD_EINVAL, "spn train: data_root, domain, train_list, keypoints_csv and out_dir are required");
    if (c->bn_recal < 0)
        return uakd_fail(UAKD_EINVAL, "spn train: bn_recal = %d images, expected >= 0 (0: keep the running averages)",
                         c->bn_recal);
    if (!(c->gamma > 0 && c->gamma <= 1))
        return uakd_fail(UAKD_EINVAL, "spn train: gamma %g out of range ((0, 1])", c->gamma);
    const double ps[3] = {c->erase_p, c->flare_p, c->photometric_p};
    for (int k = 0; k < 3; k++)
        if (!(ps[k] >= 0 && ps[k] <= 1)) return uakd_fail(UAKD_EINVAL, "spn train: augmentation probability %g not in [0, 1]", ps[k]);
    return UAKD_OK;
}

static uakd_status load_data(run *r) {
    const uakd_spn_train_config *c = r->c;
    UAKD_TRY(uakd_dataset_load_speedplus(c->data_root, c->domain, c->train_list, c->keypoints_csv, &r->ds));
    if (r->ds->num_instances == 0) return uakd_fail(UAKD_EINVAL, "spn train: %s/%s/%s.json lists no image", c->data_root, c->domain, c->train_list);
    if (r->ds->objects[0].num_keypoints != c->model.keypoints)
        return uakd_fail(UAKD_EINVAL, "spn train: %s has %d keypoints, the model %d heatmaps", c->keypoints_csv,
                         r->ds->objects[0].num_keypoints, c->model.keypoints);
    if (c->val_list && *c->val_list) {
        UAKD_TRY(uakd_dataset_load_speedplus(c->data_root, c->domain, c->val_list, c->keypoints_csv, &r->val_ds));
        r->n_val = r->val_ds->num_instances;
        if (c->val_max && r->n_val > c->val_max) r->n_val = c->val_max;
    }
    return UAKD_OK;
}

static uakd_status build(run *r) {
    const uakd_spn_train_config *c = r->c;
    UAKD_TRY(uakd_spnnet_new(&c->model, c->batch, 1, &r->m));
    uakd_rng init;
    uakd_rng_seed(&init, c->seed);
    uakd_rng_split(&init, 1, &init);
    UAKD_TRY(uakd_net_init(r->m->net, &init));
    if (c->init_weights && !c->resume) UAKD_TRY(uakd_weights_load(r->m->net, NULL, c->init_weights, 0));
    uakd_spn_config_for(&c->model, &r->spn);
    int hw, hh;
    uakd_spn_heatmap_size(&r->spn, &hw, &hh);
    const size_t K = (size_t)c->model.keypoints, n = (size_t)c->batch;
    r->targets = malloc(sizeof(float) * n * K * (size_t)hw * (size_t)hh);
    r->vis = malloc(n * K);
    r->valid = malloc(n * K);
    r->kp = malloc(sizeof(double) * 2 * n * K);
    if (!r->targets || !r->vis || !r->valid || !r->kp) return uakd_fail(UAKD_ENOMEM, "spn train: out of memory");
    UAKD_TRY(uakd_image_alloc(&r->im, c->model.in_w, c->model.in_h, 3));
    r->train_idx = malloc(sizeof(int) * (size_t)r->ds->num_instances);
    if (!r->train_idx) return uakd_fail(UAKD_ENOMEM, "spn train: out of memory");
    for (int i = 0; i < r->ds->num_instances; i++) r->train_idx[i] = i;
    return UAKD_OK;
}

/* The data, the model, and what the loop needs of them: every training image, whole, resized to
 * the input, photometric augmentation only. */
static uakd_status prepare(void *self, uakd_train_setup *s) {
    run *r = self;
    const uakd_spn_train_config *c = r->c;
    UAKD_TRY(load_data(r));
    UAKD_TRY(build(r));
    s->net = r->m->net;
    s->train_ds = r->ds;
    s->train_idx = r->train_idx;
    s->n_train = r->ds->num_instances;
    uakd_augment_config_default(&s->sample, 1);
    s->sample.mode = UAKD_CROP_FULL;
    s->sample.out_width = c->model.in_w;
    s->sample.out_height = c->model.in_h;
    s->sample.shift = s->sample.scale = s->sample.rotation_deg = 0;
    s->sample.photometric_p = c->photometric_p;
    s->can_validate = r->val_ds && r->n_val > 0;
    return UAKD_OK;
}

static cJSON *model_json(const uakd_spnnet_config *m) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "width_mult", m->width_mult);
    cJSON_AddNumberToObject(j, "depth_mult", m->depth_mult);
    cJSON_AddNumberToObject(j, "bifpn_width", m->bifpn_width);
    cJSON_AddNumberToObject(j, "bifpn_layers", m->bifpn_layers);
    cJSON_AddNumberToObject(j, "head_depth", m->head_depth);
    cJSON_AddNumberToObject(j, "keypoints", m->keypoints);
    cJSON_AddNumberToObject(j, "in_w", m->in_w);
    cJSON_AddNumberToObject(j, "in_h", m->in_h);
    cJSON_AddNumberToObject(j, "group_norm", m->group_norm);
    cJSON_AddNumberToObject(j, "large_backbone", m->large_backbone);
    return j;
}

static uakd_status write_config(const void *self, const char *path) {
    const run *r = self;
    const uakd_spn_train_config *c = r->c;
    cJSON *j = cJSON_CreateObject(), *kp = cJSON_CreateArray(), *tr = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "family", "spnv2");
    cJSON_AddItemToObject(j, "model", model_json(&c->model));
    const uakd_object_info *o = &r->ds->objects[0];
    for (int k = 0; k < o->num_keypoints; k++) cJSON_AddItemToArray(kp, cJSON_CreateDoubleArray(o->keypoints[k], 3));
    cJSON_AddItemToObject(j, "keypoints", kp);
    cJSON_AddStringToObject(tr, "data_root", c->data_root);
    cJSON_AddStringToObject(tr, "domain", c->domain);
    cJSON_AddStringToObject(tr, "train_list", c->train_list);
    cJSON_AddStringToObject(tr, "val_list", c->val_list ? c->val_list : "");
    cJSON_AddStringToObject(tr, "keypoints_csv", c->keypoints_csv);
    cJSON_AddNumberToObject(tr, "batch", c->batch);
    cJSON_AddNumberToObject(tr, "steps", (double)c->steps);
    cJSON_AddNumberToObject(tr, "lr", c->lr);
    cJSON_AddNumberToObject(tr, "weight_decay", c->weight_decay);
    cJSON_AddNumberToObject(tr, "gamma", c->gamma);
    cJSON_AddNumberToObject(tr, "clip", c->clip);
    cJSON_AddNumberToObject(tr, "erase_p", c->erase_p);
    cJSON_AddNumberToObject(tr, "flare_p", c->flare_p);
    cJSON_AddNumberToObject(tr, "photometric_p", c->photometric_p);
    cJSON_AddNumberToObject(tr, "bn_recal", c->bn_recal);
    cJSON_AddNumberToObject(tr, "drop_connect", c->model.drop_connect);
    cJSON_AddNumberToObject(tr, "seed", (double)c->seed);
    cJSON_AddItemToObject(j, "train", tr);
    return uakd_json_write_atomic(path, j);
}

/* The batch norm m's layer belongs to (by its name's part of the network), or NULL. */
static const uakd_spnnet_norm *norm_of(const uakd_spnnet *m, const char *name) {
    static const char *const parts[3] = {"efficientnet.", "bifpn.", "heatmap."};
    for (int k = 0; k < 3; k++)
        if (!strncmp(name, parts[k], strlen(parts[k]))) return &m->norm[k];
    return NULL;
}

/* Training-mode forwards of the first n instances, batch j with momentum n_j / (images so far). */
static uakd_status recalibrate(uakd_spnnet *m, const uakd_dataset *ds, const int *idx, int n, const int *bn, int nbn) {
    uakd_net *net = m->net;
    uakd_loader_config lc = {0};
    lc.batch_size = uakd_net_max_batch(net);
    lc.single_pass = 1;
    uakd_augment_config_default(&lc.sample, 0);
    lc.sample.mode = UAKD_CROP_FULL;
    lc.sample.out_width = m->cfg.in_w;
    lc.sample.out_height = m->cfg.in_h;
    uakd_loader *L = NULL;
    UAKD_TRY(uakd_loader_new(ds, idx, n, &lc, &L));
    uakd_status st = UAKD_OK;
    for (int seen = 0; st == UAKD_OK;) {
        const uakd_batch *b = NULL;
        st = uakd_loader_next(L, &b);
        if (st != UAKD_OK || !b) break;
        memcpy(uakd_net_out(net, m->input), b->images, sizeof(float) * 3 * (size_t)b->n * b->width * b->height);
        for (int d = 0; d < m->n_drop; d++) { /* drop-connect off: the inference network */
            int c = 0;
            uakd_net_shape(net, m->drop_mask[d], &c, NULL, NULL);
            float *mask = uakd_net_out(net, m->drop_mask[d]);
            for (size_t i = 0; i < (size_t)b->n * c; i++) mask[i] = 1;
        }
        seen += b->n;
        for (int k = 0; k < nbn; k++)
            uakd_net_set_norm(net, bn[k], norm_of(m, uakd_net_layer(net, bn[k]).name)->eps, (float)b->n / seen);
        st = uakd_net_forward(net, b->n, 1);
    }
    uakd_loader_free(L);
    return st;
}

uakd_status uakd_spn_recalibrate_bn(uakd_spnnet *m, const uakd_dataset *ds, const int *idx, int count, int n) {
    if (n > count) n = count;
    if (n <= 0) return UAKD_OK;
    uakd_net *net = m->net;
    const int layers = uakd_net_num_layers(net);
    int *bn = malloc(sizeof(int) * (size_t)layers), nbn = 0;
    if (!bn) return uakd_fail(UAKD_ENOMEM, "spn batch-norm recalibration: out of memory");
    for (int l = 0; l < layers; l++) {
        const uakd_layer_info li = uakd_net_layer(net, l);
        if (li.kind != UAKD_LAYER_BATCHNORM) continue;
        if (!norm_of(m, li.name)) {
            free(bn);
            return uakd_fail(UAKD_EINVAL, "spn batch-norm recalibration: layer '%s' is not an SPNv2 norm", li.name);
        }
        bn[nbn++] = l;
    }
    uakd_status st = nbn ? recalibrate(m, ds, idx, n, bn, nbn) : UAKD_OK;
    for (int k = 0; k < nbn; k++) {
        const uakd_spnnet_norm *nm = norm_of(m, uakd_net_layer(net, bn[k]).name);
        uakd_net_set_norm(net, bn[k], nm->eps, nm->momentum);
    }
    free(bn);
    return st;
}

static uakd_status validate(void *self, uakd_train_progress *p) {
    run *r = self;
    uakd_spn_train_result *res = r->res;
    UAKD_TRY(uakd_spn_recalibrate_bn(r->m, r->ds, r->train_idx, r->ds->num_instances, r->c->bn_recal));
    r->recal_step = p->step;
    UAKD_TRY(uakd_spn_evaluate(r->m, &r->spn, r->val_ds, NULL, r->n_val, uakd_spn_domain_thresholds(r->c->domain), NULL, NULL,
                               &res->val, NULL));
    p->val_add[0] = res->val.E_pose, p->val_add[1] = res->val.E_T, p->val_add[2] = res->val.E_R_deg;
    const int rej = res->val.images - res->val.outcomes[UAKD_SPN_OK];
    p->val_proj5 = 100.0 * rej / (res->val.images ? res->val.images : 1);
    p->val_instances = res->val.images;
    return UAKD_OK;
}

static void log_validation(FILE *log, const uakd_train_progress *p) {
    uakd_train_log_number(log, "val_e_t", p->val_add[1]);
    uakd_train_log_number(log, "val_e_r_deg", p->val_add[2]);
    uakd_train_log_number(log, "val_e_pose", p->val_add[0]);
    uakd_train_log_number(log, "val_rejected", p->val_proj5);
}

/* Erasing and sun flare on one normalised CHW image, through an 8-bit HWC copy. */
static uakd_status spn_augment(run *r, float *img, uakd_rng *rng) {
    const int do_erase = uakd_rng_uniform(rng) < r->c->erase_p;
    const int do_flare = uakd_rng_uniform(rng) < r->c->flare_p;
    if (!do_erase && !do_flare) return UAKD_OK;
    static const float mean[3] = {0.485f, 0.456f, 0.406f}, stdv[3] = {0.229f, 0.224f, 0.225f};
    const size_t npix = (size_t)r->im.width * r->im.height;
    for (int ch = 0; ch < 3; ch++)
        for (size_t i = 0; i < npix; i++) {
            const float v = (img[ch * npix + i] * stdv[ch] + mean[ch]) * 255.0f;
            r->im.data[3 * i + ch] = (uint8_t)(v <= 0 ? 0 : v >= 255 ? 255 : lrintf(v));
        }
    if (do_erase) {
        uakd_spn_erase_config ec;
        uakd_spn_rect rect;
        uakd_spn_erase_config_default(&ec);
        UAKD_TRY(uakd_spn_random_erase(&r->im, rng, &ec, &rect));
    }
    if (do_flare) {
        uakd_spn_flare_config fc;
        uakd_spn_flare_config_default(&fc);
        UAKD_TRY(uakd_spn_sun_flare(&r->im, rng, &fc, NULL));
    }
    for (int ch = 0; ch < 3; ch++)
        for (size_t i = 0; i < npix; i++) img[ch * npix + i] = (r->im.data[3 * i + ch] / 255.0f - mean[ch]) / stdv[ch];
    return UAKD_OK;
}

/* Keypoints of the batch in input pixels; valid = in front of the camera. */
static void batch_keypoints(run *r, const uakd_batch *b) {
    const int K = r->c->model.keypoints;
    for (int i = 0; i < b->n; i++) {
        const uakd_target *t = &b->targets[i];
        for (int k = 0; k < K; k++) {
            const double *X = t->kp3d[k];
            const double z = t->pose.R[6] * X[0] + t->pose.R[7] * X[1] + t->pose.R[8] * X[2] + t->pose.t[2];
            r->valid[i * K + k] = z > 0 && k < t->num_keypoints;
            r->kp[2 * (i * K + k)] = t->kp2d[k][0];
            r->kp[2 * (i * K + k) + 1] = t->kp2d[k][1];
        }
    }
}

/* Input (with erasing and flare), heatmap targets, forward, loss (gradient into the heatmaps), the hook. */
static uakd_status forward(void *self, int64_t step, const uakd_batch *b, uakd_rng *rng, uakd_train_progress *p,
                           double *terms, int *ids, int *nids) {
    run *r = self;
    const uakd_spn_train_config *c = r->c;
    uakd_net *net = r->m->net;
    if (b->n != c->batch || b->width != c->model.in_w || b->height != c->model.in_h)
        return uakd_fail(UAKD_EINVAL, "spn train: batch of %d x %dx%d, expected %d x %dx%d", b->n, b->width, b->height,
                         c->batch, c->model.in_w, c->model.in_h);
    float *x = uakd_net_out(net, r->m->input);
    const size_t per = 3 * (size_t)b->width * b->height;
    memcpy(x, b->images, sizeof(float) * per * (size_t)b->n);
    for (int i = 0; i < b->n; i++) UAKD_TRY(spn_augment(r, x + (size_t)i * per, rng));
    batch_keypoints(r, b);
    UAKD_TRY(uakd_spn_targets(&r->spn, b->n, r->kp, r->valid, r->targets, r->vis));
    UAKD_TRY(uakd_spnnet_forward(r->m, b->n, 1, rng));
    const float *hm = uakd_net_out(net, r->m->heatmap);
    float *dhm = uakd_net_grad(net, r->m->heatmap);
    double loss;
    UAKD_TRY(uakd_spn_loss(&r->spn, b->n, hm, r->targets, r->vis, 1.0, dhm, &loss));
    p->cls = loss, p->pose = 0, p->loss = loss;
    ids[(*nids)++] = r->m->heatmap;
    if (!c->hook) return UAKD_OK;
    uakd_spn_hook_ctx ctx = {step, b, r->m, &r->spn, hm, dhm, b->n, 0, {0}};
    UAKD_TRY(c->hook->step(c->hook->user, &ctx, terms));
    const int max_seeds = (int)(sizeof ctx.seeds / sizeof *ctx.seeds);
    return uakd_train_add_seeds("spn train", ctx.seeds, ctx.n_seeds, max_seeds, ids, nids);
}

static double lr(const void *self, int64_t step) {
    const uakd_spn_train_config *c = ((const run *)self)->c;
    const int64_t milestones[2] = {c->steps * 15 / 20, c->steps * 18 / 20};
    return uakd_lr_step(step, c->lr, c->gamma, 2, milestones);
}

static uakd_status save_model(const void *self, const char *path) {
    const run *r = self;
    if (r->recal_step != r->c->steps) /* not already done by the validation of the last step */
        UAKD_TRY(uakd_spn_recalibrate_bn(r->m, r->ds, r->train_idx, r->ds->num_instances, r->c->bn_recal));
    return uakd_weights_save(r->m->net, NULL, path);
}

static const uakd_train_family family = {
    .name = "spn train", .loss_keys = {"heatmap", NULL}, .val_own_line = 1, .prepare = prepare, .lr = lr,
    .forward = forward, .validate = validate, .log_validation = log_validation, .write_config = write_config,
    .save_model = save_model};

uakd_status uakd_spn_train_run(const uakd_spn_train_config *c, uakd_spn_train_result *result) {
    uakd_spn_train_result res_local;
    uakd_spn_train_result *res = result ? result : &res_local;
    memset(res, 0, sizeof *res);
    UAKD_TRY(check_config(c));
    run r = {.c = c, .res = res, .recal_step = -1};
    const uakd_train_loop_config lc = UAKD_TRAIN_LOOP_CONFIG(c);
    uakd_train_loop_result done;
    const uakd_status st = uakd_train_loop_run(&lc, &family, &r, &done);
    res->steps_done = done.steps_done, res->seconds = done.seconds, res->last_loss = done.last_loss;
    run_free(&r);
    return st;
}
