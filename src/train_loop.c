/* The training loop shared by the model families (uakd/train_loop.h). Per step s (0-based) of S:
 *   batch = loader next;  L = the family's supervised loss + sum of the hook's terms;
 *   g = dL/dtheta by back-propagation from the family's outputs and the hook's seeds;
 *   g *= min(1, clip / (|g| + 1e-6)) (clip > 0);  theta = AdamW(theta, g, lr(s)), lr from the family;
 *   the hook's extra network likewise with its own AdamW.
 * Random streams: the loop's own, split(seed, 2), drawn by the family's forward and checkpointed;
 * the loader's (seed, position), checkpointed as its position. */
#include "uakd/train_loop.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "uakd/optim.h"
#include "train_internal.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* mkdir -p */
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

static uakd_status check_config(const uakd_train_loop_config *c, const char *name) {
    if (!c->out_dir) return uakd_fail(UAKD_EINVAL, "%s: out_dir is required", name);
    if (c->batch < 1 || c->batch > 4096) return uakd_fail(UAKD_EINVAL, "%s: batch %d outside 1..4096", name, c->batch);
    if (c->steps < 1) return uakd_fail(UAKD_EINVAL, "%s: steps %lld must be >= 1", name, (long long)c->steps);
    if (!(c->lr > 0 && c->lr < 10) || !(c->weight_decay >= 0) || !(c->clip >= 0))
        return uakd_fail(UAKD_EINVAL, "%s: lr %g (0..10), weight_decay %g (>= 0) or clip %g (>= 0) out of range", name,
                         c->lr, c->weight_decay, c->clip);
    if (c->val_every < 0 || c->ckpt_every < 0 || c->log_every < 1 || c->val_max < 0)
        return uakd_fail(UAKD_EINVAL, "%s: val_every, ckpt_every, val_max must be >= 0 and log_every >= 1", name);
    if (c->hooked && (c->n_terms < 0 || c->n_terms > UAKD_TRAIN_MAX_TERMS || !c->hook_has_step))
        return uakd_fail(UAKD_EINVAL, "%s: hook needs a step function and 0..%d terms", name, UAKD_TRAIN_MAX_TERMS);
    return UAKD_OK;
}

/* What the loop holds besides the family's run. */
typedef struct run {
    const uakd_train_loop_config *c;
    const uakd_train_family *f;
    void *self;
    uakd_train_setup s;
    uakd_optim *opt, *extra_opt;
    uakd_loader *loader;
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
}

/* Optimizers and the initial state (the loop's RNG stream split(seed, 2)). */
static uakd_status build(run *r) {
    const uakd_train_loop_config *c = r->c;
    uakd_optim_config oc = uakd_optim_adamw_default(c->weight_decay);
    UAKD_TRY(uakd_optim_new(r->s.net, &oc, &r->opt));
    if (c->extra_net) UAKD_TRY(uakd_optim_new(c->extra_net, &oc, &r->extra_opt));
    r->state.total_steps = c->steps;
    uakd_rng_seed(&r->state.rng, c->seed);
    uakd_rng_split(&r->state.rng, 2, &r->state.rng);
    r->state.has_loader = 1;
    return UAKD_OK;
}

static uakd_status open_loader(run *r) {
    const uakd_train_loop_config *c = r->c;
    uakd_loader_config lc = {0};
    lc.batch_size = c->batch;
    lc.seed = c->seed;
    lc.shuffle = 1;
    lc.threads = c->loader_threads;
    lc.cache_bytes = c->cache_bytes;
    lc.sample = r->s.sample;
    uakd_status st = uakd_loader_new(r->s.train_ds, r->s.train_idx, r->s.n_train, &lc, &r->loader);
    if (st == UAKD_OK && r->state.step > 0) st = uakd_loader_seek(r->loader, r->state.loader);
    return st;
}

static uakd_status save_checkpoint(run *r) {
    r->state.loader = uakd_loader_tell(r->loader);
    if (r->extra_opt)
        UAKD_TRY(uakd_checkpoint_save(out_path(r, "checkpoint_extra.safetensors"), r->c->extra_net, r->extra_opt,
                                      &r->state, NULL, NULL));
    return uakd_checkpoint_save(out_path(r, "checkpoint.safetensors"), r->s.net, r->opt, &r->state, r->f->put_meta,
                                r->s.arch);
}

static uakd_status resume(run *r) {
    const char *name = r->f->name;
    uakd_train_state s;
    UAKD_TRY(uakd_checkpoint_load(out_path(r, "checkpoint.safetensors"), r->s.net, r->opt, &s, r->f->check_meta,
                                  r->s.arch));
    if (s.total_steps != r->c->steps)
        return uakd_fail(UAKD_EINVAL, "%s: the checkpoint's schedule has %lld steps, this run %lld (resume with the "
                                      "same --steps)",
                         name, (long long)s.total_steps, (long long)r->c->steps);
    if (!s.has_loader) return uakd_fail(UAKD_EFORMAT, "%s: the checkpoint has no loader position", name);
    if (r->extra_opt) {
        uakd_train_state e;
        UAKD_TRY(uakd_checkpoint_load(out_path(r, "checkpoint_extra.safetensors"), r->c->extra_net, r->extra_opt, &e,
                                      NULL, NULL));
        if (e.step != s.step)
            return uakd_fail(UAKD_EFORMAT, "%s: checkpoint_extra.safetensors is at step %lld, the model at %lld", name,
                             (long long)e.step, (long long)s.step);
    }
    r->state = s;
    return uakd_train_log_truncate(out_path(r, "train_log.jsonl"), s.step);
}

void uakd_train_log_number(FILE *log, const char *key, double v) {
    if (isfinite(v)) fprintf(log, ", \"%s\": %.9g", key, v);
    else fprintf(log, ", \"%s\": null", key);
}

uakd_status uakd_train_add_seeds(const char *name, const int *seeds, int n, int max, int *ids, int *nids) {
    if (n < 0 || n > max || *nids + n > UAKD_TRAIN_MAX_SEEDS)
        return uakd_fail(UAKD_EINVAL, "%s: the hook reported %d seeded layers", name, n);
    for (int k = 0; k < n; k++) ids[(*nids)++] = seeds[k];
    return UAKD_OK;
}

/* One log line: the step's terms (with_terms) and the validation just run (with_val). */
static void log_line(run *r, const uakd_train_progress *p, int with_terms, int with_val) {
    fprintf(r->log, "{\"step\": %lld", (long long)p->step);
    if (with_terms) {
        uakd_train_log_number(r->log, "loss", p->loss);
        const double sup[2] = {p->cls, p->pose};
        for (int k = 0; k < 2; k++)
            if (r->f->loss_keys[k]) uakd_train_log_number(r->log, r->f->loss_keys[k], sup[k]);
        for (int k = 0; k < p->n_terms; k++) uakd_train_log_number(r->log, p->term_names[k], p->terms[k]);
        uakd_train_log_number(r->log, "lr", p->lr);
        uakd_train_log_number(r->log, "img_s", p->img_s);
    }
    if (with_val) r->f->log_validation(r->log, p);
    fprintf(r->log, "}\n");
    fflush(r->log);
}

/* One step on batch b; fills the loss terms of p. */
static uakd_status train_step(run *r, const uakd_batch *b, double lr, uakd_train_progress *p, double *terms) {
    const uakd_train_loop_config *c = r->c;
    int ids[UAKD_TRAIN_MAX_SEEDS], nids = 0;
    uakd_net_zero_grad(r->s.net);
    if (r->extra_opt) uakd_net_zero_grad(c->extra_net);
    for (int k = 0; k < c->n_terms; k++) terms[k] = 0;
    UAKD_TRY(r->f->forward(r->self, r->state.step, b, &r->state.rng, p, terms, ids, &nids));
    for (int k = 0; k < c->n_terms; k++) p->loss += terms[k];
    UAKD_TRY(uakd_net_backward(r->s.net, nids, ids));
    if (c->clip > 0) uakd_clip_grad_norm(r->s.net, c->clip);
    UAKD_TRY(uakd_optim_step(r->opt, lr));
    if (r->extra_opt) {
        if (c->clip > 0) uakd_clip_grad_norm(c->extra_net, c->clip);
        UAKD_TRY(uakd_optim_step(r->extra_opt, lr));
    }
    return UAKD_OK;
}

static int report(run *r, uakd_train_progress *p) {
    const int stop = r->c->progress ? r->c->progress(p, r->c->user) : 0;
    p->event = NULL;
    p->validation = 0;
    return stop;
}

static uakd_status loop(run *r, uakd_train_loop_result *res) {
    const uakd_train_loop_config *c = r->c;
    const uakd_train_family *f = r->f;
    double terms[UAKD_TRAIN_MAX_TERMS] = {0};
    uakd_train_progress p = {0};
    p.total = c->steps;
    p.n_terms = c->n_terms;
    p.term_names = c->term_names;
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
        p.lr = f->lr(r->self, r->state.step);
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
        if (r->s.can_validate && (last || (c->val_every && r->state.step % c->val_every == 0))) {
            UAKD_TRY(f->validate(r->self, &p));
            p.validation = 1;
        }
        const int log_terms = r->state.step % c->log_every == 0 || last;
        if (f->val_own_line) {
            if (log_terms) log_line(r, &p, 1, 0);
            if (p.validation) log_line(r, &p, 0, 1);
        } else if (log_terms || p.validation) {
            log_line(r, &p, log_terms, p.validation);
        }
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
    return uakd_fail(UAKD_EINTERRUPTED, "%s: stopped at step %lld of %lld; checkpoint written to %s (continue with "
                                        "resume)",
                     f->name, (long long)r->state.step, (long long)c->steps, r->path);
}

uakd_status uakd_train_loop_run(const uakd_train_loop_config *c, const uakd_train_family *f, void *self,
                                uakd_train_loop_result *res) {
    memset(res, 0, sizeof *res);
    UAKD_TRY(check_config(c, f->name));
    run r = {0};
    r.c = c;
    r.f = f;
    r.self = self;
    uakd_status st = make_dirs(c->out_dir);
    if (st == UAKD_OK) st = f->prepare(self, &r.s);
    if (st == UAKD_OK) st = build(&r);
    if (st == UAKD_OK && c->resume) st = resume(&r);
    if (st == UAKD_OK && !c->resume) st = f->write_config(self, out_path(&r, "config.json"));
    if (st == UAKD_OK) {
        r.log = fopen(out_path(&r, "train_log.jsonl"), c->resume ? "a" : "w");
        if (!r.log) st = uakd_fail(UAKD_EIO, "%s: cannot write %s: %s", f->name, r.path, strerror(errno));
    }
    if (st == UAKD_OK) st = open_loader(&r);
    if (st == UAKD_OK) st = loop(&r, res);
    if (st == UAKD_OK) st = f->save_model(self, out_path(&r, "model.safetensors"));
    run_free(&r);
    return st;
}
