/* The network graph: builder errors (sticky, with messages), state_dict names, flags and counts,
 * initialisation statistics, the summary, partial batches, inference-only builds and backward
 * from several outputs. */
#include "test.h"
#include "uakd/net.h"

static void test_builder_errors(void) {
    uakd_net *net = NULL;
    CHECK_OK(uakd_net_new(2, &net));
    int x = uakd_net_input(net, "x", 3, 8, 8, 0);
    CHECK(uakd_net_conv(net, "c1", x, 4, 3, 1, 1, 2, 0) < 0); /* 2 groups do not divide 3 channels */
    CHECK(uakd_net_act(net, NULL, x, UAKD_ACT_RELU, 0) < 0);   /* sticky: later calls fail too */
    CHECK_FAILS(uakd_net_build(net, 1), UAKD_EINVAL);
    CHECK(strstr(uakd_last_error(), "c1") != NULL);
    uakd_net_free(net);

    CHECK_OK(uakd_net_new(1, &net));
    x = uakd_net_input(net, "x", 3, 8, 8, 0);
    int y = uakd_net_maxpool(net, NULL, x, 2, 2, 0);
    CHECK(uakd_net_add(net, "sum", x, y) < 0);
    CHECK_FAILS(uakd_net_build(net, 1), UAKD_EINVAL);
    CHECK(strstr(uakd_last_error(), "sum") != NULL);
    uakd_net_free(net);

    CHECK_OK(uakd_net_new(1, &net));
    x = uakd_net_input(net, "x", 3, 8, 8, 0);
    CHECK(uakd_net_conv(net, NULL, x, 4, 3, 1, 1, 1, 0) < 0); /* parameters need a name */
    CHECK_FAILS(uakd_net_build(net, 1), UAKD_EINVAL);
    uakd_net_free(net);

    CHECK_OK(uakd_net_new(1, &net));
    x = uakd_net_input(net, "x", 3, 8, 8, 0);
    CHECK(uakd_net_conv(net, "a", 7, 4, 3, 1, 1, 1, 0) < 0); /* no layer 7 */
    CHECK_FAILS(uakd_net_build(net, 1), UAKD_EINVAL);
    uakd_net_free(net);
    CHECK_FAILS(uakd_net_new(0, &net), UAKD_EINVAL);
}

/* conv(3->4, 3x3, bias) + BN + leaky, then a 2nd conv with N(0, 0.01) init and bias -ln(99). */
static uakd_net *small_net(int max_batch, int training, int *out) {
    uakd_net *net = NULL;
    CHECK_OK(uakd_net_new(max_batch, &net));
    int x = uakd_net_input(net, "x", 3, 6, 6, 0);
    x = uakd_net_conv(net, "features.conv", x, 64, 3, 1, 1, 1, 1);
    x = uakd_net_batchnorm(net, "features.bn", x);
    if (!training) uakd_net_keep(net, x); /* a feature tap */
    x = uakd_net_act(net, NULL, x, UAKD_ACT_LEAKY, 0.1f);
    *out = uakd_net_conv(net, "head.cls", x, 100, 3, 1, 1, 1, 1);
    uakd_net_set_init_normal(net, *out, 0.01f, -logf(99.0f));
    CHECK_OK(uakd_net_build(net, training));
    uakd_rng rng;
    uakd_rng_seed(&rng, 5);
    CHECK_OK(uakd_net_init(net, &rng));
    return net;
}

static void test_params_and_init(void) {
    int out;
    uakd_net *net = small_net(2, 1, &out);
    static const char *names[] = {"features.conv.weight", "features.conv.bias", "features.bn.weight",
                                  "features.bn.bias", "features.bn.running_mean", "features.bn.running_var",
                                  "head.cls.weight", "head.cls.bias"};
    CHECK(uakd_net_num_params(net) == 8);
    for (int i = 0; i < 8 && i < uakd_net_num_params(net); i++) CHECK(!strcmp(uakd_net_param(net, i)->name, names[i]));
    const uakd_param *w = uakd_net_param_find(net, "features.conv.weight");
    CHECK(w->ndim == 4 && w->shape[0] == 64 && w->shape[1] == 3 && w->shape[2] == 3 && w->count == 1728);
    CHECK(w->flags == 0);
    CHECK(uakd_net_param_find(net, "features.bn.bias")->flags == UAKD_PARAM_NO_DECAY);
    CHECK(uakd_net_param_find(net, "features.bn.running_var")->flags & UAKD_PARAM_BUFFER);
    CHECK(uakd_net_trainable_count(net) == 1728 + 64 + 128 + 64 * 100 * 9 + 100);
    /* Kaiming-uniform: |w| <= 1/sqrt(27), variance bound^2/3 */
    const double bound = 1 / sqrt(27.0);
    double ss = 0, mx = 0;
    for (int64_t i = 0; i < w->count; i++) ss += (double)w->data[i] * w->data[i], mx = fmax(mx, fabs(w->data[i]));
    CHECK(mx <= bound);
    CHECK_NEAR(ss / w->count, bound * bound / 3, 0.1 * bound * bound / 3);
    const uakd_param *hw = uakd_net_param_find(net, "head.cls.weight"), *hb = uakd_net_param_find(net, "head.cls.bias");
    ss = 0;
    for (int64_t i = 0; i < hw->count; i++) ss += (double)hw->data[i] * hw->data[i];
    CHECK_NEAR(sqrt(ss / hw->count), 0.01, 0.0005);
    CHECK_NEAR(hb->data[17], -log(99.0), 1e-6);
    CHECK(uakd_net_param_find(net, "features.bn.weight")->data[3] == 1.0f);
    CHECK(uakd_net_param_find(net, "features.bn.running_var")->data[3] == 1.0f);
    CHECK(uakd_net_param_find(net, "features.bn.running_mean")->data[3] == 0.0f);
    uakd_net_free(net);
}

static void test_summary(void) {
    int out;
    uakd_net *net = small_net(1, 0, &out);
    char *s = NULL;
    CHECK_OK(uakd_net_summary(net, &s));
    CHECK(s && strstr(s, "features.conv") && strstr(s, "64x6x6") && strstr(s, "100x6x6"));
    uakd_layer_info f = uakd_net_layer(net, 1);
    CHECK(f.kind == UAKD_LAYER_CONV && f.params == 1728 + 64);
    CHECK_NEAR(f.flops, 2.0 * 64 * 36 * 27 + 64 * 36, 0.5);
    CHECK(s && strstr(s, "total: 5 layers"));
    free(s);
    uakd_net_free(net);
}

/* An inference build gives the same outputs as a training build in inference mode, for any batch
 * size up to max_batch, and refuses training. */
static void test_inference_and_partial_batch(void) {
    int out, out2;
    uakd_net *a = small_net(3, 1, &out), *b = small_net(3, 0, &out2);
    uakd_rng rng;
    uakd_rng_seed(&rng, 9);
    float *xa = uakd_net_out(a, 0), *xb = uakd_net_out(b, 0);
    for (int i = 0; i < 3 * 108; i++) xa[i] = xb[i] = (float)uakd_rng_normal(&rng);
    CHECK_OK(uakd_net_forward(a, 3, 0));
    CHECK_OK(uakd_net_forward(b, 1, 0));
    double e = 0;
    for (int i = 0; i < 3600; i++) e = fmax(e, fabs(uakd_net_out(a, out)[i] - uakd_net_out(b, out2)[i]));
    CHECK(e < 1e-6);
    /* the kept tap (batch norm, id 2) survives; the conv output's buffer was reused by the act */
    e = 0;
    for (int i = 0; i < 64 * 36; i++) e = fmax(e, fabs(uakd_net_out(a, 2)[i] - uakd_net_out(b, 2)[i]));
    CHECK(e < 1e-6);
    CHECK(uakd_net_out(b, 1) == uakd_net_out(b, 3) && uakd_net_out(a, 1) != uakd_net_out(a, 3));
    CHECK_FAILS(uakd_net_forward(b, 1, 1), UAKD_EINVAL);
    CHECK_FAILS(uakd_net_backward(b, 1, &out2), UAKD_EINVAL);
    CHECK_FAILS(uakd_net_forward(b, 4, 0), UAKD_EINVAL);
    CHECK(uakd_net_grad(b, out2) == NULL);
    uakd_net_free(a);
    uakd_net_free(b);
}

/* Seeding two outputs at once equals two separate backward calls (parameter grads accumulate). */
static void test_multi_output_backward(void) {
    uakd_net *net = NULL;
    CHECK_OK(uakd_net_new(2, &net));
    int x = uakd_net_input(net, "x", 2, 4, 4, 0);
    int a = uakd_net_conv(net, "a", x, 3, 3, 1, 1, 1, 1);
    int b = uakd_net_conv(net, "b", uakd_net_act(net, NULL, a, UAKD_ACT_SILU, 0), 2, 1, 1, 0, 1, 0);
    CHECK_OK(uakd_net_build(net, 1));
    uakd_rng rng;
    uakd_rng_seed(&rng, 3);
    CHECK_OK(uakd_net_init(net, &rng));
    for (int i = 0; i < 64; i++) uakd_net_out(net, x)[i] = (float)uakd_rng_normal(&rng);
    float ga[96], gb[64];
    for (int i = 0; i < 96; i++) ga[i] = (float)uakd_rng_normal(&rng);
    for (int i = 0; i < 64; i++) gb[i] = (float)uakd_rng_normal(&rng);
    int64_t np;
    uakd_net_grads(net, &np);
    float *both = malloc(sizeof(float) * np);
    CHECK_OK(uakd_net_forward(net, 2, 1));
    uakd_net_zero_grad(net);
    memcpy(uakd_net_grad(net, a), ga, sizeof ga);
    memcpy(uakd_net_grad(net, b), gb, sizeof gb);
    int ids[2] = {a, b};
    CHECK_OK(uakd_net_backward(net, 2, ids));
    memcpy(both, uakd_net_grads(net, NULL), sizeof(float) * np);
    uakd_net_zero_grad(net);
    memcpy(uakd_net_grad(net, a), ga, sizeof ga);
    CHECK_OK(uakd_net_backward(net, 1, &a));
    memcpy(uakd_net_grad(net, b), gb, sizeof gb);
    CHECK_OK(uakd_net_backward(net, 1, &b));
    double e = 0;
    for (int64_t i = 0; i < np; i++) e = fmax(e, fabs(both[i] - uakd_net_grads(net, NULL)[i]));
    CHECK(e < 1e-5);
    free(both);
    uakd_net_free(net);
}

/* set_norm: eps 0.5 and momentum 0.5 on x = {1, 2, 3, 6} (mean 3, biased var 3.5, unbiased 14/3). */
static void test_norm_settings(void) {
    uakd_net *net = NULL;
    CHECK_OK(uakd_net_new(2, &net));
    int x = uakd_net_input(net, "x", 1, 1, 2, 0), bn = uakd_net_batchnorm(net, "bn", x);
    CHECK(uakd_net_set_norm(net, bn, 0.5f, 0.5f) == bn);
    CHECK_OK(uakd_net_build(net, 1));
    uakd_rng rng;
    uakd_rng_seed(&rng, 1);
    CHECK_OK(uakd_net_init(net, &rng));
    const float in[4] = {1, 2, 3, 6};
    memcpy(uakd_net_out(net, x), in, sizeof in);
    CHECK_OK(uakd_net_forward(net, 2, 1));
    CHECK_NEAR(uakd_net_out(net, bn)[3], 3 / sqrt(3.5 + 0.5), 1e-6);
    CHECK_NEAR(uakd_net_param_find(net, "bn.running_mean")->data[0], 1.5, 1e-6);
    CHECK_NEAR(uakd_net_param_find(net, "bn.running_var")->data[0], 0.5 + 0.5 * 14.0 / 3.0, 1e-6);
    uakd_net_free(net);
    CHECK_OK(uakd_net_new(1, &net));
    x = uakd_net_input(net, "x", 2, 1, 1, 0);
    CHECK(uakd_net_set_norm(net, x, 0.1f, 0.1f) < 0); /* not a norm layer */
    CHECK_FAILS(uakd_net_build(net, 0), UAKD_EINVAL);
    uakd_net_free(net);
}

int main(void) {
    RUN(test_norm_settings);
    RUN(test_builder_errors);
    RUN(test_params_and_init);
    RUN(test_summary);
    RUN(test_inference_and_partial_batch);
    RUN(test_multi_output_backward);
    return TEST_END();
}
