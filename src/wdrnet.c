/* WDRNet assembly (uakd/wdrnet.h): backbone from its description, FPN neck, and the two-tower
 * head built once for level 0 and repeated on the other levels with shared parameters.
 * Output of level l: logits = conv_cls(T_cls(P_l)), offsets = s_l * conv_pose(T_pose(P_l)),
 * T = T x [3x3 conv + GroupNorm + ReLU]. */
#include "uakd/wdrnet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uakd/darknet_weights.h"
#include "uakd/netbuild.h"
#include "uakd/weights.h"

#define MAX_TAPS 3

struct uakd_wdrnet {
    uakd_wdrnet_config cfg;
    char variant[64];
    uakd_netdesc *backbone;
    uakd_net *net;
    uakd_wdr_levels lv;
    int input;
    int logits[UAKD_WDR_MAX_LEVELS], offsets[UAKD_WDR_MAX_LEVELS], feature[UAKD_WDR_MAX_LEVELS];
    int head_convs[2 * 8 + 2]; /* level-0 head convs for the N(0, 0.01) init */
    int n_head_convs;
};

static const struct {
    const char *name, *file;
    int width;
} VARIANTS[] = {
    {"darknet53", "darknet53.cfg", 256},
    {"darknet-tiny", "darknet-tiny.cfg", 256},
    {"darknet-tiny-h", "darknet-tiny-h.cfg", 128},
};
enum { N_VARIANTS = sizeof VARIANTS / sizeof VARIANTS[0] };

static int find_variant(const char *name) {
    for (int i = 0; name && i < N_VARIANTS; i++)
        if (!strcmp(VARIANTS[i].name, name)) return i;
    return -1;
}

void uakd_wdrnet_config_default(uakd_wdrnet_config *cfg, const char *variant) {
    memset(cfg, 0, sizeof *cfg);
    cfg->variant = variant;
    cfg->classes = 1;
    cfg->input_size = 256;
    cfg->max_batch = 1;
}

/* Taps of the backbone: its [output] layers in order. */
static int backbone_taps(const uakd_netdesc *d, int *idx) {
    int n = 0;
    for (int i = 0; i < d->n_layers; i++)
        if (d->layers[i].type == UAKD_ND_OUTPUT) {
            if (n == MAX_TAPS) return -1;
            idx[n++] = i;
        }
    return n;
}

/* The two towers and the predictions at one level; level 0 creates the parameters. */
static void build_head(uakd_wdrnet *m, int level, int p) {
    uakd_net *net = m->net;
    const int F = m->cfg.width, T = m->cfg.tower_convs, C = m->cfg.classes;
    const int groups = F < 32 ? F : 32;
    char name[128];
    const char *towers[2] = {"cls_tower", "pose_tower"};
    int top[2];
    for (int t = 0; t < 2; t++) {
        int x = p;
        for (int k = 0; k < T; k++) {
            char conv[96], gn[96];
            snprintf(conv, sizeof conv, "head.%s.%d", towers[t], 3 * k);
            snprintf(gn, sizeof gn, "head.%s.%d", towers[t], 3 * k + 1);
            if (level == 0) {
                x = uakd_net_conv(net, conv, x, F, 3, 1, 1, 1, 1);
                if (x >= 0) m->head_convs[m->n_head_convs++] = x;
                x = uakd_net_groupnorm(net, gn, x, groups);
            } else {
                snprintf(name, sizeof name, "%s@%d", conv, level);
                x = uakd_net_shared(net, name, x, uakd_net_find(net, conv));
                snprintf(name, sizeof name, "%s@%d", gn, level);
                x = uakd_net_shared(net, name, x, uakd_net_find(net, gn));
            }
            snprintf(name, sizeof name, "head.%s.%d@%d", towers[t], 3 * k + 2, level);
            x = uakd_net_act(net, name, x, UAKD_ACT_RELU, 0);
        }
        top[t] = x;
    }
    int lg, of;
    if (level == 0) {
        lg = uakd_net_conv(net, "head.cls_logits", top[0], C, 3, 1, 1, 1, 1);
        of = uakd_net_conv(net, "head.pose_pred", top[1], 16 * C, 3, 1, 1, 1, 1);
        if (lg >= 0) m->head_convs[m->n_head_convs++] = lg;
        if (of >= 0) m->head_convs[m->n_head_convs++] = of;
    } else {
        snprintf(name, sizeof name, "head.cls_logits@%d", level);
        lg = uakd_net_shared(net, name, top[0], uakd_net_find(net, "head.cls_logits"));
        snprintf(name, sizeof name, "head.pose_pred@%d", level);
        of = uakd_net_shared(net, name, top[1], uakd_net_find(net, "head.pose_pred"));
    }
    snprintf(name, sizeof name, "head.scales.%d.scale", level);
    of = uakd_net_scale(net, name, of);
    m->logits[level] = uakd_net_keep(net, lg);
    m->offsets[level] = uakd_net_keep(net, of);
}

static uakd_status build(uakd_wdrnet *m) {
    const uakd_wdrnet_config *c = &m->cfg;
    const uakd_netdesc *d = m->backbone;
    int tap_idx[MAX_TAPS];
    const int n_taps = backbone_taps(d, tap_idx);
    if (n_taps < 1)
        return uakd_fail(UAKD_EINVAL, "wdrnet: the backbone description needs 1..%d [output] taps (finest first), has %d",
                         MAX_TAPS, n_taps < 0 ? MAX_TAPS + 1 : 0);
    const int n_levels = n_taps + 2;
    if (n_levels > UAKD_WDR_MAX_LEVELS) return uakd_fail(UAKD_EINVAL, "wdrnet: too many levels");
    uakd_net *net = m->net;
    m->input = uakd_net_input(net, "image", d->input.channels, c->input_size, c->input_size, 0);
    int *ids = malloc(sizeof(int) * (size_t)d->n_layers);
    if (!ids) return uakd_fail(UAKD_ENOMEM, "wdrnet: out of memory");
    uakd_status st = uakd_netbuild_append(net, d, m->input, "backbone.", ids);
    int taps[MAX_TAPS], last = st == UAKD_OK ? ids[d->n_layers - 1] : -1;
    for (int i = 0; i < n_taps; i++) taps[i] = st == UAKD_OK ? ids[tap_idx[i]] : -1;
    free(ids);
    UAKD_TRY(st);
    /* the top-down path needs every tap exactly twice the size of the next */
    for (int i = 0; i + 1 < n_taps; i++) {
        int h0, w0, h1, w1;
        uakd_net_shape(net, taps[i], NULL, &h0, &w0);
        uakd_net_shape(net, taps[i + 1], NULL, &h1, &w1);
        if (h0 != 2 * h1 || w0 != 2 * w1)
            return uakd_fail(UAKD_EINVAL, "wdrnet: input %d gives backbone maps %dx%d and %dx%d, not a factor 2 apart; "
                                          "use an input size that is a multiple of the coarsest stride",
                             c->input_size, h0, w0, h1, w1);
    }
    const int F = c->width;
    char name[96];
    int lat[MAX_TAPS], inner[MAX_TAPS];
    for (int i = 0; i < n_taps; i++) {
        snprintf(name, sizeof name, "neck.lateral.%d", i);
        lat[i] = uakd_net_conv(net, name, taps[i], F, 1, 1, 0, 1, 1);
    }
    inner[n_taps - 1] = lat[n_taps - 1];
    for (int i = n_taps - 2; i >= 0; i--) {
        snprintf(name, sizeof name, "neck.up.%d", i);
        const int up = uakd_net_upsample2(net, name, inner[i + 1]);
        snprintf(name, sizeof name, "neck.sum.%d", i);
        inner[i] = uakd_net_add(net, name, lat[i], up);
    }
    int P[UAKD_WDR_MAX_LEVELS];
    for (int i = 0; i < n_taps; i++) {
        snprintf(name, sizeof name, "neck.output.%d", i);
        P[i] = uakd_net_conv(net, name, inner[i], F, 3, 1, 1, 1, 1);
    }
    P[n_taps] = uakd_net_conv(net, "neck.extra.0", last, F, 3, 2, 1, 1, 1);
    const int r = uakd_net_act(net, "neck.extra.0.relu", P[n_taps], UAKD_ACT_RELU, 0);
    P[n_taps + 1] = uakd_net_conv(net, "neck.extra.1", r, F, 3, 2, 1, 1, 1);
    for (int l = 0; l < n_levels; l++) m->feature[l] = uakd_net_keep(net, P[l]);
    for (int l = 0; l < n_levels; l++) build_head(m, l, P[l]);
    UAKD_TRY(uakd_net_build(net, c->training));
    UAKD_TRY(uakd_wdr_levels_init(&m->lv, n_levels, c->input_size, c->input_size));
    for (int l = 0; l < n_levels; l++) {
        int h, w;
        uakd_net_shape(net, m->logits[l], NULL, &h, &w);
        UAKD_TRY(uakd_wdr_levels_set_grid(&m->lv, l, w, h));
    }
    return UAKD_OK;
}

uakd_status uakd_wdrnet_new(const uakd_wdrnet_config *cfg, uakd_wdrnet **out) {
    *out = NULL;
    const int v = find_variant(cfg->variant);
    if (!cfg->cfg_path && v < 0)
        return uakd_fail(UAKD_EINVAL, "wdrnet: unknown variant '%s' (darknet53, darknet-tiny, darknet-tiny-h) and no "
                                      "cfg_path",
                         cfg->variant ? cfg->variant : "(none)");
    if (cfg->classes < 1 || cfg->classes > 4096)
        return uakd_fail(UAKD_EINVAL, "wdrnet: classes %d outside 1..4096", cfg->classes);
    if (cfg->width < 0 || cfg->width > 4096 || cfg->tower_convs < 0 || cfg->tower_convs > 8)
        return uakd_fail(UAKD_EINVAL, "wdrnet: width %d (0..4096) or tower_convs %d (0..8) out of range", cfg->width,
                         cfg->tower_convs);
    if (cfg->input_size < 16 || cfg->input_size > 8192 || cfg->max_batch < 1)
        return uakd_fail(UAKD_EINVAL, "wdrnet: input size %d (16..8192) or max_batch %d (>= 1) out of range",
                         cfg->input_size, cfg->max_batch);
    uakd_wdrnet *m = calloc(1, sizeof *m);
    if (!m) return uakd_fail(UAKD_ENOMEM, "wdrnet: out of memory");
    m->cfg = *cfg;
    m->cfg.width = cfg->width ? cfg->width : v >= 0 ? VARIANTS[v].width : 256;
    m->cfg.tower_convs = cfg->tower_convs ? cfg->tower_convs : 4;
    const int groups = m->cfg.width < 32 ? m->cfg.width : 32;
    snprintf(m->variant, sizeof m->variant, "%s", v >= 0 && !cfg->cfg_path ? VARIANTS[v].name : "custom");
    m->cfg.variant = m->variant;
    m->cfg.cfg_path = NULL, m->cfg.cfg_dir = NULL;
    uakd_status st = UAKD_OK;
    if (m->cfg.width % groups) st = uakd_fail(UAKD_EINVAL, "wdrnet: width %d is not a multiple of 32", m->cfg.width);
    char path[1024];
    if (st == UAKD_OK) {
        if (cfg->cfg_path) snprintf(path, sizeof path, "%s", cfg->cfg_path);
        else {
            const char *dir = cfg->cfg_dir ? cfg->cfg_dir : getenv("UAKD_CFG_DIR");
            snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "cfg", VARIANTS[v].file);
        }
        st = uakd_netdesc_load(path, &m->backbone);
        if (st != UAKD_OK) uakd_fail_context(st, "wdrnet backbone (set cfg_dir or UAKD_CFG_DIR to the cfg folder): ");
    }
    if (st == UAKD_OK) st = uakd_netdesc_set_input_size(m->backbone, cfg->input_size, cfg->input_size);
    if (st == UAKD_OK) st = uakd_net_new(cfg->max_batch, &m->net);
    if (st == UAKD_OK) st = build(m);
    if (st != UAKD_OK) {
        uakd_wdrnet_free(m);
        return st;
    }
    *out = m;
    return UAKD_OK;
}

void uakd_wdrnet_free(uakd_wdrnet *m) {
    if (!m) return;
    uakd_net_free(m->net);
    uakd_netdesc_free(m->backbone);
    free(m);
}

uakd_status uakd_wdrnet_init(uakd_wdrnet *m, uakd_rng *rng) {
    UAKD_TRY(uakd_net_init(m->net, rng));
    /* head: N(0, 0.01), zero bias; classification bias -ln((1 - 0.01) / 0.01) (prior 0.01) */
    for (int i = 0; i < m->n_head_convs; i++) {
        const uakd_layer_info info = uakd_net_layer(m->net, m->head_convs[i]);
        char wn[128], bn[128];
        snprintf(wn, sizeof wn, "%s.weight", info.name);
        snprintf(bn, sizeof bn, "%s.bias", info.name);
        const uakd_param *w = uakd_net_param_find(m->net, wn), *b = uakd_net_param_find(m->net, bn);
        const float bias = !strcmp(info.name, "head.cls_logits") ? (float)-log(99.0) : 0.0f;
        for (int64_t t = 0; t < w->count; t++) w->data[t] = (float)(0.01 * uakd_rng_normal(rng));
        for (int64_t t = 0; t < b->count; t++) b->data[t] = bias;
    }
    return UAKD_OK;
}

uakd_net *uakd_wdrnet_net(const uakd_wdrnet *m) { return m->net; }
const uakd_netdesc *uakd_wdrnet_backbone(const uakd_wdrnet *m) { return m->backbone; }
const uakd_wdrnet_config *uakd_wdrnet_config_of(const uakd_wdrnet *m) { return &m->cfg; }
int uakd_wdrnet_input(const uakd_wdrnet *m) { return m->input; }
const uakd_wdr_levels *uakd_wdrnet_levels(const uakd_wdrnet *m) { return &m->lv; }
static int level_ok(const uakd_wdrnet *m, int l) { return l >= 0 && l < m->lv.n; }
int uakd_wdrnet_logits_id(const uakd_wdrnet *m, int l) { return level_ok(m, l) ? m->logits[l] : -1; }
int uakd_wdrnet_offsets_id(const uakd_wdrnet *m, int l) { return level_ok(m, l) ? m->offsets[l] : -1; }
int uakd_wdrnet_feature_id(const uakd_wdrnet *m, int l) { return level_ok(m, l) ? m->feature[l] : -1; }

uakd_status uakd_wdrnet_forward(uakd_wdrnet *m, int n, int training) { return uakd_net_forward(m->net, n, training); }

void uakd_wdrnet_maps(const uakd_wdrnet *m, int n, uakd_wdr_maps *maps) {
    memset(maps, 0, sizeof *maps);
    maps->n = n, maps->c = m->cfg.classes;
    for (int l = 0; l < m->lv.n; l++) {
        maps->logits[l] = uakd_net_out(m->net, m->logits[l]);
        maps->offsets[l] = uakd_net_out(m->net, m->offsets[l]);
    }
}

void uakd_wdrnet_grads(const uakd_wdrnet *m, uakd_wdr_grads *g) {
    memset(g, 0, sizeof *g);
    for (int l = 0; l < m->lv.n; l++) {
        g->logits[l] = uakd_net_grad(m->net, m->logits[l]);
        g->offsets[l] = uakd_net_grad(m->net, m->offsets[l]);
    }
}

uakd_status uakd_wdrnet_backward(uakd_wdrnet *m) {
    int ids[2 * UAKD_WDR_MAX_LEVELS];
    for (int l = 0; l < m->lv.n; l++) ids[2 * l] = m->logits[l], ids[2 * l + 1] = m->offsets[l];
    return uakd_net_backward(m->net, 2 * m->lv.n, ids);
}

uakd_status uakd_wdrnet_put_metadata(const uakd_wdrnet *m, uakd_safetensors_writer *w) {
    UAKD_TRY(uakd_netdesc_put_metadata(m->backbone, w));
    UAKD_TRY(uakd_safetensors_writer_set_meta(w, "model", "wdrnet"));
    UAKD_TRY(uakd_safetensors_writer_set_meta_u64(w, "wdrnet_classes", (uint64_t)m->cfg.classes));
    UAKD_TRY(uakd_safetensors_writer_set_meta_u64(w, "wdrnet_width", (uint64_t)m->cfg.width));
    UAKD_TRY(uakd_safetensors_writer_set_meta_u64(w, "wdrnet_tower_convs", (uint64_t)m->cfg.tower_convs));
    return uakd_safetensors_writer_set_meta_u64(w, "wdrnet_levels", (uint64_t)m->lv.n);
}

uakd_status uakd_wdrnet_check_metadata(const uakd_wdrnet *m, const uakd_safetensors *st) {
    const char *model = uakd_safetensors_meta(st, "model");
    if (!model || strcmp(model, "wdrnet"))
        return uakd_fail(UAKD_EFORMAT, "weights file: metadata \"model\" is %s%s%s, expected \"wdrnet\"",
                         model ? "\"" : "", model ? model : "absent", model ? "\"" : "");
    UAKD_TRY(uakd_netdesc_check_metadata(m->backbone, st));
    const char *keys[4] = {"wdrnet_classes", "wdrnet_width", "wdrnet_tower_convs", "wdrnet_levels"};
    const uint64_t want[4] = {(uint64_t)m->cfg.classes, (uint64_t)m->cfg.width, (uint64_t)m->cfg.tower_convs,
                              (uint64_t)m->lv.n};
    for (int i = 0; i < 4; i++) {
        uint64_t v;
        UAKD_TRY(uakd_safetensors_meta_u64(st, keys[i], &v));
        if (v != want[i])
            return uakd_fail(UAKD_EFORMAT, "weights file: %s is %llu but this model has %llu (build the model with the "
                                           "file's settings)",
                             keys[i], (unsigned long long)v, (unsigned long long)want[i]);
    }
    return UAKD_OK;
}

uakd_status uakd_wdrnet_save(const uakd_wdrnet *m, const char *path) {
    uakd_safetensors_writer *w;
    UAKD_TRY(uakd_safetensors_writer_new(&w));
    uakd_status st = uakd_safetensors_writer_set_meta(w, "format", UAKD_WEIGHTS_FORMAT);
    if (st == UAKD_OK) st = uakd_safetensors_writer_set_meta_u64(w, "format_version", UAKD_WEIGHTS_VERSION);
    if (st == UAKD_OK) st = uakd_wdrnet_put_metadata(m, w);
    if (st == UAKD_OK) st = uakd_weights_add(w, m->net);
    uakd_safetensors_writer_checksum(w, 1);
    if (st == UAKD_OK) st = uakd_safetensors_writer_write(w, path);
    uakd_safetensors_writer_free(w);
    return st;
}

uakd_status uakd_wdrnet_load(uakd_wdrnet *m, const char *path, unsigned flags) {
    uakd_safetensors *st;
    UAKD_TRY(uakd_safetensors_open(path, &st));
    uakd_status s = uakd_safetensors_expect_format(st, UAKD_WEIGHTS_FORMAT, UAKD_WEIGHTS_VERSION, NULL);
    if (s == UAKD_OK) s = uakd_wdrnet_check_metadata(m, st);
    if (s == UAKD_OK) s = uakd_weights_load_from(m->net, st, flags, NULL);
    if (s != UAKD_OK) uakd_fail_context(s, "%s: ", path);
    uakd_safetensors_free(st);
    return s;
}

uakd_status uakd_wdrnet_import_darknet(uakd_wdrnet *m, const char *path, size_t *n_covered) {
    return uakd_weights_import_darknet(m->net, m->backbone, "backbone.", path, UAKD_DARKNET_ALLOW_PREFIX, n_covered);
}

static uakd_status put_meta(const void *m, uakd_safetensors_writer *w) { return uakd_wdrnet_put_metadata(m, w); }
static uakd_status check_meta(const void *m, const uakd_safetensors *st) { return uakd_wdrnet_check_metadata(m, st); }

uakd_status uakd_wdrnet_checkpoint_save(const uakd_wdrnet *m, const uakd_optim *opt, const uakd_train_state *s,
                                        const char *path) {
    return uakd_checkpoint_save(path, m->net, opt, s, put_meta, m);
}

uakd_status uakd_wdrnet_checkpoint_load(uakd_wdrnet *m, uakd_optim *opt, uakd_train_state *s, const char *path) {
    return uakd_checkpoint_load(path, m->net, opt, s, check_meta, m);
}
