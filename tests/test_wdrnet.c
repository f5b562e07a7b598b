/* Tests of the WDRNet assembly: whole-model parameter counts of models.md for the three variants
 * and C = 1, 15; levels, grids and map shapes; the head initialisation; and that every level's
 * outputs are the one shared head applied to that level's FPN map (checked against a separate
 * network holding a copy of the head), with the scale per level. */
#include "test.h"

#include <math.h>
#include <string.h>

#include "uakd/net.h"
#include "uakd/rng.h"
#include "uakd/wdrnet.h"

static int64_t count_of(const char *variant, int classes) {
    uakd_wdrnet_config cfg;
    uakd_wdrnet_config_default(&cfg, variant);
    cfg.classes = classes;
    cfg.input_size = 64;
    uakd_wdrnet *m = NULL;
    CHECK_OK(uakd_wdrnet_new(&cfg, &m));
    if (!m) return -1;
    const int64_t n = uakd_net_trainable_count(uakd_wdrnet_net(m));
    uakd_wdrnet_free(m);
    return n;
}

/* models.md: C = 1: 50.5 M, 7.8 M, 2.0 M; C = 15: 51.1 M, 8.4 M, 2.2 M. Exact values from the
 * structure: backbone + FPN (laterals, outputs, 2 extra convs) + head (2 x 4 x (conv + GN),
 * 3x3 convs to C and 16 C, one scale per level). */
static void test_parameter_counts(void) {
    const int64_t d1 = count_of("darknet53", 1), d15 = count_of("darknet53", 15);
    const int64_t t1 = count_of("darknet-tiny", 1), t15 = count_of("darknet-tiny", 15);
    const int64_t h1 = count_of("darknet-tiny-h", 1), h15 = count_of("darknet-tiny-h", 15);
    /* DarkNet-53: 40584928 + FPN 5179392 + head 4724736 + 39185 C + 5 */
    CHECK(d1 == 40584928 + 5179392 + 4724736 + 39185 + 5);
    CHECK(d15 == d1 + 14 * 39185);
    /* Tiny: 913104 + FPN 2131456 + head 4724736 + 39185 C + 4 */
    CHECK(t1 == 913104 + 2131456 + 4724736 + 39185 + 4);
    CHECK(t15 == t1 + 14 * 39185);
    /* Tiny-H (F = 128): 229480 + FPN 533248 + head 1182720 + 19601 C + 4 */
    CHECK(h1 == 229480 + 533248 + 1182720 + 19601 + 4);
    CHECK(h15 == h1 + 14 * 19601);
    /* as printed, one decimal of millions */
    CHECK(llround(d1 / 1e5) == 505 && llround(t1 / 1e5) == 78 && llround(h1 / 1e5) == 20);
    CHECK(llround(d15 / 1e5) == 511 && llround(t15 / 1e5) == 84 && llround(h15 / 1e5) == 22);
}

static uakd_wdrnet *small_model(int training, int max_batch) {
    uakd_wdrnet_config cfg;
    uakd_wdrnet_config_default(&cfg, "darknet-tiny-h");
    cfg.classes = 2, cfg.width = 32, cfg.tower_convs = 2, cfg.input_size = 64;
    cfg.training = training, cfg.max_batch = max_batch;
    uakd_wdrnet *m = NULL;
    CHECK_OK(uakd_wdrnet_new(&cfg, &m));
    return m;
}

static void test_levels_and_init(void) {
    uakd_wdrnet *m = small_model(0, 2);
    if (!m) return;
    const uakd_wdr_levels *lv = uakd_wdrnet_levels(m);
    CHECK(lv->n == 4);
    const int grid[4] = {8, 4, 2, 1};
    for (int l = 0; l < 4; l++) {
        int c, h, w;
        CHECK(lv->gw[l] == grid[l] && lv->gh[l] == grid[l] && lv->stride[l] == 8 << l);
        uakd_net_shape(uakd_wdrnet_net(m), uakd_wdrnet_logits_id(m, l), &c, &h, &w);
        CHECK(c == 2 && h == grid[l] && w == grid[l]);
        uakd_net_shape(uakd_wdrnet_net(m), uakd_wdrnet_offsets_id(m, l), &c, &h, &w);
        CHECK(c == 32 && h == grid[l]);
        uakd_net_shape(uakd_wdrnet_net(m), uakd_wdrnet_feature_id(m, l), &c, &h, &w);
        CHECK(c == 32 && h == grid[l]);
    }
    CHECK(uakd_wdrnet_logits_id(m, 4) == -1);
    uakd_rng rng;
    uakd_rng_seed(&rng, 3);
    CHECK_OK(uakd_wdrnet_init(m, &rng));
    uakd_net *net = uakd_wdrnet_net(m);
    const uakd_param *b = uakd_net_param_find(net, "head.cls_logits.bias");
    CHECK(b && b->data[0] == (float)-log(99.0) && b->data[1] == (float)-log(99.0));
    const uakd_param *w = uakd_net_param_find(net, "head.pose_tower.3.weight");
    double s2 = 0;
    for (int64_t i = 0; w && i < w->count; i++) s2 += (double)w->data[i] * w->data[i];
    CHECK(w && fabs(sqrt(s2 / (double)w->count) - 0.01) < 0.0005);
    CHECK(uakd_net_param_find(net, "head.pose_tower.4.weight") != NULL); /* GroupNorm of unit 2 */
    CHECK(uakd_net_param_find(net, "head.scales.3.scale")->data[0] == 1.0f);
    CHECK(uakd_net_param_find(net, "neck.extra.1.weight") != NULL);
    CHECK(uakd_net_param_find(net, "backbone.stage5.unit5.bn.running_var") != NULL);
    uakd_wdrnet_free(m);
    /* bad settings */
    uakd_wdrnet_config cfg;
    uakd_wdrnet_config_default(&cfg, "darknet-tiny-h");
    cfg.input_size = 72; /* s8 map 9x9, s16 4x4 */
    CHECK_FAILS(uakd_wdrnet_new(&cfg, &m), UAKD_EINVAL);
    CHECK(strstr(uakd_last_error(), "multiple of the coarsest stride") != NULL);
    cfg.variant = "darknet-60";
    CHECK_FAILS(uakd_wdrnet_new(&cfg, &m), UAKD_EINVAL);
}

/* The head copied into its own network, run on a level's FPN map. */
static void check_level_outputs(uakd_wdrnet *m, int level, int n) {
    uakd_net *net = uakd_wdrnet_net(m);
    int F, h, w;
    uakd_net_shape(net, uakd_wdrnet_feature_id(m, level), &F, &h, &w);
    uakd_net *hn;
    CHECK_OK(uakd_net_new(n, &hn));
    int towers[2];
    const int x = uakd_net_input(hn, "p", F, h, w, 0);
    const char *names[2] = {"cls_tower", "pose_tower"};
    for (int t = 0; t < 2; t++) {
        int y = x;
        for (int k = 0; k < 2; k++) {
            char cn[64], gn[64];
            snprintf(cn, sizeof cn, "head.%s.%d", names[t], 3 * k);
            snprintf(gn, sizeof gn, "head.%s.%d", names[t], 3 * k + 1);
            y = uakd_net_act(hn, NULL, uakd_net_groupnorm(hn, gn, uakd_net_conv(hn, cn, y, F, 3, 1, 1, 1, 1), 32),
                             UAKD_ACT_RELU, 0);
        }
        towers[t] = y;
    }
    const int lg = uakd_net_conv(hn, "head.cls_logits", towers[0], 2, 3, 1, 1, 1, 1);
    const int of = uakd_net_conv(hn, "head.pose_pred", towers[1], 32, 3, 1, 1, 1, 1);
    CHECK_OK(uakd_net_build(hn, 0));
    for (int i = 0; i < uakd_net_num_params(hn); i++) {
        const uakd_param *p = uakd_net_param(hn, i), *q = uakd_net_param_find(net, p->name);
        CHECK(q && q->count == p->count);
        if (q) memcpy(p->data, q->data, sizeof(float) * (size_t)p->count);
    }
    const size_t fsz = (size_t)n * F * h * w;
    memcpy(uakd_net_out(hn, x), uakd_net_out(net, uakd_wdrnet_feature_id(m, level)), sizeof(float) * fsz);
    CHECK_OK(uakd_net_forward(hn, n, 0));
    char sn[64];
    snprintf(sn, sizeof sn, "head.scales.%d.scale", level);
    const float s = uakd_net_param_find(net, sn)->data[0];
    const float *a = uakd_net_out(net, uakd_wdrnet_logits_id(m, level)), *b = uakd_net_out(hn, lg);
    double worst = 0;
    for (size_t i = 0; i < (size_t)n * 2 * h * w; i++) worst = fmax(worst, fabs(a[i] - b[i]));
    a = uakd_net_out(net, uakd_wdrnet_offsets_id(m, level)), b = uakd_net_out(hn, of);
    for (size_t i = 0; i < (size_t)n * 32 * h * w; i++) worst = fmax(worst, fabs(a[i] - s * b[i]));
    CHECK_MSG(worst == 0, "level %d: head outputs differ from the copied head by %g", level, worst);
    uakd_net_free(hn);
}

static void test_shared_head(void) {
    uakd_wdrnet *m = small_model(0, 2);
    if (!m) return;
    uakd_rng rng;
    uakd_rng_seed(&rng, 11);
    CHECK_OK(uakd_wdrnet_init(m, &rng));
    uakd_net *net = uakd_wdrnet_net(m);
    /* distinct per-level scales and non-trivial GroupNorm affine parameters */
    for (int l = 0; l < 4; l++) {
        char sn[64];
        snprintf(sn, sizeof sn, "head.scales.%d.scale", l);
        uakd_net_param_find(net, sn)->data[0] = 0.5f + 0.25f * (float)l;
    }
    const uakd_param *g = uakd_net_param_find(net, "head.cls_tower.1.weight");
    for (int i = 0; i < g->count; i++) g->data[i] = 1.0f + 0.01f * (float)i;
    for (int i = 0; i < 2 * 3 * 64 * 64; i++) uakd_net_out(net, uakd_wdrnet_input(m))[i] = (float)uakd_rng_normal(&rng);
    CHECK_OK(uakd_wdrnet_forward(m, 2, 0));
    for (int l = 0; l < 4; l++) check_level_outputs(m, l, 2);
    uakd_wdr_maps maps;
    uakd_wdrnet_maps(m, 2, &maps);
    CHECK(maps.n == 2 && maps.c == 2 && maps.logits[3] == uakd_net_out(net, uakd_wdrnet_logits_id(m, 3)));
    uakd_wdrnet_free(m);
}

/* `uakd netinfo --wdrnet` prints the engine summary with the exact total (needs UAKD_CLI). */
static void test_cli_netinfo(void) {
    char cmd[1024], line[512];
    snprintf(cmd, sizeof cmd, "%s netinfo --wdrnet darknet-tiny-h --classes 15 --size 128 2>&1", getenv("UAKD_CLI"));
    FILE *f = popen(cmd, "r");
    int total = 0, levels = 0, shared = 0;
    while (f && fgets(line, sizeof line, f)) {
        total |= strstr(line, "total: 167 layers, 2239467 trainable parameters") != NULL;
        levels |= strstr(line, "4 levels (strides 8 16 32 64), 2.2 M parameters") != NULL;
        shared |= strstr(line, "head.pose_pred@3") != NULL && strstr(line, "240x2x2") != NULL;
    }
    CHECK(f && pclose(f) == 0);
    CHECK(total && levels && shared);
    snprintf(cmd, sizeof cmd, "%s netinfo --wdrnet darknet-99 >/dev/null 2>&1", getenv("UAKD_CLI"));
    CHECK(system(cmd) != 0);
}

int main(void) {
    RUN(test_parameter_counts);
    RUN(test_levels_and_init);
    RUN(test_shared_head);
    if (getenv("UAKD_CLI")) RUN(test_cli_netinfo);
    else SKIP(test_cli_netinfo, "UAKD_CLI not set (run through make test)");
    return TEST_END();
}
