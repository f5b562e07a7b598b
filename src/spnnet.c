/* SPNv2 networks: EfficientNet-B(phi) backbone (compound-scaled B0 stage table, MBConv with
 * squeeze-and-excitation and, in training, drop-connect y = x + m branch, m in {0, 1/p} per
 * image), BiFPN over P2..P7 with fast normalised fusion, and the P2 heatmap head, as uakd_net
 * graphs. Channels c -> make_divisible(c * width, 8), repeats r ->
 * ceil(r * depth); the layouts and names are described in uakd/spnnet.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uakd/spnnet.h"

#define NAME_LEN 160

/* B0 stages: expand ratio, kernel, stride, output channels, repeats */
static const int b0_stages[7][5] = {{1, 3, 1, 16, 1}, {6, 3, 2, 24, 2}, {6, 5, 2, 40, 2}, {6, 3, 2, 80, 3},
                                    {6, 5, 1, 112, 3}, {6, 5, 2, 192, 4}, {6, 3, 1, 320, 1}};

int uakd_spnnet_round_channels(double v) {
    int r = (int)(v + 4) / 8 * 8;
    if (r < 8) r = 8;
    if (r < 0.9 * v) r += 8;
    return r;
}

uakd_status uakd_spnnet_config_phi(int phi, uakd_spnnet_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->keypoints = 11, cfg->in_w = 768, cfg->in_h = 512, cfg->drop_connect = 0.2;
    switch (phi) {
    case 0: cfg->width_mult = 1.0, cfg->depth_mult = 1.0, cfg->bifpn_width = 64, cfg->bifpn_layers = 3, cfg->head_depth = 3; break;
    case 3: cfg->width_mult = 1.2, cfg->depth_mult = 1.4, cfg->bifpn_width = 160, cfg->bifpn_layers = 6, cfg->head_depth = 4; break;
    case 6:
        cfg->width_mult = 1.8, cfg->depth_mult = 2.6, cfg->bifpn_width = 384, cfg->bifpn_layers = 8, cfg->head_depth = 5;
        cfg->group_norm = 1, cfg->large_backbone = 1;
        break;
    default: return uakd_fail(UAKD_EINVAL, "uakd_spnnet_config_phi: phi %d not supported (0, 3 or 6)", phi);
    }
    return UAKD_OK;
}

static int norm(uakd_net *net, const char *name, int in, const uakd_spnnet_norm *nm) {
    int c = 0;
    uakd_net_shape(net, in, &c, NULL, NULL);
    int id;
    if (nm->group_size > 0) {
        /* channels not a multiple of the group size: 0 groups, a builder error naming the layer */
        id = uakd_net_groupnorm(net, name, in, c % nm->group_size ? 0 : c / nm->group_size);
        return uakd_net_set_norm(net, id, nm->eps, 0.1f);
    }
    id = uakd_net_batchnorm(net, name, in);
    return uakd_net_set_norm(net, id, nm->eps, nm->momentum);
}

static const char *cat(char *buf, const char *prefix, const char *suffix) {
    snprintf(buf, NAME_LEN, "%s.%s", prefix, suffix);
    return buf;
}

int uakd_spnnet_mbconv(uakd_net *net, const char *prefix, int in, int expand, int k, int stride, int c_out,
                       const uakd_spnnet_norm *nm, int drop_connect) {
    char b[NAME_LEN];
    int c_in = 0;
    uakd_net_shape(net, in, &c_in, NULL, NULL);
    const int c_mid = c_in * expand, c_se = c_in / 4 > 1 ? c_in / 4 : 1;
    int x = in, j = 0;
    if (expand != 1) {
        x = uakd_net_conv(net, cat(b, prefix, "block.0.0"), x, c_mid, 1, 1, 0, 1, 0);
        x = norm(net, cat(b, prefix, "block.0.1"), x, nm);
        x = uakd_net_act(net, NULL, x, UAKD_ACT_SILU, 0);
        j = 1;
    }
    char s[64];
    snprintf(s, sizeof s, "block.%d.0", j);
    x = uakd_net_conv(net, cat(b, prefix, s), x, c_mid, k, stride, k / 2, c_mid, 0);
    snprintf(s, sizeof s, "block.%d.1", j);
    x = norm(net, cat(b, prefix, s), x, nm);
    x = uakd_net_act(net, NULL, x, UAKD_ACT_SILU, 0);
    /* squeeze-and-excitation */
    int g = uakd_net_gap(net, NULL, x);
    snprintf(s, sizeof s, "block.%d.fc1", j + 1);
    g = uakd_net_conv(net, cat(b, prefix, s), g, c_se, 1, 1, 0, 1, 1);
    g = uakd_net_act(net, NULL, g, UAKD_ACT_SILU, 0);
    snprintf(s, sizeof s, "block.%d.fc2", j + 1);
    g = uakd_net_conv(net, cat(b, prefix, s), g, c_mid, 1, 1, 0, 1, 1);
    g = uakd_net_act(net, NULL, g, UAKD_ACT_SIGMOID, 0);
    x = uakd_net_cmul(net, NULL, x, g);
    snprintf(s, sizeof s, "block.%d.0", j + 2);
    x = uakd_net_conv(net, cat(b, prefix, s), x, c_out, 1, 1, 0, 1, 0);
    snprintf(s, sizeof s, "block.%d.1", j + 2);
    x = norm(net, cat(b, prefix, s), x, nm);
    if (stride != 1 || c_in != c_out) return x;
    if (drop_connect) x = uakd_net_cmul(net, NULL, x, uakd_net_input(net, cat(b, prefix, "drop_connect"), c_out, 1, 1, 0));
    return uakd_net_add(net, NULL, x, in);
}

/* sepconv block `prefix.name`: depthwise 3x3 (no bias), pointwise 1x1 (bias), norm */
static int sep_block(uakd_net *net, const char *prefix, const char *name, int in, const uakd_spnnet_norm *nm) {
    char b[NAME_LEN];
    int c = 0;
    uakd_net_shape(net, in, &c, NULL, NULL);
    snprintf(b, sizeof b, "%s.%s.conv.conv_dw", prefix, name);
    int x = uakd_net_conv(net, b, in, c, 3, 1, 1, c, 0);
    snprintf(b, sizeof b, "%s.%s.conv.conv_pw", prefix, name);
    x = uakd_net_conv(net, b, x, c, 1, 1, 0, 1, 1);
    snprintf(b, sizeof b, "%s.%s.conv.bn", prefix, name);
    return norm(net, b, x, nm);
}

/* 1x1 conv (bias) + norm named `prefix.name.conv.{conv,bn}` */
static int down_channel(uakd_net *net, const char *prefix, const char *name, int in, int width,
                        const uakd_spnnet_norm *nm) {
    char b[NAME_LEN];
    snprintf(b, sizeof b, "%s.%s.conv.conv", prefix, name);
    int x = uakd_net_conv(net, b, in, width, 1, 1, 0, 1, 1);
    snprintf(b, sizeof b, "%s.%s.conv.bn", prefix, name);
    return norm(net, b, x, nm);
}

/* node = sepconv(SiLU(fuse(ins))) with weights prefix.wname and block prefix.conv */
static int node(uakd_net *net, const char *prefix, const char *wname, const char *conv, int n, const int *ins,
                const uakd_spnnet_norm *nm) {
    char b[NAME_LEN];
    int x = uakd_net_fuse(net, cat(b, prefix, wname), n, ins);
    x = uakd_net_act(net, NULL, x, UAKD_ACT_SILU, 0);
    return sep_block(net, prefix, conv, x, nm);
}

static int up(uakd_net *net, int x) { return uakd_net_upsample2(net, NULL, x); }
static int down(uakd_net *net, int x) { return uakd_net_maxpool(net, NULL, x, 3, 2, 1); }

int uakd_spnnet_bifpn_layer(uakd_net *net, const char *prefix, int first, const int *ins, int width,
                            const uakd_spnnet_norm *nm, int *outs) {
    int p_in[8]; /* index = level */
    int skip3, skip4, skip5; /* second inputs of the bottom-up nodes at P3..P5 */
    if (first) {
        /* p5_to_p6 = [1x1 conv + norm (module 0), max-pool (module 1)] */
        p_in[6] = down(net, down_channel(net, prefix, "p5_to_p6.0", ins[3], width, nm));
        p_in[7] = down(net, p_in[6]);
        p_in[3] = down_channel(net, prefix, "p3_down_channel", ins[1], width, nm);
        p_in[4] = down_channel(net, prefix, "p4_down_channel", ins[2], width, nm);
        p_in[5] = down_channel(net, prefix, "p5_down_channel", ins[3], width, nm);
        p_in[2] = down_channel(net, prefix, "p2_down_channel", ins[0], width, nm);
    } else {
        for (int l = 2; l <= 7; l++) p_in[l] = ins[l - 2];
    }
    int t[3];
    /* top-down */
    t[0] = p_in[6], t[1] = up(net, p_in[7]);
    const int p6_up = node(net, prefix, "p6_w1", "conv6_up", 2, t, nm);
    t[0] = p_in[5], t[1] = up(net, p6_up);
    const int p5_up = node(net, prefix, "p5_w1", "conv5_up", 2, t, nm);
    t[0] = p_in[4], t[1] = up(net, p5_up);
    const int p4_up = node(net, prefix, "p4_w1", "conv4_up", 2, t, nm);
    t[0] = p_in[3], t[1] = up(net, p4_up);
    const int p3_up = node(net, prefix, "p3_w1", "conv3_up", 2, t, nm);
    t[0] = p_in[2], t[1] = up(net, p3_up);
    const int p2_out = node(net, prefix, "p2_w1", "conv2_up", 2, t, nm);
    /* the first layer projects the backbone features a second time for the skips */
    if (first) {
        skip4 = down_channel(net, prefix, "p4_down_channel_2", ins[2], width, nm);
        skip5 = down_channel(net, prefix, "p5_down_channel_2", ins[3], width, nm);
        skip3 = down_channel(net, prefix, "p3_down_channel_2", ins[1], width, nm);
    } else {
        skip3 = p_in[3], skip4 = p_in[4], skip5 = p_in[5];
    }
    /* bottom-up */
    t[0] = skip3, t[1] = p3_up, t[2] = down(net, p2_out);
    const int p3_out = node(net, prefix, "p3_w2", "conv3_down", 3, t, nm);
    t[0] = skip4, t[1] = p4_up, t[2] = down(net, p3_out);
    const int p4_out = node(net, prefix, "p4_w2", "conv4_down", 3, t, nm);
    t[0] = skip5, t[1] = p5_up, t[2] = down(net, p4_out);
    const int p5_out = node(net, prefix, "p5_w2", "conv5_down", 3, t, nm);
    t[0] = p_in[6], t[1] = p6_up, t[2] = down(net, p5_out);
    const int p6_out = node(net, prefix, "p6_w2", "conv6_down", 3, t, nm);
    t[0] = p_in[7], t[1] = down(net, p6_out);
    const int p7_out = node(net, prefix, "p7_w2", "conv7_down", 2, t, nm);
    outs[0] = p2_out, outs[1] = p3_out, outs[2] = p4_out, outs[3] = p5_out, outs[4] = p6_out, outs[5] = p7_out;
    for (int i = 0; i < 6; i++)
        if (outs[i] < 0) return -1;
    return p2_out;
}

int uakd_spnnet_head(uakd_net *net, const char *prefix, int in, int depth, int keypoints,
                     const uakd_spnnet_norm *nm) {
    char b[NAME_LEN];
    int c = 0;
    uakd_net_shape(net, in, &c, NULL, NULL);
    const int mid = 2 * c < 256 ? 2 * c : 256;
    int x = in;
    for (int i = 0; i < depth; i++) {
        int cx = 0;
        uakd_net_shape(net, x, &cx, NULL, NULL);
        snprintf(b, sizeof b, "%s.convs.%d.conv_dw", prefix, i);
        x = uakd_net_conv(net, b, x, cx, 3, 1, 1, cx, 0);
        snprintf(b, sizeof b, "%s.convs.%d.conv_pw", prefix, i);
        x = uakd_net_conv(net, b, x, mid, 1, 1, 0, 1, 0);
        snprintf(b, sizeof b, "%s.bns.%d", prefix, i);
        x = norm(net, b, x, nm);
        x = uakd_net_act(net, NULL, x, UAKD_ACT_SILU, 0);
    }
    int cx = 0;
    uakd_net_shape(net, x, &cx, NULL, NULL);
    x = uakd_net_conv(net, cat(b, prefix, "head.conv_dw"), x, cx, 3, 1, 1, cx, 0);
    return uakd_net_conv(net, cat(b, prefix, "head.conv_pw"), x, keypoints, 1, 1, 0, 1, 1);
}

/* Drop-connect masks of the first n images: from rng (block by block, image by image: 1 / p when
 * uniform < p = 1 - rate, else 0), or 1 when rng is NULL. */
static void set_masks(uakd_spnnet *m, int n, uakd_rng *rng) {
    for (int d = 0; d < m->n_drop; d++) {
        int c = 0;
        uakd_net_shape(m->net, m->drop_mask[d], &c, NULL, NULL);
        float *mask = uakd_net_out(m->net, m->drop_mask[d]);
        const double p = 1 - m->drop_rate[d];
        for (int i = 0; i < n; i++) {
            const float v = !rng ? 1.0f : uakd_rng_uniform(rng) < p ? (float)(1 / p) : 0.0f;
            for (int j = 0; j < c; j++) mask[(size_t)i * c + j] = v;
        }
    }
}

static uakd_status check_config(const uakd_spnnet_config *c) {
    if (!(c->width_mult > 0 && c->width_mult <= 8) || !(c->depth_mult > 0 && c->depth_mult <= 8))
        return uakd_fail(UAKD_EINVAL, "spnnet config: width %g / depth %g multipliers must be in (0, 8]", c->width_mult,
                         c->depth_mult);
    if (c->bifpn_width < 1 || c->bifpn_width > 4096 || c->bifpn_layers < 1 || c->bifpn_layers > 32 ||
        c->head_depth < 0 || c->head_depth > 32 || c->keypoints < 1 || c->keypoints > 1024)
        return uakd_fail(UAKD_EINVAL, "spnnet config: bifpn %d x %d, head depth %d, keypoints %d out of range",
                         c->bifpn_width, c->bifpn_layers, c->head_depth, c->keypoints);
    if (!(c->drop_connect >= 0 && c->drop_connect < 1))
        return uakd_fail(UAKD_EINVAL, "spnnet config: drop-connect rate %g outside [0, 1)", c->drop_connect);
    if (c->in_w < 128 || c->in_h < 128 || c->in_w % 128 || c->in_h % 128 || c->in_w > 8192 || c->in_h > 8192)
        return uakd_fail(UAKD_EINVAL, "spnnet config: input %dx%d must be multiples of 128 (P7 stride) up to 8192",
                         c->in_w, c->in_h);
    return UAKD_OK;
}

uakd_status uakd_spnnet_new(const uakd_spnnet_config *cfg, int max_batch, int training, uakd_spnnet **out) {
    *out = NULL;
    UAKD_TRY(check_config(cfg));
    uakd_spnnet *m = calloc(1, sizeof *m);
    if (!m) return uakd_fail(UAKD_ENOMEM, "uakd_spnnet_new: out of memory");
    m->cfg = *cfg;
    uakd_status st = uakd_net_new(max_batch, &m->net);
    if (st) {
        free(m);
        return st;
    }
    uakd_net *net = m->net;
    const uakd_spnnet_norm bb = {cfg->group_norm ? (cfg->large_backbone ? 8 : 16) : 0,
                                 cfg->group_norm ? 1e-5f : (cfg->large_backbone ? 1e-3f : 1e-5f),
                                 cfg->large_backbone ? 0.01f : 0.1f};
    const uakd_spnnet_norm fpn = {cfg->group_norm ? 16 : 0, 1e-4f, 0.01f};
    const uakd_spnnet_norm hd = {cfg->group_norm ? 16 : 0, 1e-4f, 0.003f};
    m->norm[0] = bb, m->norm[1] = fpn, m->norm[2] = hd;
    char b[NAME_LEN];
    int x = m->input = uakd_net_input(net, "image", 3, cfg->in_h, cfg->in_w, 0);
    x = uakd_net_conv(net, "efficientnet.0.0", x, uakd_spnnet_round_channels(32 * cfg->width_mult), 3, 2, 1, 1, 0);
    x = norm(net, "efficientnet.0.1", x, &bb);
    x = uakd_net_act(net, NULL, x, UAKD_ACT_SILU, 0);
    int nt = 0, blocks = 0, bi = 0;
    for (int s = 0; s < 7; s++) blocks += (int)ceil(b0_stages[s][4] * cfg->depth_mult);
    if (training && cfg->drop_connect > 0) {
        m->drop_mask = malloc(sizeof(int) * (size_t)blocks);
        m->drop_rate = malloc(sizeof(double) * (size_t)blocks);
        if (!m->drop_mask || !m->drop_rate) {
            uakd_spnnet_free(m);
            return uakd_fail(UAKD_ENOMEM, "uakd_spnnet_new: out of memory");
        }
    }
    for (int s = 0; s < 7; s++) {
        const int *st_ = b0_stages[s];
        const int c_out = uakd_spnnet_round_channels(st_[3] * cfg->width_mult);
        const int reps = (int)ceil(st_[4] * cfg->depth_mult);
        for (int r = 0; r < reps; r++, bi++) {
            snprintf(b, sizeof b, "efficientnet.%d.%d", s + 1, r);
            const double rate = cfg->drop_connect * bi / blocks;
            const int drop = m->drop_mask && rate > 0;
            x = uakd_spnnet_mbconv(net, b, x, st_[0], st_[1], r ? 1 : st_[2], c_out, &bb, drop);
            snprintf(b, sizeof b, "efficientnet.%d.%d.drop_connect", s + 1, r);
            const int mask = drop ? uakd_net_find(net, b) : -1;
            if (mask >= 0) m->drop_mask[m->n_drop] = mask, m->drop_rate[m->n_drop++] = rate;
        }
        if (s == 1 || s == 2 || s == 4 || s == 6) m->taps[nt++] = x;
    }
    int feats[6];
    for (int l = 0; l < cfg->bifpn_layers; l++) {
        snprintf(b, sizeof b, "bifpn.%d", l);
        uakd_spnnet_bifpn_layer(net, b, l == 0, l == 0 ? m->taps : feats, cfg->bifpn_width, &fpn, feats);
    }
    memcpy(m->features, feats, sizeof feats);
    m->p2 = feats[0];
    m->heatmap = uakd_spnnet_head(net, "heatmap", m->p2, cfg->head_depth, cfg->keypoints, &hd);
    uakd_net_keep(net, m->p2);
    uakd_net_keep(net, m->heatmap);
    st = uakd_net_build(net, training);
    if (st) {
        uakd_spnnet_free(m);
        return uakd_fail_context(st, "spnnet (width %g, depth %g, bifpn %dx%d): ", cfg->width_mult, cfg->depth_mult,
                                 cfg->bifpn_width, cfg->bifpn_layers);
    }
    set_masks(m, max_batch, NULL);
    *out = m;
    return UAKD_OK;
}

void uakd_spnnet_free(uakd_spnnet *m) {
    if (!m) return;
    uakd_net_free(m->net);
    free(m->drop_mask);
    free(m->drop_rate);
    free(m);
}

uakd_status uakd_spnnet_forward(uakd_spnnet *m, int n, int training, uakd_rng *rng) {
    if (training && m->n_drop && !rng) return uakd_fail(UAKD_EINVAL, "uakd_spnnet_forward: drop-connect needs an rng");
    if (n < 1 || n > uakd_net_max_batch(m->net))
        return uakd_fail(UAKD_EINVAL, "uakd_spnnet_forward: batch %d outside 1..%d", n, uakd_net_max_batch(m->net));
    set_masks(m, n, training ? rng : NULL);
    return uakd_net_forward(m->net, n, training);
}
