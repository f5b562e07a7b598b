/* AdamW and SGD (Nesterov) updates, global gradient-norm clipping and learning-rate schedules;
 * the formulas are in uakd/optim.h. AdamW runs in float like PyTorch (blocks in parallel), SGD in
 * double per element; both loop over the parameter table so buffers and decay exclusions are
 * honoured per tensor. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layers_omp.h"
#include "uakd/optim.h"

struct uakd_optim {
    uakd_net *net;
    uakd_optim_config cfg;
    float *state; /* AdamW: m then v (2 x n); SGD: momentum buffer (n) */
    int64_t n, count, steps;
};

uakd_optim_config uakd_optim_adamw_default(double weight_decay) {
    uakd_optim_config c;
    memset(&c, 0, sizeof c);
    c.kind = UAKD_OPTIM_ADAMW;
    c.weight_decay = weight_decay;
    c.exclude_no_decay = 1;
    c.beta1 = 0.9, c.beta2 = 0.999, c.eps = 1e-8;
    return c;
}

uakd_status uakd_optim_new(uakd_net *net, const uakd_optim_config *cfg, uakd_optim **out) {
    *out = NULL;
    int64_t n;
    if (!uakd_net_grads(net, &n))
        return uakd_fail(UAKD_EINVAL, "uakd_optim_new: the network is not built for training (uakd_net_build(net, 1))");
    if (cfg->kind != UAKD_OPTIM_ADAMW && cfg->kind != UAKD_OPTIM_SGD)
        return uakd_fail(UAKD_EINVAL, "uakd_optim_new: unknown optimizer kind %d", (int)cfg->kind);
    if (!(cfg->weight_decay >= 0) ||
        (cfg->kind == UAKD_OPTIM_ADAMW &&
         !(cfg->beta1 >= 0 && cfg->beta1 < 1 && cfg->beta2 >= 0 && cfg->beta2 < 1 && cfg->eps > 0)) ||
        (cfg->kind == UAKD_OPTIM_SGD && !(cfg->momentum >= 0 && cfg->momentum < 1)))
        return uakd_fail(UAKD_EINVAL, "uakd_optim_new: weight_decay >= 0, betas/momentum in [0,1), eps > 0 required");
    uakd_optim *o = calloc(1, sizeof *o);
    const int64_t count = (cfg->kind == UAKD_OPTIM_ADAMW ? 2 : 1) * n;
    float *s = calloc((size_t)(count ? count : 1), sizeof(float));
    if (!o || !s) {
        free(o), free(s);
        return uakd_fail(UAKD_ENOMEM, "uakd_optim_new: cannot allocate %lld floats of state", (long long)count);
    }
    o->net = net, o->cfg = *cfg, o->state = s, o->n = n, o->count = count;
    *out = o;
    return UAKD_OK;
}

void uakd_optim_free(uakd_optim *opt) {
    if (!opt) return;
    free(opt->state);
    free(opt);
}

float *uakd_optim_state(const uakd_optim *opt, int64_t *count) {
    if (count) *count = opt->count;
    return opt->state;
}
int64_t uakd_optim_steps(const uakd_optim *opt) { return opt->steps; }
void uakd_optim_set_steps(uakd_optim *opt, int64_t steps) { opt->steps = steps; }

/* One block of AdamW in float, in PyTorch's order of operations. */
static void adamw_block(int n, float *restrict p, const float *restrict g, float *restrict m, float *restrict v,
                        float decay, const float b[4], float step, float sbc2, float eps) {
    for (int i = 0; i < n; i++) {
        const float mi = b[0] * m[i] + b[1] * g[i], vi = b[2] * v[i] + b[3] * g[i] * g[i];
        m[i] = mi, v[i] = vi;
        p[i] = p[i] * decay - step * mi / (sqrtf(vi) / sbc2 + eps);
    }
}

static void adamw(const uakd_optim_config *c, int64_t cnt, float *p, const float *g, float *m, float *v, double lr,
                  double wd, int64_t t) {
    const double bc1 = 1 - pow(c->beta1, (double)t), bc2 = 1 - pow(c->beta2, (double)t);
    const float decay = (float)(1 - lr * wd), step = (float)(lr / bc1), sbc2 = (float)sqrt(bc2);
    /* betas and 1 - betas rounded from double, as PyTorch's scalar arguments are */
    const float beta[4] = {(float)c->beta1, (float)(1 - c->beta1), (float)c->beta2, (float)(1 - c->beta2)};
    const float eps = (float)c->eps;
    const int64_t blocks = (cnt + UAKD_BLOCK - 1) / UAKD_BLOCK;
    UAKD_PARALLEL_FOR(cnt)
    for (int64_t b = 0; b < blocks; b++) {
        const int64_t at = b * UAKD_BLOCK;
        const int n = (int)(cnt - at < UAKD_BLOCK ? cnt - at : UAKD_BLOCK);
        adamw_block(n, p + at, g + at, m + at, v + at, decay, beta, step, sbc2, eps);
    }
}

static void sgd(const uakd_optim_config *c, int64_t cnt, float *p, const float *g, float *buf, double lr, double wd,
                int64_t t) {
    const double mu = c->momentum;
    UAKD_PARALLEL_FOR(cnt)
    for (int64_t i = 0; i < cnt; i++) {
        double gi = g[i] + wd * p[i];
        if (mu > 0) {
            const double b = t == 1 ? gi : mu * buf[i] + gi;
            buf[i] = (float)b;
            gi = c->nesterov ? gi + mu * buf[i] : buf[i];
        }
        p[i] = (float)(p[i] - lr * gi);
    }
}

uakd_status uakd_optim_step(uakd_optim *opt, double lr) {
    if (!(lr >= 0) || !isfinite(lr)) return uakd_fail(UAKD_EINVAL, "uakd_optim_step: learning rate %g invalid", lr);
    opt->steps++;
    const uakd_optim_config *c = &opt->cfg;
    for (int i = 0; i < uakd_net_num_params(opt->net); i++) {
        const uakd_param *p = uakd_net_param(opt->net, i);
        if (p->flags & UAKD_PARAM_BUFFER) continue;
        const double wd = (c->exclude_no_decay && (p->flags & UAKD_PARAM_NO_DECAY)) ? 0.0 : c->weight_decay;
        float *s0 = opt->state + p->offset;
        if (c->kind == UAKD_OPTIM_ADAMW) adamw(c, p->count, p->data, p->grad, s0, s0 + opt->n, lr, wd, opt->steps);
        else sgd(c, p->count, p->data, p->grad, s0, lr, wd, opt->steps);
    }
    return UAKD_OK;
}

double uakd_clip_grad_norm(uakd_net *net, double max_norm) {
    double ss = 0;
    for (int i = 0; i < uakd_net_num_params(net); i++) {
        const uakd_param *p = uakd_net_param(net, i);
        if ((p->flags & UAKD_PARAM_BUFFER) || !p->grad) continue;
        for (int64_t k = 0; k < p->count; k++) ss += (double)p->grad[k] * p->grad[k];
    }
    const double total = sqrt(ss), coef = max_norm / (total + 1e-6);
    if (coef < 1)
        for (int i = 0; i < uakd_net_num_params(net); i++) {
            const uakd_param *p = uakd_net_param(net, i);
            if ((p->flags & UAKD_PARAM_BUFFER) || !p->grad) continue;
            for (int64_t k = 0; k < p->count; k++) p->grad[k] = (float)(p->grad[k] * coef);
        }
    return total;
}

double uakd_lr_onecycle(int64_t step, int64_t total_steps, double warmup_frac, double lr_max) {
    if (total_steps <= 0 || step >= total_steps) return 0;
    if (step < 0) step = 0;
    const double warm = warmup_frac * (double)total_steps;
    if ((double)step < warm) return lr_max * fmin(1.0, ((double)step + 1) / warm);
    return lr_max * ((double)total_steps - (double)step) / ((double)total_steps - warm);
}

double uakd_lr_step(int64_t step, double lr0, double gamma, int n_milestones, const int64_t *milestones) {
    double lr = lr0;
    for (int i = 0; i < n_milestones; i++)
        if (step >= milestones[i]) lr *= gamma;
    return lr;
}
