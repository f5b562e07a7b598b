/* The supervised SPNv2 training loop (uakd/spn_train.h). Per step s of S:
 *   batch = loader (whole image -> in_w x in_h, photometric p = 0.5), then erasing / sun flare;
 *   H = Gaussian targets (sigma 2) of the projected keypoints; L = sum (h - H)^2 / n_visible
 *   (+ hook terms); g = dL/dtheta; [clip]; theta = AdamW(theta, g, lr(s)),
 *   lr(s) = lr0 gamma^(#milestones <= s), milestones floor(15 S / 20), floor(18 S / 20).
 * Random streams: initialisation split(seed, 1); the loop's stream split(seed, 2) (erasing and
 * flare, then the drop-connect masks of the forward; checkpointed); the loader's (seed, position). */
#include "uakd/spn_train.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "uakd/checkpoint.h"
#include "uakd/fileio.h"
#include "uakd/weights.h"
#include "train_internal.h"

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
    c->seed = 1;
    c->loader_threads = 1;
    c->cache_bytes = (size_t)1 << 30;
    c->val_max = 200;
    c->ckpt_every = 500;
    c->log_every = 10;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct run {
    const uakd_spn_train_config *c;
    uakd_dataset *ds, *val_ds;
    int n_val;
    uakd_spnnet *m;
    uakd_optim *opt, *extra_opt;
    uakd_loader *loader;
    uakd_spn_config spn;
    float *targets;
    uint8_t *vis;
    double *kp;
    uint8_t *valid;
    uakd_image im;
    uakd_train_state state;
    FILE *log;
    char path[4096];
} run;

static const char *out_path(run *r, const char *name) {
    snprintf(r->path, sizeof r->path, "%s/%s", r->c->out_dir, name);
    return r->path;
}

static void run_free(run *r) {
    if (r->log) fclose(r->log);
    uakd_loader_free(r->loader);
    uakd_optim_free(r->opt);
    uakd_optim_free(r->extra_opt);
    uakd_spnnet_free(r->m);
    free(r->targets), free(r->vis), free(r->kp), free(r->valid);
    uakd_image_free(&r->im);
    uakd_dataset_free(r->ds);
    uakd_dataset_free(r->val_ds);
}

static uakd_status check_config(const uakd_spn_train_config *c) {
    if (!c->data_root || !c->out_dir || !c->keypoints_csv || !c->domain || !c->train_list)
        return uakd_fail(UAKD_EINVAL, "spn train: data_root, domain, train_list, keypoints_csv and out_dir are required");
    if (c->batch < 1 || c->batch > 4096) return uakd_fail(UAKD_EINVAL, "spn train: batch %d outside 1..4096", c->batch);
    if (c->steps < 1) return uakd_fail(UAKD_EINVAL, "spn train: steps must be >= 1");
    if (!(c->lr > 0 && c->lr < 10) || !(c->weight_decay >= 0) || !(c->gamma > 0 && c->gamma <= 1) || !(c->clip >= 0))
        return uakd_fail(UAKD_EINVAL, "spn train: lr %g (0..10), weight_decay %g, gamma %g ((0, 1]) or clip %g out of range",
                         c->lr, c->weight_decay, c->gamma, c->clip);
    const double ps[3] = {c->erase_p, c->flare_p, c->photometric_p};
    for (int k = 0; k < 3; k++)
        if (!(ps[k] >= 0 && ps[k] <= 1)) return uakd_fail(UAKD_EINVAL, "spn train: augmentation probability %g not in [0, 1]", ps[k]);
    if (c->val_every < 0 || c->ckpt_every < 0 || c->log_every < 1 || c->val_max < 0)
        return uakd_fail(UAKD_EINVAL, "spn train: val_every, ckpt_every, val_max must be >= 0 and log_every >= 1");
    if (c->hook && (c->hook->n_terms < 0 || c->hook->n_terms > UAKD_TRAIN_MAX_TERMS || !c->hook->step))
        return uakd_fail(UAKD_EINVAL, "spn train: hook needs a step function and 0..%d terms", UAKD_TRAIN_MAX_TERMS);
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
    uakd_optim_config oc = uakd_optim_adamw_default(c->weight_decay);
    UAKD_TRY(uakd_optim_new(r->m->net, &oc, &r->opt));
    if (c->hook && c->hook->extra_net) UAKD_TRY(uakd_optim_new(c->hook->extra_net, &oc, &r->extra_opt));
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
    r->state.total_steps = c->steps;
    uakd_rng_seed(&r->state.rng, c->seed);
    uakd_rng_split(&r->state.rng, 2, &r->state.rng);
    r->state.has_loader = 1;
    return UAKD_OK;
}

static uakd_status open_loader(run *r) {
    const uakd_spn_train_config *c = r->c;
    uakd_loader_config lc = {0};
    lc.batch_size = c->batch;
    lc.seed = c->seed;
    lc.shuffle = 1;
    lc.threads = c->loader_threads;
    lc.cache_bytes = c->cache_bytes;
    uakd_augment_config_default(&lc.sample, 1);
    lc.sample.mode = UAKD_CROP_FULL;
    lc.sample.out_width = c->model.in_w;
    lc.sample.out_height = c->model.in_h;
    lc.sample.shift = lc.sample.scale = lc.sample.rotation_deg = 0;
    lc.sample.photometric_p = c->photometric_p;
    int *idx = malloc(sizeof(int) * (size_t)r->ds->num_instances);
    if (!idx) return uakd_fail(UAKD_ENOMEM, "spn train: out of memory");
    for (int i = 0; i < r->ds->num_instances; i++) idx[i] = i;
    uakd_status st = uakd_loader_new(r->ds, idx, r->ds->num_instances, &lc, &r->loader);
    free(idx);
    if (st == UAKD_OK && r->state.step > 0) st = uakd_loader_seek(r->loader, r->state.loader);
    return st;
}

static uakd_status save_checkpoint(run *r) {
    r->state.loader = uakd_loader_tell(r->loader);
    if (r->c->hook && r->c->hook->extra_net)
        UAKD_TRY(uakd_checkpoint_save(out_path(r, "checkpoint_extra.safetensors"), r->c->hook->extra_net, r->extra_opt,
                                      &r->state, NULL, NULL));
    return uakd_checkpoint_save(out_path(r, "checkpoint.safetensors"), r->m->net, r->opt, &r->state, NULL, NULL);
}

static uakd_status resume(run *r) {
    uakd_train_state s;
    UAKD_TRY(uakd_checkpoint_load(out_path(r, "checkpoint.safetensors"), r->m->net, r->opt, &s, NULL, NULL));
    if (s.total_steps != r->c->steps)
        return uakd_fail(UAKD_EINVAL, "spn train: the checkpoint's schedule has %lld steps, this run %lld (resume with the "
                                      "same --steps)", (long long)s.total_steps, (long long)r->c->steps);
    if (!s.has_loader) return uakd_fail(UAKD_EFORMAT, "spn train: the checkpoint has no loader position");
    if (r->c->hook && r->c->hook->extra_net) {
        uakd_train_state e;
        UAKD_TRY(uakd_checkpoint_load(out_path(r, "checkpoint_extra.safetensors"), r->c->hook->extra_net, r->extra_opt,
                                      &e, NULL, NULL));
        if (e.step != s.step)
            return uakd_fail(UAKD_EFORMAT, "spn train: checkpoint_extra.safetensors is at step %lld, the model at %lld",
                             (long long)e.step, (long long)s.step);
    }
    r->state = s;
    return uakd_train_log_truncate(out_path(r, "train_log.jsonl"), s.step);
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

static uakd_status write_config(run *r) {
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
    cJSON_AddNumberToObject(tr, "drop_connect", c->model.drop_connect);
    cJSON_AddNumberToObject(tr, "seed", (double)c->seed);
    cJSON_AddItemToObject(j, "train", tr);
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    if (!text) return uakd_fail(UAKD_ENOMEM, "spn train: out of memory");
    uakd_status st = uakd_write_file_atomic(out_path(r, "config.json"), text, strlen(text));
    free(text);
    return st;
}

static void log_number(FILE *f, const char *key, double v) {
    if (isfinite(v)) fprintf(f, ", \"%s\": %.9g", key, v);
    else fprintf(f, ", \"%s\": null", key);
}

static uakd_status validate(run *r, uakd_train_progress *p, uakd_spn_train_result *res) {
    UAKD_TRY(uakd_spn_evaluate(r->m, &r->spn, r->val_ds, NULL, r->n_val, uakd_spn_domain_thresholds(r->c->domain), NULL, NULL,
                               &res->val, NULL));
    p->val_add[0] = res->val.E_pose, p->val_add[1] = res->val.E_T, p->val_add[2] = res->val.E_R_deg;
    const int rej = res->val.images - res->val.outcomes[UAKD_SPN_OK];
    p->val_proj5 = 100.0 * rej / (res->val.images ? res->val.images : 1);
    p->val_instances = res->val.images;
    p->validation = 1;
    fprintf(r->log, "{\"step\": %lld", (long long)r->state.step);
    log_number(r->log, "val_e_t", res->val.E_T);
    log_number(r->log, "val_e_r_deg", res->val.E_R_deg);
    log_number(r->log, "val_e_pose", res->val.E_pose);
    log_number(r->log, "val_rejected", p->val_proj5);
    fprintf(r->log, "}\n");
    fflush(r->log);
    return UAKD_OK;
}

/* Erasing and sun flare on one normalised CHW image, through an 8-bit HWC copy. */
static uakd_status spn_augment(run *r, float *img) {
    const int do_erase = uakd_rng_uniform(&r->state.rng) < r->c->erase_p;
    const int do_flare = uakd_rng_uniform(&r->state.rng) < r->c->flare_p;
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
        UAKD_TRY(uakd_spn_random_erase(&r->im, &r->state.rng, &ec, &rect));
    }
    if (do_flare) {
        uakd_spn_flare_config fc;
        uakd_spn_flare_config_default(&fc);
        UAKD_TRY(uakd_spn_sun_flare(&r->im, &r->state.rng, &fc, NULL));
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

static uakd_status train_step(run *r, const uakd_batch *b, double lr, uakd_train_progress *p, double *terms) {
    const uakd_spn_train_config *c = r->c;
    uakd_net *net = r->m->net;
    if (b->n != c->batch || b->width != c->model.in_w || b->height != c->model.in_h)
        return uakd_fail(UAKD_EINVAL, "spn train: batch of %d x %dx%d, expected %d x %dx%d", b->n, b->width, b->height,
                         c->batch, c->model.in_w, c->model.in_h);
    float *x = uakd_net_out(net, r->m->input);
    const size_t per = 3 * (size_t)b->width * b->height;
    memcpy(x, b->images, sizeof(float) * per * (size_t)b->n);
    for (int i = 0; i < b->n; i++) UAKD_TRY(spn_augment(r, x + (size_t)i * per));
    batch_keypoints(r, b);
    UAKD_TRY(uakd_spn_targets(&r->spn, b->n, r->kp, r->valid, r->targets, r->vis));
    uakd_net_zero_grad(net);
    if (r->extra_opt) uakd_net_zero_grad(c->hook->extra_net);
    UAKD_TRY(uakd_spnnet_forward(r->m, b->n, 1, &r->state.rng));
    const float *hm = uakd_net_out(net, r->m->heatmap);
    float *dhm = uakd_net_grad(net, r->m->heatmap);
    double loss;
    UAKD_TRY(uakd_spn_loss(&r->spn, b->n, hm, r->targets, r->vis, 1.0, dhm, &loss));
    p->cls = loss, p->pose = 0, p->loss = loss;
    int ids[5] = {r->m->heatmap}, nids = 1;
    if (c->hook) {
        uakd_spn_hook_ctx ctx = {r->state.step, b, r->m, &r->spn, hm, dhm, b->n, 0, {0}};
        for (int k = 0; k < c->hook->n_terms; k++) terms[k] = 0;
        UAKD_TRY(c->hook->step(c->hook->user, &ctx, terms));
        if (ctx.n_seeds < 0 || ctx.n_seeds > 4) return uakd_fail(UAKD_EINVAL, "spn train: the hook reported %d seeded layers", ctx.n_seeds);
        for (int k = 0; k < ctx.n_seeds; k++) ids[nids++] = ctx.seeds[k];
        for (int k = 0; k < c->hook->n_terms; k++) p->loss += terms[k];
    }
    UAKD_TRY(uakd_net_backward(net, nids, ids));
    if (c->clip > 0) uakd_clip_grad_norm(net, c->clip);
    UAKD_TRY(uakd_optim_step(r->opt, lr));
    if (r->extra_opt) {
        if (c->clip > 0) uakd_clip_grad_norm(c->hook->extra_net, c->clip);
        UAKD_TRY(uakd_optim_step(r->extra_opt, lr));
    }
    return UAKD_OK;
}

static void log_step(run *r, const uakd_train_progress *p) {
    fprintf(r->log, "{\"step\": %lld", (long long)p->step);
    log_number(r->log, "loss", p->loss);
    log_number(r->log, "heatmap", p->cls);
    for (int k = 0; k < p->n_terms; k++) log_number(r->log, p->term_names[k], p->terms[k]);
    log_number(r->log, "lr", p->lr);
    log_number(r->log, "img_s", p->img_s);
    fprintf(r->log, "}\n");
    fflush(r->log);
}

static int report(run *r, uakd_train_progress *p) {
    const int stop = r->c->progress ? r->c->progress(p, r->c->user) : 0;
    p->event = NULL;
    p->validation = 0;
    return stop;
}

static uakd_status loop(run *r, uakd_spn_train_result *res) {
    const uakd_spn_train_config *c = r->c;
    double terms[UAKD_TRAIN_MAX_TERMS] = {0};
    uakd_train_progress p = {0};
    p.total = c->steps;
    p.n_terms = c->hook ? c->hook->n_terms : 0;
    p.term_names = c->hook ? c->hook->term_names : NULL;
    p.terms = terms;
    const int64_t milestones[2] = {c->steps * 15 / 20, c->steps * 18 / 20};
    char note[96];
    if (r->state.step > 0) {
        snprintf(note, sizeof note, "resumed from step %lld", (long long)r->state.step);
        p.step = r->state.step;
        p.event = note;
        report(r, &p);
    }
    const int64_t first = r->state.step;
    const double t0 = now_s();
    double t_last = t0;
    while (r->state.step < c->steps) {
        if (c->interrupt && *c->interrupt) goto interrupted;
        const uakd_batch *b;
        UAKD_TRY(uakd_loader_next(r->loader, &b));
        p.lr = uakd_lr_step(r->state.step, c->lr, c->gamma, 2, milestones);
        UAKD_TRY(train_step(r, b, p.lr, &p, terms));
        r->state.step++;
        const double t = now_s();
        p.step = r->state.step;
        p.img_s = b->n / (t - t_last > 1e-9 ? t - t_last : 1e-9);
        t_last = t;
        p.eta_s = (t - t0) / (double)(r->state.step - first) * (double)(c->steps - r->state.step);
        res->steps_done = r->state.step - first;
        res->last_loss = p.loss;
        if (r->state.step % c->log_every == 0 || r->state.step == c->steps) log_step(r, &p);
        const int last = r->state.step == c->steps;
        if (r->val_ds && r->n_val > 0 && (last || (c->val_every && r->state.step % c->val_every == 0)))
            UAKD_TRY(validate(r, &p, res));
        if (last || (c->ckpt_every && r->state.step % c->ckpt_every == 0)) {
            UAKD_TRY(save_checkpoint(r));
            p.event = "checkpoint written";
        }
        if (report(r, &p)) goto interrupted;
    }
    res->seconds = now_s() - t0;
    return UAKD_OK;
interrupted:
    res->seconds = now_s() - t0;
    UAKD_TRY(save_checkpoint(r));
    return uakd_fail(UAKD_EINTERRUPTED, "spn train: stopped at step %lld of %lld; checkpoint written to %s (continue with "
                                        "resume)", (long long)r->state.step, (long long)c->steps, r->path);
}

uakd_status uakd_spn_train_run(const uakd_spn_train_config *c, uakd_spn_train_result *result) {
    uakd_spn_train_result res_local;
    uakd_spn_train_result *res = result ? result : &res_local;
    memset(res, 0, sizeof *res);
    UAKD_TRY(check_config(c));
    run r = {0};
    r.c = c;
    uakd_status st = uakd_train_make_dirs(c->out_dir);
    if (st == UAKD_OK) st = load_data(&r);
    if (st == UAKD_OK) st = build(&r);
    if (st == UAKD_OK && c->resume) st = resume(&r);
    if (st == UAKD_OK && !c->resume) st = write_config(&r);
    if (st == UAKD_OK) {
        r.log = fopen(out_path(&r, "train_log.jsonl"), c->resume ? "a" : "w");
        if (!r.log) st = uakd_fail(UAKD_EIO, "spn train: cannot write %s: %s", r.path, strerror(errno));
    }
    if (st == UAKD_OK) st = open_loader(&r);
    if (st == UAKD_OK) st = loop(&r, res);
    if (st == UAKD_OK) st = uakd_weights_save(r.m->net, NULL, out_path(&r, "model.safetensors"));
    run_free(&r);
    return st;
}
