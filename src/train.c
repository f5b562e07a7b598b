/* The WDRNet family of the training loop (uakd/train.h; the loop itself: train_loop.c). Per step
 * s (0-based) of S:
 *   targets = assign(batch, rng);  L = 0.1 focal + 1.0 pose (+ hook terms);
 *   gradients into the head outputs (and the hook's seeds) for the loop's backward;
 *   lr(s) = lr_max (s + 1) / W for s < W = 0.05 S, else lr_max (S - s) / (S - W).
 * Everything random comes from the seed: the initialisation stream split(seed, 1), the
 * assignment stream (the loop's, split(seed, 2), checkpointed), and the loader's (seed, position). */
#include "uakd/train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uakd/train_loop.h"
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

static uakd_status check_config(const uakd_train_config *c) {
    if (!c->data_root || !c->out_dir) return uakd_fail(UAKD_EINVAL, "train: data_root and out_dir are required");
    if (!c->train_split || !*c->train_split) return uakd_fail(UAKD_EINVAL, "train: train_split is empty");
    if (c->num_obj_ids < 1 || c->num_obj_ids > UAKD_TRAIN_MAX_OBJECTS)
        return uakd_fail(UAKD_EINVAL, "train: %d objects (1..%d)", c->num_obj_ids, UAKD_TRAIN_MAX_OBJECTS);
    if (!(c->warmup_frac >= 0 && c->warmup_frac < 1))
        return uakd_fail(UAKD_EINVAL, "train: warmup %g out of range ([0, 1))", c->warmup_frac);
    return UAKD_OK;
}

/* The family's part of a run (the loop holds the optimizers, loader, state and log). */
typedef struct run {
    const uakd_train_config *c;
    uakd_train_result *res;
    uakd_dataset *ds, *val_ds;
    uakd_eval_model *val_models;
    int *train_idx, n_train;
    int *val_idx, n_val;
    uakd_wdrnet *m;
    uakd_wdr_targets *targets;
    uakd_wdr_object *objs;
    int cls_of_object[UAKD_EVAL_MAX_OBJECTS];
    uakd_wdr_config wdr;
} run;

static void run_free(run *r) {
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
    uakd_wdr_config_default(&r->wdr);
    UAKD_TRY(uakd_wdr_targets_new(uakd_wdrnet_levels(r->m), c->batch, c->num_obj_ids, &r->targets));
    r->objs = calloc((size_t)c->batch, sizeof *r->objs);
    if (!r->objs) return uakd_fail(UAKD_ENOMEM, "train: out of memory");
    return UAKD_OK;
}

/* The data, the model, and what the loop needs of them. */
static uakd_status prepare(void *self, uakd_train_setup *s) {
    run *r = self;
    UAKD_TRY(load_data(r));
    UAKD_TRY(build(r));
    s->net = uakd_wdrnet_net(r->m);
    s->arch = r->m;
    s->train_ds = r->ds;
    s->train_idx = r->train_idx;
    s->n_train = r->n_train;
    uakd_augment_config_default(&s->sample, 1);
    s->sample.out_width = s->sample.out_height = r->c->input_size;
    s->can_validate = r->val_ds && r->n_val > 0;
    return UAKD_OK;
}

static uakd_status validate(void *self, uakd_train_progress *p) {
    run *r = self;
    uakd_train_result *res = r->res;
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
    p->val_missing = 100.0 * res->val.missing / n;
    return UAKD_OK;
}

static void log_validation(FILE *log, const uakd_train_progress *p) {
    uakd_train_log_number(log, "val_add_005", p->val_add[0]);
    uakd_train_log_number(log, "val_add_01", p->val_add[1]);
    uakd_train_log_number(log, "val_add_02", p->val_add[2]);
    uakd_train_log_number(log, "val_proj5", p->val_proj5);
    uakd_train_log_number(log, "val_missing", p->val_missing);
}

/* Targets of the batch: the object's 3D box in the crop camera, its visible mask. */
static uakd_status make_targets(run *r, const uakd_batch *b, uakd_rng *rng) {
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
    return uakd_wdr_assign(r->targets, &r->wdr, r->objs, rng);
}

/* Targets, forward, focal + pose loss (gradients into the head outputs), the hook. */
static uakd_status forward(void *self, int64_t step, const uakd_batch *b, uakd_rng *rng, uakd_train_progress *p,
                           double *terms, int *ids, int *nids) {
    run *r = self;
    const uakd_train_config *c = r->c;
    if (b->n != c->batch || b->width != c->input_size || b->height != c->input_size)
        return uakd_fail(UAKD_EINVAL, "train: batch of %d x %dx%d, expected %d x %dx%d", b->n, b->width, b->height,
                         c->batch, c->input_size, c->input_size);
    memcpy(uakd_net_out(uakd_wdrnet_net(r->m), uakd_wdrnet_input(r->m)), b->images,
           sizeof(float) * 3 * (size_t)b->n * b->width * b->height);
    UAKD_TRY(make_targets(r, b, rng));
    UAKD_TRY(uakd_wdrnet_forward(r->m, b->n, 1));
    uakd_wdr_maps maps;
    uakd_wdr_grads grads;
    uakd_wdrnet_maps(r->m, b->n, &maps);
    uakd_wdrnet_grads(r->m, &grads);
    uakd_wdr_loss loss;
    UAKD_TRY(uakd_wdr_loss_eval(&r->wdr, r->targets, &maps, &grads, &loss));
    p->cls = loss.cls, p->pose = loss.pose, p->loss = loss.total;
    for (int l = 0; l < uakd_wdrnet_levels(r->m)->n; l++)
        ids[(*nids)++] = uakd_wdrnet_logits_id(r->m, l), ids[(*nids)++] = uakd_wdrnet_offsets_id(r->m, l);
    if (!c->hook) return UAKD_OK;
    uakd_train_hook_ctx ctx = {step, b, r->targets, r->m, &maps, &grads, b->n, 0, {0}};
    UAKD_TRY(c->hook->step(c->hook->user, &ctx, terms));
    const int max_seeds = (int)(sizeof ctx.seeds / sizeof *ctx.seeds);
    return uakd_train_add_seeds("train", ctx.seeds, ctx.n_seeds, max_seeds, ids, nids);
}

static double lr(const void *self, int64_t step) {
    const uakd_train_config *c = ((const run *)self)->c;
    return uakd_lr_onecycle(step, c->steps, c->warmup_frac, c->lr);
}

static uakd_status write_config(const void *self, const char *path) {
    const run *r = self;
    return uakd_train_write_config(path, r->c, r->m, r->ds);
}

static uakd_status save_model(const void *self, const char *path) { return uakd_wdrnet_save(((const run *)self)->m, path); }

static uakd_status put_meta(const void *m, uakd_safetensors_writer *w) { return uakd_wdrnet_put_metadata(m, w); }
static uakd_status check_meta(const void *m, const uakd_safetensors *st) { return uakd_wdrnet_check_metadata(m, st); }

static const uakd_train_family family = {
    .name = "train", .loss_keys = {"cls", "pose"}, .put_meta = put_meta, .check_meta = check_meta, .prepare = prepare,
    .lr = lr, .forward = forward, .validate = validate, .log_validation = log_validation, .write_config = write_config,
    .save_model = save_model};

uakd_status uakd_train_run(const uakd_train_config *c, uakd_train_result *result) {
    uakd_train_result res_local;
    uakd_train_result *res = result ? result : &res_local;
    memset(res, 0, sizeof *res);
    UAKD_TRY(check_config(c));
    run r = {.c = c, .res = res};
    const uakd_train_loop_config lc = UAKD_TRAIN_LOOP_CONFIG(c);
    uakd_train_loop_result done;
    const uakd_status st = uakd_train_loop_run(&lc, &family, &r, &done);
    res->steps_done = done.steps_done, res->seconds = done.seconds, res->last_loss = done.last_loss;
    run_free(&r);
    return st;
}
