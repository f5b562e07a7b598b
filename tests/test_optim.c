/* Optimisers against hand-computed PyTorch formulas (AdamW with bias correction and decoupled
 * decay, SGD with Nesterov momentum), decay exclusion, buffers untouched, gradient clipping and
 * the schedules. The 5-step AdamW trajectory of a real network is in test_torch_parity.c. */
#include "test.h"
#include "uakd/net.h"
#include "uakd/optim.h"

/* x -> conv "c" (1->1, 1x1, bias) -> scale "s": parameters c.weight, c.bias, s. */
static uakd_net *tiny(void) {
    uakd_net *net = NULL;
    CHECK_OK(uakd_net_new(1, &net));
    int x = uakd_net_input(net, "x", 1, 1, 1, 0);
    x = uakd_net_batchnorm(net, "bn", x);
    x = uakd_net_conv(net, "c", x, 1, 1, 1, 0, 1, 1);
    uakd_net_scale(net, "s", x);
    CHECK_OK(uakd_net_build(net, 1));
    return net;
}

static void set_grads(uakd_net *net, float g) {
    uakd_net_zero_grad(net);
    for (int i = 0; i < uakd_net_num_params(net); i++) {
        const uakd_param *p = uakd_net_param(net, i);
        if (!(p->flags & UAKD_PARAM_BUFFER)) p->grad[0] = g;
    }
}

static void test_adamw(void) {
    uakd_net *net = tiny();
    float *w = uakd_net_param_find(net, "c.weight")->data, *b = uakd_net_param_find(net, "c.bias")->data;
    float *rv = uakd_net_param_find(net, "bn.running_var")->data;
    w[0] = 1.0f, b[0] = 1.0f, rv[0] = 2.0f;
    uakd_optim_config cfg = uakd_optim_adamw_default(0.1);
    uakd_optim *opt = NULL;
    CHECK_OK(uakd_optim_new(net, &cfg, &opt));
    double pw = 1, pb = 1, m = 0, v = 0;
    const double lr = 0.01, grads[3] = {0.5, -2.0, 0.25};
    for (int t = 1; t <= 3; t++) {
        set_grads(net, (float)grads[t - 1]);
        CHECK_OK(uakd_optim_step(opt, lr));
        const double g = grads[t - 1];
        m = 0.9 * m + 0.1 * g, v = 0.999 * v + 0.001 * g * g;
        const double upd = lr / (1 - pow(0.9, t)) * m / (sqrt(v) / sqrt(1 - pow(0.999, t)) + 1e-8);
        pw = pw * (1 - lr * 0.1) - upd; /* decayed */
        pb = pb - upd;                  /* bias: excluded from decay */
        CHECK_NEAR(w[0], pw, 1e-6);
        CHECK_NEAR(b[0], pb, 1e-6);
    }
    CHECK(rv[0] == 2.0f); /* buffers untouched */
    CHECK(uakd_optim_steps(opt) == 3);
    int64_t n;
    int64_t np;
    uakd_net_params(net, &np);
    CHECK(uakd_optim_state(opt, &n) && n == 2 * np);
    uakd_optim_free(opt);
    uakd_net_free(net);
}

static void test_sgd_nesterov(void) {
    uakd_net *net = tiny();
    float *w = uakd_net_param_find(net, "c.weight")->data;
    w[0] = 2.0f;
    uakd_optim_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.kind = UAKD_OPTIM_SGD, cfg.momentum = 0.9, cfg.nesterov = 1, cfg.weight_decay = 0.01;
    uakd_optim *opt = NULL;
    CHECK_OK(uakd_optim_new(net, &cfg, &opt));
    double p = 2, buf = 0;
    for (int t = 1; t <= 3; t++) {
        set_grads(net, 1.0f);
        CHECK_OK(uakd_optim_step(opt, 0.1));
        double g = 1.0 + 0.01 * p;
        buf = t == 1 ? g : 0.9 * buf + g;
        p -= 0.1 * (g + 0.9 * buf);
        CHECK_NEAR(w[0], p, 1e-6);
    }
    uakd_optim_free(opt);
    uakd_net_free(net);
}

static void test_bad_config(void) {
    uakd_net *net = tiny();
    uakd_optim_config cfg = uakd_optim_adamw_default(-1);
    uakd_optim *opt = NULL;
    CHECK_FAILS(uakd_optim_new(net, &cfg, &opt), UAKD_EINVAL);
    cfg = uakd_optim_adamw_default(0);
    CHECK_OK(uakd_optim_new(net, &cfg, &opt));
    CHECK_FAILS(uakd_optim_step(opt, NAN), UAKD_EINVAL);
    uakd_optim_free(opt);
    uakd_net_free(net);
}

static void test_clip(void) {
    uakd_net *net = tiny(); /* trainable: bn.weight, bn.bias, c.weight, c.bias, s: 5 values */
    set_grads(net, 2.0f);
    CHECK_NEAR(uakd_clip_grad_norm(net, 100.0), sqrt(20.0), 1e-6); /* below: unchanged */
    CHECK(uakd_net_param_find(net, "s")->grad[0] == 2.0f);
    CHECK_NEAR(uakd_clip_grad_norm(net, 1.0), sqrt(20.0), 1e-6);
    CHECK_NEAR(uakd_net_param_find(net, "s")->grad[0], 2.0 / (sqrt(20.0) + 1e-6), 1e-7);
    CHECK(uakd_net_param_find(net, "bn.running_var")->grad[0] == 0.0f);
    uakd_net_free(net);
}

static void test_schedules(void) {
    /* 100 steps, 5% warm-up: 5 warm-up steps reaching lr_max, then linear to 0 at 100 */
    CHECK_NEAR(uakd_lr_onecycle(0, 100, 0.05, 1e-3), 0.2e-3, 1e-12);
    CHECK_NEAR(uakd_lr_onecycle(4, 100, 0.05, 1e-3), 1e-3, 1e-12);
    CHECK_NEAR(uakd_lr_onecycle(5, 100, 0.05, 1e-3), 1e-3 * 95 / 95, 1e-12);
    CHECK_NEAR(uakd_lr_onecycle(52, 100, 0.05, 1e-3), 1e-3 * 48 / 95, 1e-12);
    CHECK_NEAR(uakd_lr_onecycle(99, 100, 0.05, 1e-3), 1e-3 / 95, 1e-12);
    CHECK(uakd_lr_onecycle(100, 100, 0.05, 1e-3) == 0);
    const int64_t ms[2] = {15, 18};
    CHECK_NEAR(uakd_lr_step(14, 1e-3, 0.1, 2, ms), 1e-3, 1e-15);
    CHECK_NEAR(uakd_lr_step(15, 1e-3, 0.1, 2, ms), 1e-4, 1e-15);
    CHECK_NEAR(uakd_lr_step(19, 1e-3, 0.1, 2, ms), 1e-5, 1e-15);
}

/* End to end: conv-BN-leaky-conv learns a 3x3 box blur of random 8x8 images with AdamW, one-cycle
 * and clipping; the mean squared error on fresh images falls at least 20-fold in 150 steps. */
static double blur_loss(uakd_net *net, int out, uakd_rng *rng, int train) {
    float *x = uakd_net_out(net, 0);
    float t[8 * 64];
    for (int i = 0; i < 8 * 64; i++) x[i] = (float)uakd_rng_normal(rng);
    for (int n = 0; n < 8; n++)
        for (int r = 0; r < 8; r++)
            for (int c = 0; c < 8; c++) {
                double s = 0;
                for (int dr = -1; dr <= 1; dr++)
                    for (int dc = -1; dc <= 1; dc++)
                        if (r + dr >= 0 && r + dr < 8 && c + dc >= 0 && c + dc < 8) s += x[n * 64 + (r + dr) * 8 + c + dc];
                t[n * 64 + r * 8 + c] = (float)(s / 9);
            }
    CHECK_OK(uakd_net_forward(net, 8, train));
    const float *y = uakd_net_out(net, out);
    float *g = uakd_net_grad(net, out);
    double l = 0;
    for (int i = 0; i < 8 * 64; i++) {
        l += (y[i] - t[i]) * (y[i] - t[i]) / (8 * 64);
        g[i] = (float)(2 * (y[i] - t[i]) / (8 * 64));
    }
    return l;
}

static void test_training_reduces_loss(void) {
    uakd_net *net = NULL;
    CHECK_OK(uakd_net_new(8, &net));
    int x = uakd_net_input(net, "x", 1, 8, 8, 0);
    x = uakd_net_act(net, NULL, uakd_net_batchnorm(net, "bn", uakd_net_conv(net, "c1", x, 8, 3, 1, 1, 1, 0)),
                     UAKD_ACT_LEAKY, 0.1f);
    int out = uakd_net_conv(net, "c2", x, 1, 3, 1, 1, 1, 1);
    CHECK_OK(uakd_net_build(net, 1));
    uakd_rng rng;
    uakd_rng_seed(&rng, 4);
    CHECK_OK(uakd_net_init(net, &rng));
    uakd_optim_config cfg = uakd_optim_adamw_default(1e-4);
    uakd_optim *opt = NULL;
    CHECK_OK(uakd_optim_new(net, &cfg, &opt));
    const double before = blur_loss(net, out, &rng, 0);
    for (int step = 0; step < 150 && opt; step++) {
        uakd_net_zero_grad(net);
        blur_loss(net, out, &rng, 1);
        CHECK_OK(uakd_net_backward(net, 1, &out));
        uakd_clip_grad_norm(net, 1.0);
        CHECK_OK(uakd_optim_step(opt, uakd_lr_onecycle(step, 150, 0.05, 2e-2)));
    }
    const double after = blur_loss(net, out, &rng, 0);
    fprintf(stderr, "    blur regression: loss %.4g -> %.4g\n", before, after);
    CHECK_MSG(after < before / 20, "loss %g -> %g", before, after);
    uakd_optim_free(opt);
    uakd_net_free(net);
}

int main(void) {
    RUN(test_training_reduces_loss);
    RUN(test_adamw);
    RUN(test_sgd_nesterov);
    RUN(test_bad_config);
    RUN(test_clip);
    RUN(test_schedules);
    return TEST_END();
}
