/* Tests of network description -> engine network: the shipped backbones build with exactly the
 * description's parameter and buffer counts and state_dict names; every section type gives the
 * same output as the same network written with the engine's builder calls; engine refusals name
 * the description layer; shared parameters (uakd_net_shared) get the summed gradient. */
#include "test.h"

#include <math.h>
#include <string.h>

#include "uakd/net.h"
#include "uakd/netbuild.h"
#include "uakd/netdesc.h"
#include "uakd/rng.h"

static void check_backbone(const char *path, int64_t params) {
    uakd_netdesc *d;
    CHECK_OK(uakd_netdesc_load(path, &d));
    if (!d) return;
    CHECK_OK(uakd_netdesc_set_input_size(d, 64, 64));
    uakd_net *net;
    CHECK_OK(uakd_net_new(1, &net));
    const int in = uakd_net_input(net, "image", 3, 64, 64, 0);
    int *ids = malloc(sizeof(int) * d->n_layers);
    CHECK_OK(uakd_netbuild_append(net, d, in, "backbone.", ids));
    CHECK_OK(uakd_net_build(net, 0));
    CHECK(uakd_net_trainable_count(net) == params);
    CHECK(uakd_net_trainable_count(net) == d->total_params);
    int64_t buffers = 0;
    for (int i = 0; i < uakd_net_num_params(net); i++)
        if (uakd_net_param(net, i)->flags & UAKD_PARAM_BUFFER) buffers += uakd_net_param(net, i)->count;
    CHECK(buffers == d->total_buffers);
    int c, h, w;
    const int s8 = uakd_netbuild_tap(d, ids, "s8");
    CHECK(s8 >= 0 && uakd_net_shape(net, s8, &c, &h, &w) && h == 8 && w == 8);
    CHECK(uakd_netbuild_tap(d, ids, "nope") == -1);
    free(ids);
    uakd_net_free(net);
    uakd_netdesc_free(d);
}

/* models.md: 40.58 M, 0.913 M, 0.229 M. */
static void test_backbone_counts(void) {
    check_backbone("cfg/darknet53.cfg", 40584928);
    check_backbone("cfg/darknet-tiny.cfg", 913104);
    check_backbone("cfg/darknet-tiny-h.cfg", 229480);
}

static void test_state_dict_names(void) {
    uakd_netdesc *d;
    CHECK_OK(uakd_netdesc_load("cfg/darknet-tiny-h.cfg", &d));
    if (!d) return;
    uakd_net *net;
    CHECK_OK(uakd_net_new(1, &net));
    const int in = uakd_net_input(net, "image", 3, 256, 256, 0);
    CHECK_OK(uakd_netbuild_append(net, d, in, "backbone.", NULL));
    CHECK_OK(uakd_net_build(net, 0));
    const uakd_param *p = uakd_net_param_find(net, "backbone.stage3.unit2.conv.weight");
    CHECK(p && p->ndim == 4 && p->shape[0] == 64 && p->shape[1] == 8 && p->shape[2] == 3 && p->shape[3] == 3);
    p = uakd_net_param_find(net, "backbone.stage5.unit5.bn.running_var");
    CHECK(p && p->count == 64 && (p->flags & UAKD_PARAM_BUFFER));
    CHECK(uakd_net_param_find(net, "backbone.stage1.unit1.bn.weight") != NULL);
    CHECK(uakd_net_param_find(net, "backbone.stage1.unit1.conv.bias") == NULL);
    uakd_net_free(net);
    uakd_netdesc_free(d);
}

/* Every section type, against the same graph written with builder calls. */
static const char *ALL =
    "[net]\nwidth=8\nheight=6\nchannels=3\n"
    "[conv]\nname=a\nfilters=8\nsize=3\npad=1\nbatch_normalize=1\nactivation=leaky\n" /* 0 */
    "[conv]\nname=b\nfilters=8\nsize=1\nnorm=group\nnorm_groups=4\nactivation=silu\n" /* 1 */
    "[shortcut]\nfrom=-2\nactivation=relu\n"                                         /* 2 */
    "[maxpool]\nsize=2\nstride=2\n"                                                  /* 3: 8x3x4 */
    "[upsample]\nstride=2\n"                                                         /* 4: 8x6x8 */
    "[route]\nlayers=-1,0\n"                                                         /* 5: 16x6x8 */
    "[conv]\nname=c\nfilters=4\nsize=3\nstride=2\npad=1\nbias=1\n"                   /* 6: 4x3x4 */
    "[activation]\nactivation=sigmoid\n"                                             /* 7 */
    "[avgpool]\n"                                                                    /* 8 */
    "[scale_channels]\nfrom=-2\n"                                                    /* 9 */
    "[output]\nname=out\n";                                                          /* 10 */

static void test_all_sections(void) {
    uakd_netdesc *d;
    CHECK_OK(uakd_netdesc_parse(ALL, strlen(ALL), "all", &d));
    if (!d) return;
    uakd_net *a, *b;
    CHECK_OK(uakd_net_new(2, &a));
    CHECK_OK(uakd_net_new(2, &b));
    int ids[11];
    const int ia = uakd_net_input(a, "x", 3, 6, 8, 0);
    CHECK_OK(uakd_netbuild_append(a, d, ia, NULL, ids));
    /* by hand */
    const int ib = uakd_net_input(b, "x", 3, 6, 8, 0);
    int l0 = uakd_net_act(b, NULL, uakd_net_batchnorm(b, "a.bn", uakd_net_conv(b, "a.conv", ib, 8, 3, 1, 1, 1, 0)),
                          UAKD_ACT_LEAKY, 0.1f);
    int l1 = uakd_net_act(b, NULL, uakd_net_groupnorm(b, "b.gn", uakd_net_conv(b, "b.conv", l0, 8, 1, 1, 0, 1, 0), 4),
                          UAKD_ACT_SILU, 0);
    int l2 = uakd_net_act(b, NULL, uakd_net_add(b, NULL, l1, l0), UAKD_ACT_RELU, 0);
    int l4 = uakd_net_upsample2(b, NULL, uakd_net_maxpool(b, NULL, l2, 2, 2, 0));
    int cat[2] = {l4, l0};
    int l6 = uakd_net_conv(b, "c.conv", uakd_net_concat(b, NULL, 2, cat), 4, 3, 2, 1, 1, 1);
    int l7 = uakd_net_act(b, NULL, l6, UAKD_ACT_SIGMOID, 0);
    int l9 = uakd_net_cmul(b, NULL, l7, uakd_net_gap(b, NULL, l7)); /* from=-2: the sigmoid map */
    CHECK_OK(uakd_net_build(a, 1));
    CHECK_OK(uakd_net_build(b, 1));
    CHECK(ids[10] == ids[9] && uakd_netbuild_tap(d, ids, "out") == ids[9]);
    CHECK(uakd_net_trainable_count(a) == d->total_params && uakd_net_trainable_count(b) == d->total_params);
    CHECK(uakd_net_num_params(a) == uakd_net_num_params(b));
    uakd_rng rng;
    uakd_rng_seed(&rng, 5);
    CHECK_OK(uakd_net_init(a, &rng));
    int64_t na, nb;
    float *pa = uakd_net_params(a, &na), *pb = uakd_net_params(b, &nb);
    CHECK(na == nb);
    for (int64_t i = 0; i < na; i++) pa[i] += (float)(0.2 * uakd_rng_normal(&rng)); /* non-trivial BN/GN */
    memcpy(pb, pa, sizeof(float) * (size_t)na);
    for (int i = 0; i < 2 * 3 * 6 * 8; i++) uakd_net_out(a, ia)[i] = uakd_net_out(b, ib)[i] = (float)uakd_rng_normal(&rng);
    CHECK_OK(uakd_net_forward(a, 2, 1));
    CHECK_OK(uakd_net_forward(b, 2, 1));
    CHECK(memcmp(uakd_net_out(a, ids[9]), uakd_net_out(b, l9), sizeof(float) * 2 * 4 * 3 * 4) == 0);
    int c, h, w;
    uakd_net_shape(a, ids[9], &c, &h, &w);
    CHECK(c == 4 && h == 3 && w == 4);
    uakd_net_free(a);
    uakd_net_free(b);
    uakd_netdesc_free(d);
}

static void test_refusals(void) {
    const char *text = "[net]\nwidth=8\nheight=8\nchannels=3\n[conv]\nname=a\nfilters=4\n[upsample]\nstride=3\n";
    uakd_netdesc *d;
    CHECK_OK(uakd_netdesc_parse(text, strlen(text), "up3", &d));
    if (!d) return;
    uakd_net *net;
    CHECK_OK(uakd_net_new(1, &net));
    int in = uakd_net_input(net, "x", 3, 8, 8, 0);
    CHECK_FAILS(uakd_netbuild_append(net, d, in, NULL, NULL), UAKD_EINVAL);
    CHECK(strstr(uakd_last_error(), "layer 1 [upsample] (line 8)") != NULL);
    uakd_net_free(net);
    CHECK_OK(uakd_net_new(1, &net));
    in = uakd_net_input(net, "x", 3, 8, 4, 0);
    CHECK_FAILS(uakd_netbuild_append(net, d, in, NULL, NULL), UAKD_EINVAL);
    CHECK(strstr(uakd_last_error(), "3x8x4") != NULL);
    uakd_net_free(net);
    uakd_netdesc_free(d);
}

/* y_i = conv(x_i) for two inputs with one shared conv; d(sum y1 + 2 y2)/dW = dW(x1) + 2 dW(x2), which
 * is checked against central differences in double precision of that scalar. */
static double shared_loss(uakd_net *net, int y1, int y2) {
    uakd_net_forward(net, 1, 1);
    double s = 0;
    int64_t n = uakd_net_shape(net, y1, NULL, NULL, NULL);
    for (int64_t i = 0; i < n; i++) s += uakd_net_out(net, y1)[i] * (1.0 + 0.1 * (double)i);
    n = uakd_net_shape(net, y2, NULL, NULL, NULL);
    for (int64_t i = 0; i < n; i++) s += 2.0 * uakd_net_out(net, y2)[i] * (1.0 - 0.05 * (double)i);
    return s;
}

static void test_shared_parameters(void) {
    uakd_net *net;
    /* refusals: an input has nothing to share; the input must have the source's channels */
    CHECK_OK(uakd_net_new(1, &net));
    int x1 = uakd_net_input(net, "x1", 2, 4, 4, 0), x3 = uakd_net_input(net, "x3", 3, 4, 4, 0);
    CHECK(uakd_net_shared(net, "bad", x3, x1) == -1);
    CHECK_FAILS(uakd_net_build(net, 1), UAKD_EINVAL);
    CHECK(strstr(uakd_last_error(), "not conv/batchnorm/groupnorm/scale") != NULL);
    uakd_net_free(net);
    CHECK_OK(uakd_net_new(1, &net));
    x1 = uakd_net_input(net, "x1", 2, 4, 4, 0), x3 = uakd_net_input(net, "x3", 3, 4, 4, 0);
    CHECK(uakd_net_shared(net, "bad", x3, uakd_net_conv(net, "conv", x1, 4, 3, 1, 1, 1, 1)) == -1);
    CHECK_FAILS(uakd_net_build(net, 1), UAKD_EINVAL);
    CHECK(strstr(uakd_last_error(), "input has 3 channels, source 'conv' reads 2") != NULL);
    uakd_net_free(net);

    CHECK_OK(uakd_net_new(1, &net));
    const int a1 = uakd_net_input(net, "x1", 2, 4, 4, 0), a2 = uakd_net_input(net, "x2", 2, 2, 2, 0);
    const int k1 = uakd_net_conv(net, "conv", a1, 4, 3, 1, 1, 1, 1);
    const int n1 = uakd_net_groupnorm(net, "gn", k1, 2);
    const int k2 = uakd_net_shared(net, "conv@2", a2, k1);
    const int n2 = uakd_net_shared(net, "gn@2", k2, n1);
    CHECK_OK(uakd_net_build(net, 1));
    CHECK(uakd_net_num_params(net) == 4 && uakd_net_trainable_count(net) == 4 * 2 * 9 + 4 + 8);
    CHECK(uakd_net_layer(net, k2).params == 0 && uakd_net_layer(net, k1).params == 76);
    int c, h, w;
    uakd_net_shape(net, n2, &c, &h, &w);
    CHECK(c == 4 && h == 2 && w == 2);
    uakd_rng rng;
    uakd_rng_seed(&rng, 9);
    CHECK_OK(uakd_net_init(net, &rng));
    for (int i = 0; i < 32; i++) uakd_net_out(net, a1)[i] = (float)uakd_rng_normal(&rng);
    for (int i = 0; i < 8; i++) uakd_net_out(net, a2)[i] = (float)uakd_rng_normal(&rng);
    const uakd_param *gw = uakd_net_param_find(net, "gn.weight");
    for (int i = 0; i < 4; i++) gw->data[i] = 1.0f + 0.3f * (float)i;
    shared_loss(net, n1, n2);
    for (int i = 0; i < 64; i++) uakd_net_grad(net, n1)[i] = (float)(1.0 + 0.1 * i);
    for (int i = 0; i < 16; i++) uakd_net_grad(net, n2)[i] = (float)(2.0 * (1.0 - 0.05 * i));
    uakd_net_zero_grad(net);
    int seeds[2] = {n1, n2};
    CHECK_OK(uakd_net_backward(net, 2, seeds));
    const uakd_param *cw = uakd_net_param_find(net, "conv.weight"), *gb = uakd_net_param_find(net, "gn.bias");
    const uakd_param *check[3] = {cw, gw, gb};
    const int at[3] = {7, 2, 1};
    double worst = 0;
    for (int k = 0; k < 3; k++) {
        float *v = &check[k]->data[at[k]];
        const float keep = *v, e = 1e-2f;
        *v = keep + e;
        const double up = shared_loss(net, n1, n2);
        *v = keep - e;
        const double down = shared_loss(net, n1, n2);
        *v = keep;
        const double fd = (up - down) / (2.0 * e), g = check[k]->grad[at[k]];
        const double rel = fabs(fd - g) / (fabs(fd) + 1e-3);
        if (rel > worst) worst = rel;
    }
    CHECK_MSG(worst < 2e-2, "shared-parameter gradient vs central difference: relative error %g", worst);
    uakd_net_free(net);
}

int main(void) {
    RUN(test_backbone_counts);
    RUN(test_state_dict_names);
    RUN(test_all_sections);
    RUN(test_refusals);
    RUN(test_shared_parameters);
    return TEST_END();
}
