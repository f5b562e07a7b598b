/* The supervised WDRNet training loop (uakd/train.h). Per step s (0-based) of S:
 *   targets = assign(batch, rng);  L = 0.1 focal + 1.0 pose (+ hook terms);
 *   g = dL/dtheta by back-propagation from the head outputs (and the hook's seeds);
 *   g *= min(1, clip / (|g| + 1e-6));  theta = AdamW(theta, g, lr(s)),
 *   lr(s) = lr_max (s + 1) / W for s < W = 0.05 S, else lr_max (S - s) / (S - W).
 * Everything random comes from the seed: the initialisation stream split(seed, 1), the
 * assignment stream split(seed, 2) (checkpointed), and the loader's stream (seed, position). */
#include "uakd/train.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "uakd/checkpoint.h"
#include "train_internal.h"

void uakd_train_config_default(uakd_train_config *c) {
    memset(c, 0, sizeof *c);
    c->train_split = "train";
    c->val_split = "test";
    c->obj_ids[0] = 1;
    c->num_obj_ids = 1;
    c->variant = "darknet-tiny-h";
    c->input_size = 256;
    c->batch = 16;
    c->steps = 10000;
    c->lr = 1e-3;
    c->weight_decay = 1e-4;
    c->warmup_frac = 0.05;
    c->clip = 1.0;
    c->seed = 1;
    c->loader_threads = 1;
    c->cache_bytes = (size_t)1 << 30;
    c->min_visib_fract = 0.1;
    c->val_max = 200;
    c->ckpt_every = 500;
    c->log_every = 10;
}

void uakd_train_model_config(const uakd_train_config *c, uakd_wdrnet_config *mc) {
    uakd_wdrnet_config_default(mc, c->cfg_path ? NULL : c->variant);
    mc->cfg_path = c->cfg_path;
    mc->cfg_dir = c->cfg_dir;
    mc->classes = c->num_obj_ids;
    mc->width = c->width;
    mc->tower_convs = c->tower_convs;
    mc->input_size = c->input_size;
    mc->max_batch = c->batch;
    mc->training = 1;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uakd_status make_dirs(const char *path) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return uakd_fail(UAKD_EINVAL, "train: output directory path too long");
    for (char *p = buf + 1;; p++) {
        const char c = *p;
        if (c != '/' && c) continue;
        *p = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return uakd_fail(UAKD_EIO, "train: cannot create directory %s: %s", buf, strerror(errno));
        if (!c) return UAKD_OK;
        *p = '/';
    }
}

static uakd_status check_config(const uakd_train_config *c) {
    if (!c->data_root || !c->out_dir) return uakd_fail(UAKD_EINVAL, "train: data_root and out_dir are required");
    if (!c->train_split || !*c->train_split) return uakd_fail(UAKD_EINVAL, "train: train_split is empty");
    if (c->num_obj_ids < 1 || c->num_obj_ids > UAKD_TRAIN_MAX_OBJECTS)
        return uakd_fail(UAKD_EINVAL, "train: %d objects (1..%d)", c->num_obj_ids, UAKD_TRAIN_MAX_OBJECTS);
    if (c->batch < 1 || c->batch > 4096) return uakd_fail(UAKD_EINVAL, "train: batch %d outside 1..4096", c->batch);
    if (c->steps < 1) return uakd_fail(UAKD_EINVAL, "train: steps %lld must be >= 1", (long long)c->steps);
    if (!(c->lr > 0 && c->lr < 10) || !(c->weight_decay >= 0) || !(c->warmup_frac >= 0 && c->warmup_frac < 1) ||
        !(c->clip >= 0))
        return uakd_fail(UAKD_EINVAL, "train: lr %g (0..10), weight_decay %g (>= 0), warmup %g ([0, 1)) or clip %g (>= 0) "
                                      "out of range",
                         c->lr, c->weight_decay, c->warmup_frac, c->clip);
    if (c->val_every < 0 || c->ckpt_every < 0 || c->log_every < 1 || c->val_max < 0)
        return uakd_fail(UAKD_EINVAL, "train: val_every, ckpt_every, val_max must be >= 0 and log_every >= 1");
    if (c->hook && (c->hook->n_terms < 0 || c->hook->n_terms > UAKD_TRAIN_MAX_TERMS || !c->hook->step))
        return uakd_fail(UAKD_EINVAL, "train: hook needs a step function and 0..%d terms", UAKD_TRAIN_MAX_TERMS);
    return UAKD_OK;
}

/* Everything a run holds. */
typedef struct run {
    const uakd_train_config *c;
    uakd_dataset *ds, *val_ds;
    uakd_eval_model *val_models;
    int *train_idx, n_train;
    int *val_idx, n_val;
    uakd_wdrnet *m;
    uakd_optim *opt, *extra_opt;
    uakd_loader *loader;
    uakd_wdr_targets *targets;
    uakd_wdr_object *objs;
    int cls_of_object[UAKD_EVAL_MAX_OBJECTS];
    uakd_train_state state;
    uakd_wdr_config wdr;
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
    uakd_wdrnet_free(r->m);
    uakd_wdr_targets_free(r->targets);
    free(r->objs);
    if (r->val_ds) uakd_eval_models_free(r->val_models, r->val_ds->num_objects);
    free(r->val_idx);
    free(r->train_idx);
    uakd_dataset_free(r->ds);
    uakd_dataset_free(r->val_ds);
}

static uakd_status all_indices(int n, int **idx, int *count) {
    *idx = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    if (!*idx) return uakd_fail(UAKD_ENOMEM, "train: out of memory");
    for (int i = 0; i < n; i++) (*idx)[i] = i;
    *count = n;
    return UAKD_OK;
}

static uakd_status load_data(run *r) {
    const uakd_train_config *c = r->c;
    uakd_bop_options bo = {c->obj_ids, c->num_obj_ids, c->min_visib_fract};
    UAKD_TRY(uakd_dataset_load_bop(c->data_root, c->train_split, &bo, &r->ds));
    if (r->ds->num_instances == 0)
        return uakd_fail(UAKD_EINVAL, "train: %s/%s has no instance of the requested objects (visible >= %g)",
                         c->data_root, c->train_split, c->min_visib_fract);
    if (c->train_list) UAKD_TRY(uakd_split_from_list(r->ds, c->train_list, &r->train_idx, &r->n_train));
    else UAKD_TRY(all_indices(r->ds->num_instances, &r->train_idx, &r->n_train));
    if (r->n_train == 0) return uakd_fail(UAKD_EINVAL, "train: %s selects no training instance", c->train_list);
    for (int i = 0; i < UAKD_EVAL_MAX_OBJECTS; i++) r->cls_of_object[i] = -1;
    for (int k = 0; k < c->num_obj_ids; k++) {
        if (c->obj_ids[k] < 0 || c->obj_ids[k] >= UAKD_EVAL_MAX_OBJECTS || uakd_dataset_find_object(r->ds, c->obj_ids[k]) < 0)
            return uakd_fail(UAKD_EINVAL, "train: object %d is not in %s/models/models_info.json", c->obj_ids[k],
                             c->data_root);
        r->cls_of_object[c->obj_ids[k]] = k;
    }
    if (c->val_split && *c->val_split) {
        bo.min_visib_fract = 0;
        UAKD_TRY(uakd_dataset_load_bop(c->data_root, c->val_split, &bo, &r->val_ds));
        if (c->val_list) UAKD_TRY(uakd_split_from_list(r->val_ds, c->val_list, &r->val_idx, &r->n_val));
        else UAKD_TRY(all_indices(r->val_ds->num_instances, &r->val_idx, &r->n_val));
        if (!c->val_list && c->train_list && !strcmp(c->val_split, c->train_split)) {
            /* the images of the split that training does not see */
            int n = 0;
            for (int i = 0; i < r->val_ds->num_instances; i++) {
                const uakd_instance *v = &r->val_ds->instances[i];
                int seen = 0;
                for (int k = 0; k < r->n_train && !seen; k++) {
                    const uakd_instance *t = &r->ds->instances[r->train_idx[k]];
                    seen = t->scene_id == v->scene_id && t->image_id == v->image_id;
                }
                if (!seen) r->val_idx[n++] = i;
            }
            r->n_val = n;
        }
        if (c->val_max && r->n_val > c->val_max) r->n_val = c->val_max;
        UAKD_TRY(uakd_eval_models_load(c->data_root, r->val_ds, &r->val_models));
    }
    return UAKD_OK;
}

static uakd_status build(run *r) {
    const uakd_train_config *c = r->c;
    uakd_wdrnet_config mc;
    uakd_train_model_config(c, &mc);
    UAKD_TRY(uakd_wdrnet_new(&mc, &r->m));
    uakd_rng init;
    uakd_rng_seed(&init, c->seed);
    uakd_rng_split(&init, 1, &init);
    UAKD_TRY(uakd_wdrnet_init(r->m, &init));
    if (c->init_weights && !c->resume) {
        const size_t len = strlen(c->init_weights);
        if (len > 8 && !strcmp(c->init_weights + len - 8, ".weights"))
            UAKD_TRY(uakd_wdrnet_import_darknet(r->m, c->init_weights, NULL));
        else
            UAKD_TRY(uakd_wdrnet_load(r->m, c->init_weights, 0));
    }
    uakd_optim_config oc = uakd_optim_adamw_default(c->weight_decay);
    UAKD_TRY(uakd_optim_new(uakd_wdrnet_net(r->m), &oc, &r->opt));
    if (c->hook && c->hook->extra_net) UAKD_TRY(uakd_optim_new(c->hook->extra_net, &oc, &r->extra_opt));
    uakd_wdr_config_default(&r->wdr);
    UAKD_TRY(uakd_wdr_targets_new(uakd_wdrnet_levels(r->m), c->batch, c->num_obj_ids, &r->targets));
    r->objs = calloc((size_t)c->batch, sizeof *r->objs);
    if (!r->objs) return uakd_fail(UAKD_ENOMEM, "train: out of memory");
    r->state.total_steps = c->steps;
    uakd_rng_seed(&r->state.rng, c->seed);
    uakd_rng_split(&r->state.rng, 2, &r->state.rng);
    r->state.has_loader = 1;
    return UAKD_OK;
}

static uakd_status open_loader(run *r) {
    const uakd_train_config *c = r->c;
    uakd_loader_config lc = {0};
    lc.batch_size = c->batch;
    lc.seed = c->seed;
    lc.shuffle = 1;
    lc.threads = c->loader_threads;
    lc.cache_bytes = c->cache_bytes;
    uakd_augment_config_default(&lc.sample, 1);
    lc.sample.out_width = lc.sample.out_height = c->input_size;
    uakd_status st = uakd_loader_new(r->ds, r->train_idx, r->n_train, &lc, &r->loader);
    if (st == UAKD_OK && r->state.step > 0) st = uakd_loader_seek(r->loader, r->state.loader);
    return st;
}

static uakd_status save_checkpoint(run *r) {
    r->state.loader = uakd_loader_tell(r->loader);
    if (r->c->hook && r->c->hook->extra_net)
        UAKD_TRY(uakd_checkpoint_save(out_path(r, "checkpoint_extra.safetensors"), r->c->hook->extra_net, r->extra_opt,
                                      &r->state, NULL, NULL));
    return uakd_wdrnet_checkpoint_save(r->m, r->opt, &r->state, out_path(r, "checkpoint.safetensors"));
}

static uakd_status resume(run *r) {
    uakd_train_state s;
    UAKD_TRY(uakd_wdrnet_checkpoint_load(r->m, r->opt, &s, out_path(r, "checkpoint.safetensors")));
    if (s.total_steps != r->c->steps)
        return uakd_fail(UAKD_EINVAL, "train: the checkpoint's schedule has %lld steps, this run %lld (resume with the "
                                      "same --steps)",
                         (long long)s.total_steps, (long long)r->c->steps);
    if (!s.has_loader) return uakd_fail(UAKD_EFORMAT, "train: the checkpoint has no loader position");
    if (r->c->hook && r->c->hook->extra_net) {
        uakd_train_state e;
        UAKD_TRY(uakd_checkpoint_load(out_path(r, "checkpoint_extra.safetensors"), r->c->hook->extra_net, r->extra_opt,
                                      &e, NULL, NULL));
        if (e.step != s.step)
            return uakd_fail(UAKD_EFORMAT, "train: checkpoint_extra.safetensors is at step %lld, the model at %lld",
                             (long long)e.step, (long long)s.step);
    }
    r->state = s;
    return uakd_train_log_truncate(out_path(r, "train_log.jsonl"), s.step);
}

static void log_number(FILE *f, const char *key, double v) {
    if (isfinite(v)) fprintf(f, ", \"%s\": %.9g", key, v);
    else fprintf(f, ", \"%s\": null", key);
}

static uakd_status validate(run *r, uakd_train_progress *p, uakd_train_result *res) {
    uakd_infer_config ic;
    uakd_infer_config_default(&ic);
    uakd_eval_input in = {r->val_ds, r->val_models, r->val_idx, r->n_val, r->c->obj_ids, r->c->num_obj_ids,
                          NULL, NULL, NULL};
    uakd_eval_result er;
    UAKD_TRY(uakd_infer_evaluate(r->m, &ic, &in, &er));
    uakd_eval_overall(&er.stats, &res->val);
    uakd_eval_result_free(&er);
    const double n = res->val.targets ? res->val.targets : 1;
    for (int k = 0; k < 3; k++) p->val_add[k] = 100.0 * res->val.add_pass[k] / n;
    p->val_proj5 = 100.0 * res->val.proj_pass / n;
    p->val_instances = res->val.targets;
    p->validation = 1;
    p->val_missing = 100.0 * res->val.missing / n;
    return UAKD_OK;
}

/* Targets of the batch: the object's 3D box in the crop camera, its visible mask. */
static uakd_status make_targets(run *r, const uakd_batch *b) {
    for (int i = 0; i < b->n; i++) {
        const uakd_target *t = &b->targets[i];
        const uakd_object_info *o = &r->ds->objects[r->ds->instances[t->instance].object];
        const double bmax[3] = {o->min[0] + o->size[0], o->min[1] + o->size[1], o->min[2] + o->size[2]};
        uakd_wdr_object *ob = &r->objs[i];
        memset(ob, 0, sizeof *ob);
        ob->cls = r->cls_of_object[t->obj_id];
        ob->diameter = t->diameter;
        ob->mask = b->masks + (size_t)i * b->width * b->height;
        UAKD_TRY(uakd_wdr_object_set_box(ob, o->min, bmax, t->pose.R, t->pose.t, t->crop.K));
    }
    return uakd_wdr_assign(r->targets, &r->wdr, r->objs, &r->state.rng);
}

/* One step on batch b; fills the loss terms of p. */
static uakd_status train_step(run *r, const uakd_batch *b, double lr, uakd_train_progress *p, double *terms) {
    const uakd_train_config *c = r->c;
    uakd_net *net = uakd_wdrnet_net(r->m);
    if (b->n != c->batch || b->width != c->input_size || b->height != c->input_size)
        return uakd_fail(UAKD_EINVAL, "train: batch of %d x %dx%d, expected %d x %dx%d", b->n, b->width, b->height,
                         c->batch, c->input_size, c->input_size);
    memcpy(uakd_net_out(net, uakd_wdrnet_input(r->m)), b->images, sizeof(float) * 3 * (size_t)b->n * b->width * b->height);
    UAKD_TRY(make_targets(r, b));
    uakd_net_zero_grad(net);
    if (r->extra_opt) uakd_net_zero_grad(c->hook->extra_net);
    UAKD_TRY(uakd_wdrnet_forward(r->m, b->n, 1));
    uakd_wdr_maps maps;
    uakd_wdr_grads grads;
    uakd_wdrnet_maps(r->m, b->n, &maps);
    uakd_wdrnet_grads(r->m, &grads);
    uakd_wdr_loss loss;
    UAKD_TRY(uakd_wdr_loss_eval(&r->wdr, r->targets, &maps, &grads, &loss));
    p->cls = loss.cls, p->pose = loss.pose, p->loss = loss.total;
    const int nl = uakd_wdrnet_levels(r->m)->n;
    int ids[4 * UAKD_WDR_MAX_LEVELS], nids = 0;
    for (int l = 0; l < nl; l++) ids[nids++] = uakd_wdrnet_logits_id(r->m, l), ids[nids++] = uakd_wdrnet_offsets_id(r->m, l);
    if (c->hook) {
        uakd_train_hook_ctx ctx = {r->state.step, b, r->targets, r->m, &maps, &grads, b->n, 0, {0}};
        for (int k = 0; k < c->hook->n_terms; k++) terms[k] = 0;
        UAKD_TRY(c->hook->step(c->hook->user, &ctx, terms));
        if (ctx.n_seeds < 0 || ctx.n_seeds > 2 * UAKD_WDR_MAX_LEVELS)
            return uakd_fail(UAKD_EINVAL, "train: the hook reported %d seeded layers", ctx.n_seeds);
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

/* One log line: the step's terms (with_terms) and the validation just run (p->validation). */
static void log_step(run *r, const uakd_train_progress *p, int with_terms) {
    fprintf(r->log, "{\"step\": %lld", (long long)p->step);
    if (with_terms) {
        log_number(r->log, "loss", p->loss);
        log_number(r->log, "cls", p->cls);
        log_number(r->log, "pose", p->pose);
        for (int k = 0; k < p->n_terms; k++) log_number(r->log, p->term_names[k], p->terms[k]);
        log_number(r->log, "lr", p->lr);
        log_number(r->log, "img_s", p->img_s);
    }
    if (p->validation) {
        log_number(r->log, "val_add_005", p->val_add[0]);
        log_number(r->log, "val_add_01", p->val_add[1]);
        log_number(r->log, "val_add_02", p->val_add[2]);
        log_number(r->log, "val_proj5", p->val_proj5);
        log_number(r->log, "val_missing", p->val_missing);
    }
    fprintf(r->log, "}\n");
    fflush(r->log);
}

static int report(run *r, uakd_train_progress *p) {
    const int stop = r->c->progress ? r->c->progress(p, r->c->user) : 0;
    p->event = NULL;
    p->validation = 0;
    return stop;
}

static uakd_status loop(run *r, uakd_train_result *res) {
    const uakd_train_config *c = r->c;
    double terms[UAKD_TRAIN_MAX_TERMS] = {0};
    uakd_train_progress p = {0};
    p.total = c->steps;
    p.n_terms = c->hook ? c->hook->n_terms : 0;
    p.term_names = c->hook ? c->hook->term_names : NULL;
    p.terms = terms;
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
        p.lr = uakd_lr_onecycle(r->state.step, c->steps, c->warmup_frac, c->lr);
        UAKD_TRY(train_step(r, b, p.lr, &p, terms));
        r->state.step++;
        const double t = now_s();
        p.step = r->state.step;
        p.img_s = b->n / (t - t_last > 1e-9 ? t - t_last : 1e-9);
        t_last = t;
        p.eta_s = (t - t0) / (double)(r->state.step - first) * (double)(c->steps - r->state.step);
        res->steps_done = r->state.step - first;
        res->last_loss = p.loss;
        const int last = r->state.step == c->steps;
        if (r->val_ds && r->n_val > 0 && (last || (c->val_every && r->state.step % c->val_every == 0)))
            UAKD_TRY(validate(r, &p, res));
        const int log_terms = r->state.step % c->log_every == 0 || last;
        if (log_terms || p.validation) log_step(r, &p, log_terms);
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
    return uakd_fail(UAKD_EINTERRUPTED, "train: stopped at step %lld of %lld; checkpoint written to %s (continue with "
                                        "resume)",
                     (long long)r->state.step, (long long)c->steps, r->path);
}

uakd_status uakd_train_run(const uakd_train_config *c, uakd_train_result *result) {
    uakd_train_result res_local;
    uakd_train_result *res = result ? result : &res_local;
    memset(res, 0, sizeof *res);
    UAKD_TRY(check_config(c));
    run r = {0};
    r.c = c;
    uakd_status st = make_dirs(c->out_dir);
    if (st == UAKD_OK) st = load_data(&r);
    if (st == UAKD_OK) st = build(&r);
    if (st == UAKD_OK && c->resume) st = resume(&r);
    if (st == UAKD_OK && !c->resume) st = uakd_train_write_config(out_path(&r, "config.json"), c, r.m, r.ds);
    if (st == UAKD_OK) {
        r.log = fopen(out_path(&r, "train_log.jsonl"), c->resume ? "a" : "w");
        if (!r.log) st = uakd_fail(UAKD_EIO, "train: cannot write %s: %s", r.path, strerror(errno));
    }
    if (st == UAKD_OK) st = open_loader(&r);
    if (st == UAKD_OK) st = loop(&r, res);
    if (st == UAKD_OK) st = uakd_wdrnet_save(r.m, out_path(&r, "model.safetensors"));
    run_free(&r);
    return st;
}
