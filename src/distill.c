/* The distillation hook of the training loop (uakd/distill.h for the method and the formulas).
 *
 * Per step: teachers on the student's input batch (inference mode) -> teacher local predictions,
 * u, masses -> student local predictions at the step's positive cells -> L_pred (UAKD or ADLP),
 * its gradients pushed into the student's offset and logit maps -> L_feat (PFKD with the same
 * plan, or FKD), its gradients into the student's FPN features (through the adapter). */
#include "uakd/distill.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uakd/pfkd.h"

static const char *const method_names[UAKD_DISTILL_METHODS] = {"student", "adlp", "adlp+fkd",
                                                               "uakd",    "pfkd", "uakd+pfkd"};

const char *uakd_distill_method_name(uakd_distill_method m) {
    return m >= 0 && m < UAKD_DISTILL_METHODS ? method_names[m] : "?";
}

uakd_status uakd_distill_method_parse(const char *s, uakd_distill_method *m) {
    for (int i = 0; i < UAKD_DISTILL_METHODS; i++)
        if (s && !strcmp(s, method_names[i])) return *m = (uakd_distill_method)i, UAKD_OK;
    return uakd_fail(UAKD_EINVAL, "distill: unknown method '%s' (student, adlp, adlp+fkd, uakd, pfkd, uakd+pfkd)",
                     s ? s : "");
}

void uakd_distill_config_default(uakd_distill_config *c) {
    memset(c, 0, sizeof *c);
    c->method = UAKD_DISTILL_UAKD_PFKD;
    c->gamma_p = 5;
    c->gamma_f = 0.1;
    c->lambda = 0.5;
    c->tau2 = 1;
    uakd_uot_params_default(&c->uot);
    c->region = 11;
    c->fkd_temp = 0.5;
    c->feat_member = -1;
    c->adapter_seed = 1;
}

uakd_status uakd_distill_config_check(const uakd_distill_config *c) {
    if (c->method < 0 || c->method >= UAKD_DISTILL_METHODS) return uakd_fail(UAKD_EINVAL, "distill: bad method");
    if (!(c->gamma_p >= 0) || !(c->gamma_f >= 0) || !(c->lambda >= 0 && c->lambda <= 1) || !(c->tau2 > 0) ||
        c->region < 1 || c->region > 63 || !(c->fkd_temp > 0))
        return uakd_fail(UAKD_EINVAL, "distill: gamma_p %g, gamma_f %g >= 0, lambda %g in [0, 1], tau^2 %g > 0, "
                                      "region %d in 1..63, FKD temperature %g > 0 required",
                         c->gamma_p, c->gamma_f, c->lambda, c->tau2, c->region, c->fkd_temp);
    return uakd_uot_params_check(&c->uot);
}

static int has_pfkd(uakd_distill_method m) { return m == UAKD_DISTILL_PFKD || m == UAKD_DISTILL_UAKD_PFKD; }
static int has_fkd(uakd_distill_method m) { return m == UAKD_DISTILL_ADLP_FKD; }
static int is_adlp(uakd_distill_method m) { return m == UAKD_DISTILL_ADLP || m == UAKD_DISTILL_ADLP_FKD; }

struct uakd_distill {
    uakd_distill_config cfg;
    uakd_train_hook hook;
    uakd_teachers *teachers;
    uakd_teacher_preds tp;
    uakd_kd_ctx *kd;
    uakd_net *adapter;                   /* NULL: identity */
    int ad_in[UAKD_WDR_MAX_LEVELS], ad_out[UAKD_WDR_MAX_LEVELS];
    int cs, ct, nlev;                    /* student / teacher channels, student levels */
    int max_batch, cap;                  /* images, cells per image */
    /* per-batch arrays (student side: cap per image) */
    int *n;                              /* [B] student predictions */
    float *x, *logit, *gx, *glogit;      /* [B cap][8][2], [B cap] */
    int *sidx;                           /* [B cap] index into targets->pos */
    float *tmass;                        /* [B cap][8] */
    /* PFKD scratch */
    float *rs, *rt, *grs, *hwc; /* regions (region-major), one level map in (H, W, C) */
    int *roff_s, *roff_t;
    double *fkd_work;
    float *fkd_grad;
    uakd_distill_stats stats;
};

const uakd_train_hook *uakd_distill_hook(uakd_distill *d) { return &d->hook; }

float uakd_distill_teacher_mass(const uakd_distill_config *cfg, float u, float c) {
    if (is_adlp(cfg->method)) return c;
    if (cfg->method == UAKD_DISTILL_PFKD) return 1.0f;
    return uakd_kd_teacher_mass((float)cfg->lambda, u, c);
}

const uakd_teacher_preds *uakd_distill_teacher_preds(const uakd_distill *d) { return &d->tp; }

const float *uakd_distill_plan(const uakd_distill *d, int image, int keypoint, int *n, int *m) {
    return is_adlp(d->cfg.method) || d->cfg.method == UAKD_DISTILL_STUDENT ? NULL : uakd_kd_plan(d->kd, image, keypoint, n, m);
}
uakd_net *uakd_distill_adapter(const uakd_distill *d) { return d->adapter; }

void uakd_distill_take_stats(uakd_distill *d, uakd_distill_stats *s) {
    *s = d->stats;
    if (s->steps > 0) s->teacher_cells /= s->steps, s->student_cells /= s->steps;
    memset(&d->stats, 0, sizeof d->stats);
}

void uakd_distill_free(uakd_distill *d) {
    if (!d) return;
    uakd_teachers_free(d->teachers);
    uakd_teacher_preds_free(&d->tp);
    uakd_kd_ctx_free(d->kd);
    uakd_net_free(d->adapter);
    free(d->n), free(d->x), free(d->logit), free(d->gx), free(d->glogit), free(d->sidx), free(d->tmass);
    free(d->rs), free(d->rt), free(d->grs), free(d->hwc), free(d->roff_s), free(d->roff_t);
    free(d->fkd_work), free(d->fkd_grad);
    free(d);
}

static uakd_status hook_step(void *user, uakd_train_hook_ctx *ctx, double *terms);

/* The adapter: per student level an input (F_S, gh, gw) and one shared bias-free 1x1 conv to F_T. */
static uakd_status build_adapter(uakd_distill *d, const uakd_wdr_levels *lv) {
    UAKD_TRY(uakd_net_new(d->max_batch, &d->adapter));
    int conv = -1;
    for (int l = 0; l < lv->n; l++) {
        char name[32];
        snprintf(name, sizeof name, "in%d", l);
        d->ad_in[l] = uakd_net_input(d->adapter, name, d->cs, lv->gh[l], lv->gw[l], 1);
        snprintf(name, sizeof name, "adapter.l%d", l);
        d->ad_out[l] = l == 0 ? (conv = uakd_net_conv(d->adapter, "adapter", d->ad_in[l], d->ct, 1, 1, 0, 1, 0))
                              : uakd_net_shared(d->adapter, name, d->ad_in[l], conv);
    }
    UAKD_TRY(uakd_net_build(d->adapter, 1));
    uakd_rng rng;
    uakd_rng_seed(&rng, d->cfg.adapter_seed);
    return uakd_net_init(d->adapter, &rng);
}

/* Cells of the largest level grid. */
static size_t largest_grid(const uakd_wdr_levels *lv) {
    size_t cells = 0;
    for (int l = 0; l < lv->n; l++) {
        const size_t c = (size_t)lv->gw[l] * lv->gh[l];
        cells = c > cells ? c : cells;
    }
    return cells;
}

static uakd_status alloc_all(uakd_distill *d, const uakd_wdr_levels *slv, const uakd_wdr_levels *tlv) {
    const size_t B = (size_t)d->max_batch, cells = B * d->cap, rr = (size_t)d->cfg.region * d->cfg.region;
    d->n = malloc(sizeof(int) * B);
    d->x = malloc(sizeof(float) * cells * 16);
    d->gx = malloc(sizeof(float) * cells * 16);
    d->logit = malloc(sizeof(float) * cells);
    d->glogit = malloc(sizeof(float) * cells);
    d->sidx = malloc(sizeof(int) * cells);
    d->tmass = malloc(sizeof(float) * cells * 8);
    if (!d->n || !d->x || !d->gx || !d->logit || !d->glogit || !d->sidx || !d->tmass) return uakd_fail(UAKD_ENOMEM, "distill: out of memory");
    if (has_pfkd(d->cfg.method)) {
        const size_t regions = (size_t)d->cap * 8, per = (size_t)d->ct * rr * regions;
        d->rs = malloc(sizeof(float) * per);
        d->rt = malloc(sizeof(float) * per);
        d->grs = malloc(sizeof(float) * per);
        d->roff_s = malloc(sizeof(int) * regions);
        d->roff_t = malloc(sizeof(int) * regions);
        const size_t ps = largest_grid(slv), pt = largest_grid(tlv);
        d->hwc = malloc(sizeof(float) * (ps > pt ? ps : pt) * d->ct);
        if (!d->rs || !d->rt || !d->grs || !d->hwc || !d->roff_s || !d->roff_t)
            return uakd_fail(UAKD_ENOMEM, "distill: out of memory (PFKD regions)");
    }
    if (has_fkd(d->cfg.method)) {
        size_t hw = 0;
        for (int l = 0; l < slv->n; l++) hw = hw > (size_t)slv->gw[l] * slv->gh[l] ? hw : (size_t)slv->gw[l] * slv->gh[l];
        d->fkd_work = malloc(sizeof(double) * 2 * (hw + (size_t)d->ct));
        if (!d->fkd_work) return uakd_fail(UAKD_ENOMEM, "distill: out of memory (FKD)");
        for (int l = 0; l < slv->n; l++)
            if (l >= tlv->n || slv->gw[l] != tlv->gw[l] || slv->gh[l] != tlv->gh[l])
                return uakd_fail(UAKD_EINVAL, "distill: FKD needs the teacher's level %d grid to equal the student's", l);
    }
    return UAKD_OK;
}

uakd_status uakd_distill_new(const uakd_distill_config *cfg, const char *ensemble_dir, const uakd_wdrnet_config *student,
                             uakd_distill **out) {
    *out = NULL;
    UAKD_TRY(uakd_distill_config_check(cfg));
    uakd_distill *d = calloc(1, sizeof *d);
    if (!d) return uakd_fail(UAKD_ENOMEM, "distill: out of memory");
    d->cfg = *cfg;
    d->max_batch = student->max_batch;
    uakd_wdr_config wdr;
    uakd_wdr_config_default(&wdr);
    d->cap = uakd_wdr_max_cells(&wdr);
    if (d->max_batch < 1 || d->max_batch > 4096 || d->cap > 64) {
        uakd_status bad = uakd_fail(UAKD_EINVAL, "distill: batch %d (1..4096) or %d cells per image (at most 64)",
                                    d->max_batch, d->cap);
        free(d);
        return bad;
    }
    /* the student's levels without building it: a throwaway inference build gives the grids */
    uakd_wdrnet_config sc = *student;
    sc.training = 0;
    sc.max_batch = 1;
    uakd_wdrnet *probe = NULL;
    uakd_status st = uakd_kd_ctx_new(&d->kd);
    if (st == UAKD_OK) st = uakd_teachers_open(ensemble_dir, d->max_batch, cfg->feat_member, &d->teachers);
    if (st == UAKD_OK) st = uakd_wdrnet_new(&sc, &probe);
    if (st == UAKD_OK) {
        const uakd_wdr_levels *slv = uakd_wdrnet_levels(probe);
        uakd_wdrnet *fm = uakd_teachers_member(d->teachers, uakd_teachers_feat_member(d->teachers));
        const uakd_wdr_levels *tlv = uakd_wdrnet_levels(fm);
        d->nlev = slv->n;
        d->cs = uakd_wdrnet_config_of(probe)->width;
        d->ct = uakd_wdrnet_config_of(fm)->width;
        if (slv->in_w != tlv->in_w || slv->in_h != tlv->in_h)
            st = uakd_fail(UAKD_EINVAL, "distill: student input %dx%d differs from the teachers' %dx%d (use the "
                                        "teachers' --input)", slv->in_w, slv->in_h, tlv->in_w, tlv->in_h);
        if (st == UAKD_OK) st = alloc_all(d, slv, tlv);
        if (st == UAKD_OK && (has_pfkd(cfg->method) || has_fkd(cfg->method)) && d->cs != d->ct) st = build_adapter(d, slv);
    }
    uakd_wdrnet_free(probe);
    if (st != UAKD_OK) {
        uakd_distill_free(d);
        return st;
    }
    d->hook.user = d;
    d->hook.step = hook_step;
    d->hook.extra_net = d->adapter;
    d->hook.n_terms = 2;
    d->hook.term_names[0] = "kd_pred";
    d->hook.term_names[1] = "kd_feat";
    *out = d;
    return UAKD_OK;
}

/* ---- one step ---- */

/* Student local predictions of every image, teacher masses of the method. */
static uakd_status gather(uakd_distill *d, const uakd_train_hook_ctx *ctx, uakd_kd_input *in) {
    int off = 0;
    for (int b = 0; b < ctx->n; b++) {
        int cnt = 0;
        UAKD_TRY(uakd_wdr_student_local(ctx->targets, ctx->maps, b, d->x + (size_t)off * 16, d->logit + off,
                                        d->sidx + off, d->cap, &cnt));
        d->n[b] = cnt;
        off += cnt;
    }
    const uakd_teacher_preds *tp = &d->tp;
    double usum = 0;
    for (int j = 0; j < tp->total; j++)
        for (int k = 0; k < 8; k++) {
            const float u = tp->u[j * 8 + k], c = (float)tp->cells[j].conf;
            usum += u;
            d->tmass[j * 8 + k] = uakd_distill_teacher_mass(&d->cfg, u, c);
        }
    d->stats.steps++;
    d->stats.teacher_cells += (double)tp->total / ctx->n;
    d->stats.student_cells += (double)off / ctx->n;
    if (tp->total) d->stats.mean_u += (usum / (8.0 * tp->total) - d->stats.mean_u) / (double)d->stats.steps;
    in->images = ctx->n;
    in->keypoints = 8;
    in->n = d->n;
    in->m = tp->m;
    in->x = d->x;
    in->logit = d->cfg.method == UAKD_DISTILL_PFKD ? NULL : d->logit;
    in->y = tp->y;
    in->tmass = d->tmass;
    memset(d->gx, 0, sizeof(float) * (size_t)off * 16);
    memset(d->glogit, 0, sizeof(float) * (size_t)off);
    return UAKD_OK;
}

static uakd_status pred_loss(uakd_distill *d, const uakd_train_hook_ctx *ctx, const uakd_kd_input *in, double *term) {
    uakd_kd_options o;
    uakd_kd_options_default(&o);
    o.uot = d->cfg.uot;
    o.detach_student_mass = d->cfg.detach_student_mass;
    o.weight = d->cfg.gamma_p;
    double loss = 0;
    if (d->cfg.method == UAKD_DISTILL_PFKD) return uakd_kd_solve(d->kd, &o, in);
    if (is_adlp(d->cfg.method)) UAKD_TRY(uakd_kd_adlp(d->kd, &o, in, &loss, NULL, d->gx, d->glogit));
    else UAKD_TRY(uakd_kd_uakd(d->kd, &o, in, &loss, NULL, d->gx, d->glogit));
    *term = d->cfg.gamma_p * loss;
    int off = 0;
    for (int b = 0; b < ctx->n; b++) {
        if (d->n[b] > 0)
            UAKD_TRY(uakd_wdr_student_local_backward(ctx->targets, b, d->gx + (size_t)off * 16,
                                                     d->cfg.detach_student_mass ? NULL : d->glogit + off, d->n[b],
                                                     ctx->grads));
        off += d->n[b];
    }
    return UAKD_OK;
}

/* The student feature map of level l (adapted when there is an adapter) and its gradient buffer. */
static void student_feature(const uakd_distill *d, const uakd_train_hook_ctx *ctx, int l, const float **f, float **g) {
    if (d->adapter) {
        *f = uakd_net_out(d->adapter, d->ad_out[l]);
        *g = uakd_net_grad(d->adapter, d->ad_out[l]);
    } else {
        const uakd_net *net = uakd_wdrnet_net(ctx->student);
        const int id = uakd_wdrnet_feature_id(ctx->student, l);
        *f = uakd_net_out(net, id);
        *g = uakd_net_grad(net, id);
    }
}

static uakd_status adapter_forward(uakd_distill *d, const uakd_train_hook_ctx *ctx) {
    const uakd_net *net = uakd_wdrnet_net(ctx->student);
    for (int l = 0; l < d->nlev; l++) {
        const int id = uakd_wdrnet_feature_id(ctx->student, l);
        memcpy(uakd_net_out(d->adapter, d->ad_in[l]), uakd_net_out(net, id),
               sizeof(float) * (size_t)ctx->n * uakd_net_shape(net, id, NULL, NULL, NULL));
    }
    return uakd_net_forward(d->adapter, ctx->n, 1);
}

/* Gradients written into the feature gradient buffers (adapter outputs or the student's maps) go
 * back to the student's maps, which become the loop's seeds. */
static uakd_status seed_features(uakd_distill *d, uakd_train_hook_ctx *ctx) {
    const uakd_net *net = uakd_wdrnet_net(ctx->student);
    if (d->adapter) {
        UAKD_TRY(uakd_net_backward(d->adapter, d->nlev, d->ad_out));
        for (int l = 0; l < d->nlev; l++) {
            const int id = uakd_wdrnet_feature_id(ctx->student, l);
            memcpy(uakd_net_grad(net, id), uakd_net_grad(d->adapter, d->ad_in[l]),
                   sizeof(float) * (size_t)ctx->n * uakd_net_shape(net, id, NULL, NULL, NULL));
        }
    }
    for (int l = 0; l < d->nlev; l++) ctx->seeds[ctx->n_seeds++] = uakd_wdrnet_feature_id(ctx->student, l);
    return UAKD_OK;
}

/* Samples the regions of `count` predictions (rows of pix: 8 corners, input pixels in 16 floats)
 * on each level into out (region i*8+k at (i*8+k)*C*rr, sample-major: uakd_pfkd_sample_hwc).
 * level[i] gives the level. With dout != NULL it runs the backward instead: dfeat of each level
 * (image slice) assigned. Each level's map goes through d->hwc in (H, W, C). */
typedef struct side {
    const float *feat[UAKD_WDR_MAX_LEVELS]; /* image slice of each level's map */
    float *dfeat[UAKD_WDR_MAX_LEVELS];      /* image slice of each level's gradient (backward) */
    const uakd_wdr_levels *lv;
    int c;
} side;

static uakd_status regions(uakd_distill *d, const side *s, int count, const int *level, const float *pix, float *out,
                           const float *dout) {
    const int r = d->cfg.region, rr = r * r, C = s->c;
    for (int l = 0; l < s->lv->n; l++) {
        int i0 = -1, i1 = -1;
        for (int i = 0; i < count; i++)
            if (level[i] == l) {
                if (i0 < 0) i0 = i;
                i1 = i + 1;
            }
        const int h = s->lv->gh[l], w = s->lv->gw[l], hw = h * w;
        if (i0 < 0) {
            if (dout && s->dfeat[l]) memset(s->dfeat[l], 0, sizeof(float) * (size_t)C * hw);
            continue;
        }
        for (int i = i0; i < i1; i++)
            if (level[i] != l) return uakd_fail(UAKD_EINVAL, "distill: local predictions not grouped by level");
        const int nreg = (i1 - i0) * 8;
        const size_t o = (size_t)i0 * 8 * C * rr;
        if (!dout) {
            for (int c = 0; c < C; c++)
                for (int p = 0; p < hw; p++) d->hwc[(size_t)p * C + c] = s->feat[l][(size_t)c * hw + p];
            UAKD_TRY(uakd_pfkd_sample_hwc(d->hwc, C, h, w, s->lv->stride[l], r, nreg, pix + i0 * 16, out + o));
        } else {
            UAKD_TRY(uakd_pfkd_sample_hwc_backward(C, h, w, s->lv->stride[l], r, nreg, pix + i0 * 16, dout + o,
                                                   d->hwc));
            for (int c = 0; c < C; c++)
                for (int p = 0; p < hw; p++) s->dfeat[l][(size_t)c * hw + p] = d->hwc[(size_t)p * C + c];
        }
    }
    return UAKD_OK;
}

static uakd_status pfkd_loss(uakd_distill *d, uakd_train_hook_ctx *ctx, double *term) {
    if (d->adapter) UAKD_TRY(adapter_forward(d, ctx));
    uakd_wdrnet *fm = uakd_teachers_member(d->teachers, uakd_teachers_feat_member(d->teachers));
    const uakd_net *tnet = uakd_wdrnet_net(fm);
    const uakd_wdr_levels *slv = uakd_wdrnet_levels(ctx->student), *tlv = uakd_wdrnet_levels(fm);
    const int rr = d->cfg.region * d->cfg.region, C = d->ct;
    int V = 0;
    for (int b = 0; b < ctx->n; b++) V += d->n[b] > 0 && d->tp.m[b] > 0;
    double total = 0;
    int soff = 0, toff = 0;
    for (int b = 0; b < ctx->n; b++) {
        const int N = d->n[b], M = d->tp.m[b];
        side S = {.lv = slv, .c = C}, T = {.lv = tlv, .c = C};
        for (int l = 0; l < slv->n; l++) {
            const float *f;
            float *g;
            student_feature(d, ctx, l, &f, &g);
            const size_t plane = (size_t)C * slv->gh[l] * slv->gw[l];
            S.feat[l] = f + b * plane;
            S.dfeat[l] = g + b * plane;
        }
        for (int l = 0; l < tlv->n; l++)
            T.feat[l] = uakd_net_out(tnet, uakd_wdrnet_feature_id(fm, l)) + (size_t)b * C * tlv->gh[l] * tlv->gw[l];
        int slev[64], tlev[64];
        float spix[64 * 16], tpix[64 * 16];
        for (int i = 0; i < N; i++) {
            slev[i] = ctx->targets->pos[d->sidx[soff + i]].level;
            for (int q = 0; q < 16; q += 2)
                spix[i * 16 + q] = d->x[(size_t)(soff + i) * 16 + q] * slv->in_w,
                spix[i * 16 + q + 1] = d->x[(size_t)(soff + i) * 16 + q + 1] * slv->in_h;
        }
        for (int j = 0; j < M; j++) {
            const uakd_wdr_cell *cell = &d->tp.cells[toff + j];
            tlev[j] = cell->level;
            for (int q = 0; q < 16; q++) tpix[j * 16 + q] = (float)cell->corners[q];
        }
        if (N > 0 && M > 0) {
            UAKD_TRY(regions(d, &S, N, slev, spix, d->rs, NULL));
            UAKD_TRY(regions(d, &T, M, tlev, tpix, d->rt, NULL));
            memset(d->grs, 0, sizeof(float) * (size_t)N * 8 * C * rr);
            const double scale = d->cfg.gamma_f / ((double)V * N * M);
            for (int k = 0; k < 8; k++) {
                int pn, pm;
                const float *plan = uakd_kd_plan(d->kd, b, k, &pn, &pm);
                if (!plan || pn != N || pm != M) return uakd_fail(UAKD_EINVAL, "distill: no plan for image %d", b);
                for (int i = 0; i < N; i++) d->roff_s[i] = (i * 8 + k) * C * rr;
                for (int j = 0; j < M; j++) d->roff_t[j] = (j * 8 + k) * C * rr;
                /* a region's C rr values as one channel: the MSE is over all of them either way */
                total += uakd_pfkd_loss(N, M, 1, C * rr, d->rs, C * rr, d->roff_s, d->rt, C * rr, d->roff_t, plan,
                                        scale, d->grs);
            }
            UAKD_TRY(regions(d, &S, N, slev, spix, NULL, d->grs)); /* assigns every level's image slice */
        } else {
            UAKD_TRY(regions(d, &S, 0, slev, spix, NULL, d->grs)); /* no loss: zero gradients */
        }
        soff += N;
        toff += M;
    }
    *term = total;
    return seed_features(d, ctx);
}

static uakd_status fkd_loss(uakd_distill *d, uakd_train_hook_ctx *ctx, double *term) {
    if (d->adapter) UAKD_TRY(adapter_forward(d, ctx));
    uakd_wdrnet *fm = uakd_teachers_member(d->teachers, uakd_teachers_feat_member(d->teachers));
    const uakd_net *tnet = uakd_wdrnet_net(fm);
    const uakd_wdr_levels *slv = uakd_wdrnet_levels(ctx->student);
    const double scale = d->cfg.gamma_f / ((double)ctx->n * slv->n);
    double total = 0;
    for (int l = 0; l < slv->n; l++) {
        const float *f;
        float *g;
        student_feature(d, ctx, l, &f, &g);
        const size_t plane = (size_t)d->ct * slv->gh[l] * slv->gw[l];
        memset(g, 0, sizeof(float) * plane * ctx->n);
        const float *ft = uakd_net_out(tnet, uakd_wdrnet_feature_id(fm, l));
        for (int b = 0; b < ctx->n; b++) {
            double loss;
            UAKD_TRY(uakd_fkd_loss(d->ct, slv->gh[l], slv->gw[l], ft + b * plane, f + b * plane, d->cfg.fkd_temp, scale,
                                   g + b * plane, d->fkd_work, &loss));
            total += loss;
        }
    }
    *term = total;
    return seed_features(d, ctx);
}

static uakd_status hook_step(void *user, uakd_train_hook_ctx *ctx, double *terms) {
    uakd_distill *d = user;
    terms[0] = terms[1] = 0;
    if (d->cfg.method == UAKD_DISTILL_STUDENT) return UAKD_OK;
    if (ctx->n > d->max_batch) return uakd_fail(UAKD_EINVAL, "distill: batch of %d above %d", ctx->n, d->max_batch);
    int cls[4096];
    for (int b = 0; b < ctx->n && b < 4096; b++) cls[b] = ctx->targets->obj[b].cls;
    const uakd_net *snet = uakd_wdrnet_net(ctx->student);
    UAKD_TRY(uakd_teachers_predict(d->teachers, uakd_net_out(snet, uakd_wdrnet_input(ctx->student)), ctx->n, cls,
                                   d->cfg.tau2, &d->tp));
    uakd_kd_input in;
    UAKD_TRY(gather(d, ctx, &in));
    UAKD_TRY(pred_loss(d, ctx, &in, &terms[0]));
    if (has_pfkd(d->cfg.method)) UAKD_TRY(pfkd_loss(d, ctx, &terms[1]));
    if (has_fkd(d->cfg.method)) UAKD_TRY(fkd_loss(d, ctx, &terms[1]));
    return UAKD_OK;
}
