/* Distillation of an SPNv2 heatmap student from an SPNv2 ensemble (uakd/distill_spn.h): teacher
 * peaks -> mean / variance / u per keypoint -> masses; student soft-argmax peaks and peak values;
 * UAKD or ADLP transport (joint 11 x 11 per image, or 11 problems of 1 x 1); PFKD regions or FKD on
 * P2 through a 1x1 adapter. Formulas in the header. */
#include "uakd/distill_spn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uakd/pfkd.h"
#include "uakd/uncertainty.h"

struct uakd_spn_distill {
    uakd_distill_config cfg;
    int per_kp, E, feat, B, K, in_w, in_h, hw, hh, cs, ct, rr;
    uakd_spnnet *t[UAKD_ENSEMBLE_MAX];
    uakd_spn_config spn;
    uakd_net *adapter;
    int ad_in, ad_out;
    uakd_kd_ctx *kd;
    uakd_spn_hook hook;
    float *x, *y, *ypx, *logit, *amass, *tmass, *gx, *glogit, *pred, *tconf, *mean, *s2, *u, *pts, *rs, *rt, *grs;
    int *n, *m, *off;
    double *work;
    double sum_u;
    long count_u;
};

static int has_pred(uakd_distill_method m) {
    return m == UAKD_DISTILL_UAKD || m == UAKD_DISTILL_UAKD_PFKD || m == UAKD_DISTILL_ADLP || m == UAKD_DISTILL_ADLP_FKD;
}
static int has_pfkd(uakd_distill_method m) { return m == UAKD_DISTILL_PFKD || m == UAKD_DISTILL_UAKD_PFKD; }
static int has_fkd(uakd_distill_method m) { return m == UAKD_DISTILL_ADLP_FKD; }
static int is_adlp(uakd_distill_method m) { return m == UAKD_DISTILL_ADLP || m == UAKD_DISTILL_ADLP_FKD; }

void uakd_spn_distill_free(uakd_spn_distill *d) {
    if (!d) return;
    for (int e = 0; e < d->E; e++) uakd_spnnet_free(d->t[e]);
    uakd_net_free(d->adapter);
    uakd_kd_ctx_free(d->kd);
    float *fl[] = {d->x, d->y, d->ypx, d->logit, d->amass, d->tmass, d->gx, d->glogit, d->pred,
                   d->tconf, d->mean, d->s2, d->u, d->pts, d->rs, d->rt, d->grs};
    for (size_t i = 0; i < sizeof fl / sizeof *fl; i++) free(fl[i]);
    free(d->n), free(d->m), free(d->off), free(d->work);
    free(d);
}

const uakd_spn_hook *uakd_spn_distill_hook(uakd_spn_distill *d) { return &d->hook; }
uakd_net *uakd_spn_distill_adapter(const uakd_spn_distill *d) { return d->adapter; }
double uakd_spn_distill_mean_u(const uakd_spn_distill *d) { return d->count_u ? d->sum_u / (double)d->count_u : 0; }

static uakd_status open_teachers(uakd_spn_distill *d, const char *dir, const uakd_spnnet_config *s) {
    for (int e = 0; e < UAKD_ENSEMBLE_MAX; e++) {
        char mdir[4096], w[4200];
        UAKD_TRY(uakd_ensemble_member_dir(dir, e, mdir, sizeof mdir));
        snprintf(w, sizeof w, "%s/config.json", mdir);
        FILE *f = fopen(w, "r");
        if (!f) break;
        fclose(f);
        uakd_spn_model_info info;
        UAKD_TRY(uakd_spn_model_open(mdir, d->B, &info, &d->t[e]));
        d->E = e + 1;
        if (info.model.in_w != s->in_w || info.model.in_h != s->in_h || info.model.keypoints != s->keypoints)
            return uakd_fail(UAKD_EINVAL, "spn distill: %s has input %dx%d and %d keypoints, the student %dx%d and %d",
                             mdir, info.model.in_w, info.model.in_h, info.model.keypoints, s->in_w, s->in_h, s->keypoints);
    }
    if (d->E < 2) return uakd_fail(UAKD_EINVAL, "spn distill: %s holds %d finished SPNv2 members (member_0/, ...); need >= 2",
                                   dir, d->E);
    return UAKD_OK;
}

static uakd_status step(void *user, uakd_spn_hook_ctx *ctx, double *terms);

uakd_status uakd_spn_distill_new(const uakd_distill_config *cfg, int per_keypoint, const char *ensemble_dir,
                                 const uakd_spnnet_config *student, int max_batch, uakd_spn_distill **out) {
    *out = NULL;
    UAKD_TRY(uakd_distill_config_check(cfg));
    if (cfg->method == UAKD_DISTILL_STUDENT)
        return uakd_fail(UAKD_EINVAL, "spn distill: method 'student' has no hook (train without one)");
    if (max_batch < 1) return uakd_fail(UAKD_EINVAL, "spn distill: max_batch %d", max_batch);
    uakd_spn_distill *d = calloc(1, sizeof *d);
    if (!d) return uakd_fail(UAKD_ENOMEM, "spn distill: out of memory");
    d->cfg = *cfg;
    d->per_kp = per_keypoint != 0;
    d->B = max_batch;
    d->K = student->keypoints;
    d->in_w = student->in_w, d->in_h = student->in_h;
    uakd_spn_config_for(student, &d->spn);
    uakd_spn_heatmap_size(&d->spn, &d->hw, &d->hh);
    d->cs = student->bifpn_width;
    d->rr = cfg->region * cfg->region;
    uakd_status st = open_teachers(d, ensemble_dir, student);
    if (st == UAKD_OK) {
        d->feat = cfg->feat_member < 0 ? 0 : cfg->feat_member;
        if (d->feat >= d->E) st = uakd_fail(UAKD_EINVAL, "spn distill: feature member %d of %d", d->feat, d->E);
    }
    if (st == UAKD_OK) {
        d->ct = d->t[d->feat]->cfg.bifpn_width;
        if ((has_pfkd(cfg->method) || has_fkd(cfg->method)) && d->cs != d->ct) {
            st = uakd_net_new(max_batch, &d->adapter);
            if (st == UAKD_OK) {
                d->ad_in = uakd_net_input(d->adapter, "p2", d->cs, d->hh, d->hw, 1);
                d->ad_out = uakd_net_conv(d->adapter, "adapter", d->ad_in, d->ct, 1, 1, 0, 1, 0);
                st = uakd_net_build(d->adapter, 1);
            }
            if (st == UAKD_OK) {
                uakd_rng rng;
                uakd_rng_seed(&rng, cfg->adapter_seed);
                st = uakd_net_init(d->adapter, &rng);
            }
        }
    }
    if (st == UAKD_OK) st = uakd_kd_ctx_new(&d->kd);
    if (st == UAKD_OK) {
        const size_t BK = (size_t)d->B * d->K, EK = (size_t)d->E * d->K, C = (size_t)(d->ct > d->cs ? d->ct : d->cs);
        d->x = malloc(sizeof(float) * 2 * BK), d->y = malloc(sizeof(float) * 2 * BK), d->ypx = malloc(sizeof(float) * 2 * BK);
        d->logit = malloc(sizeof(float) * BK), d->amass = malloc(sizeof(float) * BK), d->tmass = malloc(sizeof(float) * BK);
        d->gx = malloc(sizeof(float) * 2 * BK), d->glogit = malloc(sizeof(float) * BK);
        d->pred = malloc(sizeof(float) * 2 * EK), d->tconf = malloc(sizeof(float) * EK);
        d->mean = malloc(sizeof(float) * 2 * (size_t)d->K), d->s2 = malloc(sizeof(float) * (size_t)d->K);
        d->u = malloc(sizeof(float) * (size_t)d->K);
        d->pts = malloc(sizeof(float) * 2 * (size_t)d->K * d->rr);
        d->rs = malloc(sizeof(float) * C * d->K * d->rr), d->rt = malloc(sizeof(float) * C * d->K * d->rr);
        d->grs = malloc(sizeof(float) * C * d->K * d->rr);
        d->n = malloc(sizeof(int) * BK), d->m = malloc(sizeof(int) * BK), d->off = malloc(sizeof(int) * (size_t)d->K);
        d->work = malloc(sizeof(double) * 2 * ((size_t)d->hh * d->hw + C));
        if (!d->x || !d->y || !d->ypx || !d->logit || !d->amass || !d->tmass || !d->gx || !d->glogit || !d->pred ||
            !d->tconf || !d->mean || !d->s2 || !d->u || !d->pts || !d->rs || !d->rt || !d->grs || !d->n || !d->m ||
            !d->off || !d->work)
            st = uakd_fail(UAKD_ENOMEM, "spn distill: out of memory");
    }
    if (st != UAKD_OK) {
        uakd_spn_distill_free(d);
        return st;
    }
    for (int k = 0; k < d->K; k++) d->off[k] = k * d->rr;
    d->hook.user = d;
    d->hook.n_terms = 2;
    d->hook.term_names[0] = "kd_pred";
    d->hook.term_names[1] = "kd_feat";
    d->hook.extra_net = d->adapter;
    d->hook.step = step;
    *out = d;
    return UAKD_OK;
}

/* Teacher points, uncertainties and masses, student points and masses of image b. */
static uakd_status local_predictions(uakd_spn_distill *d, const uakd_spn_hook_ctx *ctx, int b) {
    const int K = d->K, E = d->E;
    const size_t per = (size_t)K * d->hh * d->hw;
    const float *members[UAKD_ENSEMBLE_MAX];
    for (int e = 0; e < E; e++) members[e] = uakd_net_out(d->t[e]->net, d->t[e]->heatmap) + (size_t)b * per;
    UAKD_TRY(uakd_spn_member_peaks(&d->spn, E, members, d->pred, d->tconf));
    UAKD_TRY(uakd_unc_ensemble(E, 1, K, d->pred, d->mean, d->s2));
    UAKD_TRY(uakd_unc_from_variance(K, d->s2, d->cfg.tau2, d->u));
    const int bk = b * K;
    for (int k = 0; k < K; k++) {
        double c = 0;
        for (int e = 0; e < E; e++) c += d->tconf[e * K + k] / E;
        c = c < 0 ? 0 : c > 1 ? 1 : c;
        /* + 0.5: uakd_pfkd_sample maps u to u / 4 - 0.5 (pixel centres at i + 0.5); the heatmap cell of
         * an integer-centred input point x is (x + 0.5) / 4 - 0.5 (uakd/spn.h) */
        d->ypx[2 * (bk + k)] = d->mean[2 * k] + 0.5f, d->ypx[2 * (bk + k) + 1] = d->mean[2 * k + 1] + 0.5f;
        d->y[2 * (bk + k)] = d->mean[2 * k] / (float)d->in_w, d->y[2 * (bk + k) + 1] = d->mean[2 * k + 1] / (float)d->in_h;
        d->tmass[bk + k] = uakd_distill_teacher_mass(&d->cfg, d->u[k], (float)c);
        d->sum_u += d->u[k], d->count_u++;
    }
    float conf[UAKD_SPN_MAX_KEYPOINTS];
    UAKD_TRY(uakd_spn_student_local(&d->spn, ctx->heatmap + (size_t)b * per, d->x + 2 * (size_t)bk, conf));
    for (int k = 0; k < K; k++) {
        const float a = conf[k] < UAKD_KD_MASS_MIN ? UAKD_KD_MASS_MIN : conf[k] > UAKD_KD_MASS_MAX ? UAKD_KD_MASS_MAX : conf[k];
        d->amass[bk + k] = conf[k] > UAKD_KD_MASS_MIN && conf[k] < UAKD_KD_MASS_MAX ? a : -a; /* sign: clamped */
        d->logit[bk + k] = logf(a / (1 - a));
    }
    return UAKD_OK;
}

/* P2 of the student after the adapter (or the student's own P2) and its gradient buffer. */
static void student_p2(const uakd_spn_distill *d, const uakd_spn_hook_ctx *ctx, const float **f, float **g) {
    if (d->adapter) {
        *f = uakd_net_out(d->adapter, d->ad_out);
        *g = uakd_net_grad(d->adapter, d->ad_out);
    } else {
        *f = uakd_net_out(ctx->student->net, ctx->student->p2);
        *g = uakd_net_grad(ctx->student->net, ctx->student->p2);
    }
}

static uakd_status feature_loss(uakd_spn_distill *d, uakd_spn_hook_ctx *ctx, double *loss) {
    const int n = ctx->n, K = d->K, C = d->ct, r = d->cfg.region;
    const size_t map = (size_t)d->hh * d->hw, fsz = (size_t)C * map;
    uakd_net *snet = ctx->student->net;
    if (d->adapter) {
        memcpy(uakd_net_out(d->adapter, d->ad_in), uakd_net_out(snet, ctx->student->p2), sizeof(float) * n * d->cs * map);
        uakd_net_zero_grad(d->adapter);
        UAKD_TRY(uakd_net_forward(d->adapter, n, 1));
    }
    const float *fs, *ft = uakd_net_out(d->t[d->feat]->net, d->t[d->feat]->p2);
    float *gs;
    student_p2(d, ctx, &fs, &gs);
    *loss = 0;
    for (int b = 0; b < n; b++) {
        const float *fsb = fs + b * fsz, *ftb = ft + b * fsz;
        float *gsb = gs + b * fsz;
        if (has_fkd(d->cfg.method)) {
            double l;
            memset(gsb, 0, sizeof(float) * fsz);
            UAKD_TRY(uakd_fkd_loss(C, d->hh, d->hw, ftb, fsb, d->cfg.fkd_temp, d->cfg.gamma_f / n, gsb, d->work, &l));
            *loss += l;
            continue;
        }
        float xs[2 * UAKD_SPN_MAX_KEYPOINTS];
        for (int k = 0; k < K; k++)
            xs[2 * k] = d->x[2 * (b * K + k)] * d->in_w + 0.5f, xs[2 * k + 1] = d->x[2 * (b * K + k) + 1] * d->in_h + 0.5f;
        UAKD_TRY(uakd_pfkd_sample(fsb, C, d->hh, d->hw, 4, r, K, xs, d->pts, d->rs));
        UAKD_TRY(uakd_pfkd_sample(ftb, C, d->hh, d->hw, 4, r, K, d->ypx + 2 * (size_t)b * K, d->pts, d->rt));
        memset(d->grs, 0, sizeof(float) * (size_t)C * K * d->rr);
        const int ld = K * d->rr;
        for (int q = 0; q < (d->per_kp ? K : 1); q++) {
            int pn, pm;
            const float *plan = uakd_kd_plan(d->kd, d->per_kp ? b * K + q : b, 0, &pn, &pm);
            if (!plan) return uakd_fail(UAKD_EINVAL, "spn distill: no transport plan for image %d", b);
            const int *o = d->per_kp ? d->off + q : d->off;
            *loss += uakd_pfkd_loss(pn, pm, C, d->rr, d->rs, ld, o, d->rt, ld, o, plan,
                                    d->cfg.gamma_f / ((double)n * pn * pm), d->grs);
        }
        UAKD_TRY(uakd_pfkd_sample_backward(fsb, C, d->hh, d->hw, 4, r, K, xs, d->grs, d->pts, gsb));
    }
    if (d->adapter) {
        UAKD_TRY(uakd_net_backward(d->adapter, 1, &d->ad_out));
        memcpy(uakd_net_grad(snet, ctx->student->p2), uakd_net_grad(d->adapter, d->ad_in), sizeof(float) * n * d->cs * map);
    }
    ctx->seeds[ctx->n_seeds++] = ctx->student->p2;
    return UAKD_OK;
}

static uakd_status step(void *user, uakd_spn_hook_ctx *ctx, double *terms) {
    uakd_spn_distill *d = user;
    const int n = ctx->n, K = d->K;
    if (n > d->B) return uakd_fail(UAKD_EINVAL, "spn distill: batch %d above %d", n, d->B);
    const size_t isz = 3 * (size_t)d->in_w * d->in_h;
    const float *img = uakd_net_out(ctx->student->net, ctx->student->input);
    for (int e = 0; e < d->E; e++) {
        memcpy(uakd_net_out(d->t[e]->net, d->t[e]->input), img, sizeof(float) * isz * n);
        UAKD_TRY(uakd_net_forward(d->t[e]->net, n, 0));
    }
    for (int b = 0; b < n; b++) UAKD_TRY(local_predictions(d, ctx, b));
    /* joint: n problems of K x K; per keypoint: n K problems of 1 x 1 (same point layout) */
    const int problems = d->per_kp ? n * K : n, size = d->per_kp ? 1 : K;
    for (int i = 0; i < problems; i++) d->n[i] = d->m[i] = size;
    const int uniform = d->cfg.method == UAKD_DISTILL_PFKD;
    if (uniform)
        for (int i = 0; i < n * K; i++) d->tmass[i] = 1;
    uakd_kd_input in = {problems, 1, d->n, d->m, d->x, uniform ? NULL : d->logit, d->y, d->tmass};
    uakd_kd_options opt;
    uakd_kd_options_default(&opt);
    opt.uot = d->cfg.uot;
    opt.detach_student_mass = d->cfg.detach_student_mass;
    const double norm = d->per_kp ? K : 1; /* the solver divides by its problem count's images */
    opt.weight = d->cfg.gamma_p * norm;
    memset(d->gx, 0, sizeof(float) * 2 * (size_t)n * K);
    memset(d->glogit, 0, sizeof(float) * (size_t)n * K);
    terms[0] = terms[1] = 0;
    if (has_pred(d->cfg.method)) {
        double l;
        int valid;
        if (is_adlp(d->cfg.method)) UAKD_TRY(uakd_kd_adlp(d->kd, &opt, &in, &l, &valid, d->gx, d->glogit));
        else UAKD_TRY(uakd_kd_uakd(d->kd, &opt, &in, &l, &valid, d->gx, d->glogit));
        terms[0] = d->cfg.gamma_p * norm * l;
        const size_t per = (size_t)K * d->hh * d->hw;
        for (int b = 0; b < n; b++) {
            float dconf[UAKD_SPN_MAX_KEYPOINTS];
            for (int k = 0; k < K; k++) {
                const float a = d->amass[b * K + k];
                dconf[k] = a > 0 ? d->glogit[b * K + k] / (a * (1 - a)) : 0;
            }
            UAKD_TRY(uakd_spn_student_local_backward(&d->spn, ctx->heatmap + b * per, d->gx + 2 * (size_t)b * K, dconf,
                                                     ctx->dheatmap + b * per));
        }
    } else {
        UAKD_TRY(uakd_kd_solve(d->kd, &opt, &in));
    }
    if (has_pfkd(d->cfg.method) || has_fkd(d->cfg.method)) UAKD_TRY(feature_loss(d, ctx, &terms[1]));
    return UAKD_OK;
}
