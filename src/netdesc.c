/* Network description parser: darknet-style "[section]" + "key=value" text, validated against
 * a per-section schema, then shape inference and parameter/FLOP counting.
 *
 * Shapes (C, H, W), with k = size, s = stride, p = padding:
 *   conv     C = filters, H = floor((H + 2p - k) / s) + 1 (same for W)
 *   maxpool  C unchanged, H = floor((H + 2p - k) / s) + 1
 *   upsample H = H * stride
 *   route    C = sum of the routed layers' C (all must share H, W)
 *   shortcut shape of the previous layer (must equal the "from" layer's)
 * Parameters of a conv: filters * (C_in / groups) * k * k weights, + filters biases when bias=1,
 * + 2 * filters (gamma, beta) with batch or group norm. BatchNorm's running mean and variance
 * (2 * filters) are buffers, not parameters. FLOPs: 2 * multiply-adds of convolutions plus one
 * per element for shortcut additions, channel scaling and global average pooling; activations,
 * max-pools and copies are not counted. Further shapes:
 *   avgpool         C x 1 x 1 (global average)
 *   scale_channels  shape of the "from" layer; the previous layer must be C x 1 x 1 */
#include "uakd/netdesc.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uakd/fileio.h"
#include "uakd/safetensors.h"

/* ------------------------------------------------------------------------------------------ */
/* schema */

typedef enum { K_INT, K_FLOAT, K_INTS, K_FLOATS, K_ENUM, K_NAME } key_kind;

typedef struct {
    const char *key;
    key_kind kind;
    const char *def; /* NULL: required; "": optional without a default */
    double lo, hi;
    const char *const *choices; /* K_ENUM */
} key_spec;

static const char *const ACTS[] = {"linear", "leaky", "relu", "silu", "sigmoid", NULL};
static const char *const NORMS[] = {"none", "batch", "group", NULL};

#define END_KEYS {NULL, K_INT, NULL, 0, 0, NULL}
static const key_spec NET_KEYS[] = {
    {"width", K_INT, NULL, 1, 65536, NULL},
    {"height", K_INT, NULL, 1, 65536, NULL},
    {"channels", K_INT, "3", 1, UAKD_NETDESC_MAX_CHANNELS, NULL},
    {"mean", K_FLOATS, "", -1e6, 1e6, NULL},
    {"std", K_FLOATS, "", 1e-6, 1e6, NULL},
    END_KEYS,
};
static const key_spec CONV_KEYS[] = {
    {"name", K_NAME, "", 0, 0, NULL},
    {"filters", K_INT, NULL, 1, 65536, NULL},
    {"size", K_INT, "1", 1, 31, NULL},
    {"stride", K_INT, "1", 1, 64, NULL},
    {"pad", K_INT, "0", 0, 1, NULL},
    {"padding", K_INT, "", 0, 1024, NULL},
    {"groups", K_INT, "1", 1, 65536, NULL},
    {"batch_normalize", K_INT, "", 0, 1, NULL},
    {"norm", K_ENUM, "", 0, 0, NORMS},
    {"norm_groups", K_INT, "", 1, 65536, NULL},
    {"eps", K_FLOAT, "", 1e-12, 1, NULL},
    {"momentum", K_FLOAT, "", 0, 1, NULL},
    {"bias", K_INT, "", 0, 1, NULL},
    {"activation", K_ENUM, "linear", 0, 0, ACTS},
    END_KEYS,
};
static const key_spec MAXPOOL_KEYS[] = {
    {"name", K_NAME, "", 0, 0, NULL},
    {"size", K_INT, "2", 1, 64, NULL},
    {"stride", K_INT, "", 1, 64, NULL},
    {"padding", K_INT, "0", 0, 32, NULL},
    END_KEYS,
};
static const key_spec UPSAMPLE_KEYS[] = {
    {"name", K_NAME, "", 0, 0, NULL},
    {"stride", K_INT, "2", 1, 16, NULL},
    END_KEYS,
};
static const key_spec ROUTE_KEYS[] = {
    {"name", K_NAME, "", 0, 0, NULL},
    {"layers", K_INTS, NULL, -UAKD_NETDESC_MAX_LAYERS, UAKD_NETDESC_MAX_LAYERS, NULL},
    END_KEYS,
};
static const key_spec SHORTCUT_KEYS[] = {
    {"name", K_NAME, "", 0, 0, NULL},
    {"from", K_INT, NULL, -UAKD_NETDESC_MAX_LAYERS, UAKD_NETDESC_MAX_LAYERS, NULL},
    {"activation", K_ENUM, "linear", 0, 0, ACTS},
    END_KEYS,
};
static const key_spec ACTIVATION_KEYS[] = {
    {"name", K_NAME, "", 0, 0, NULL},
    {"activation", K_ENUM, NULL, 0, 0, ACTS},
    END_KEYS,
};
static const key_spec AVGPOOL_KEYS[] = {
    {"name", K_NAME, "", 0, 0, NULL},
    END_KEYS,
};
static const key_spec SCALE_KEYS[] = {
    {"name", K_NAME, "", 0, 0, NULL},
    {"from", K_INT, NULL, -UAKD_NETDESC_MAX_LAYERS, UAKD_NETDESC_MAX_LAYERS, NULL},
    END_KEYS,
};
static const key_spec OUTPUT_KEYS[] = {
    {"name", K_NAME, NULL, 0, 0, NULL},
    END_KEYS,
};

#define SEC_NET (-1)
static const struct {
    const char *name;
    int type; /* uakd_netdesc_type or SEC_NET */
    const key_spec *keys;
} SECTIONS[] = {
    {"net", SEC_NET, NET_KEYS},
    {"convolutional", UAKD_ND_CONV, CONV_KEYS},
    {"conv", UAKD_ND_CONV, CONV_KEYS},
    {"maxpool", UAKD_ND_MAXPOOL, MAXPOOL_KEYS},
    {"upsample", UAKD_ND_UPSAMPLE, UPSAMPLE_KEYS},
    {"route", UAKD_ND_ROUTE, ROUTE_KEYS},
    {"shortcut", UAKD_ND_SHORTCUT, SHORTCUT_KEYS},
    {"activation", UAKD_ND_ACTIVATION, ACTIVATION_KEYS},
    {"output", UAKD_ND_OUTPUT, OUTPUT_KEYS},
    {"avgpool", UAKD_ND_AVGPOOL, AVGPOOL_KEYS},
    {"scale_channels", UAKD_ND_SCALE_CHANNELS, SCALE_KEYS},
};
#define N_SECTIONS (sizeof SECTIONS / sizeof SECTIONS[0])
#define MAX_KEYS 16

const char *uakd_netdesc_type_name(uakd_netdesc_type t) {
    static const char *const names[] = {"convolutional", "maxpool", "upsample", "route",
                                        "shortcut", "activation", "output", "avgpool", "scale_channels"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

const char *uakd_netdesc_act_name(uakd_netdesc_act a) {
    return (unsigned)a < sizeof ACTS / sizeof ACTS[0] - 1 ? ACTS[a] : "?";
}

/* ------------------------------------------------------------------------------------------ */
/* suggestions */

/* Levenshtein distance (strings longer than 63 characters count as far from everything). */
static int edit_distance(const char *a, const char *b) {
    size_t n = strlen(a), m = strlen(b);
    if (n > 63 || m > 63) return 1000;
    int row[64];
    for (size_t j = 0; j <= m; j++) row[j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= m; j++) {
            int up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[m];
}

/* Writes "; did you mean 'x'?" for the closest candidate within reach, else "". */
static void suggest(char *out, size_t cap, const char *word, const char *const *cands, size_t ncands) {
    const char *best = NULL;
    int bestd = 1000;
    for (size_t i = 0; i < ncands; i++) {
        int d = edit_distance(word, cands[i]);
        if (d < bestd) {
            bestd = d;
            best = cands[i];
        }
    }
    size_t len = strlen(word);
    int reach = len <= 4 ? 1 : len <= 8 ? 2 : 3;
    if (best && bestd <= reach) snprintf(out, cap, "; did you mean '%s'?", best);
    else out[0] = '\0';
}

/* ------------------------------------------------------------------------------------------ */
/* parsing */

typedef struct {
    const char *label;
    int sec;  /* index into SECTIONS, -1 before the first section */
    int line; /* line of the section header */
    const char *raw[MAX_KEYS];
    int raw_line[MAX_KEYS];
} section;

static int spec_index(const key_spec *keys, const char *key) {
    for (int i = 0; keys[i].key; i++)
        if (strcmp(keys[i].key, key) == 0) return i;
    return -1;
}

/* The value text of key (raw or default) and its line; NULL when absent with no default. */
static const char *value_of(const section *s, const char *key, int *line, int *present) {
    const key_spec *keys = SECTIONS[s->sec].keys;
    int i = spec_index(keys, key);
    *present = i >= 0 && s->raw[i] != NULL;
    if (i < 0) return NULL;
    *line = *present ? s->raw_line[i] : s->line;
    if (*present) return s->raw[i];
    return keys[i].def && keys[i].def[0] ? keys[i].def : NULL;
}

static uakd_status bad_value(const section *s, int line, const char *key, const char *v, const char *what) {
    return uakd_fail(UAKD_EFORMAT, "%s:%d: [%s] %s=%s: %s", s->label, line, SECTIONS[s->sec].name, key, v, what);
}

static uakd_status parse_long(const section *s, int line, const key_spec *k, const char *v, long *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (end == v || *end || errno) return bad_value(s, line, k->key, v, "expected an integer");
    if (x < k->lo || x > k->hi) {
        char msg[96];
        snprintf(msg, sizeof msg, "out of range %.0f..%.0f", k->lo, k->hi);
        return bad_value(s, line, k->key, v, msg);
    }
    *out = x;
    return UAKD_OK;
}

static uakd_status parse_double(const section *s, int line, const key_spec *k, const char *v, double *out) {
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !isfinite(x)) return bad_value(s, line, k->key, v, "expected a finite number");
    /* Values are stored as float: compare in float so that a stored value always re-parses. */
    if (!(fabs(x) <= FLT_MAX) || (float)x < (float)k->lo || (float)x > (float)k->hi) {
        char msg[96];
        snprintf(msg, sizeof msg, "out of range %g..%g", k->lo, k->hi);
        return bad_value(s, line, k->key, v, msg);
    }
    *out = x;
    return UAKD_OK;
}

static const key_spec *spec_of(const section *s, const char *key) {
    return &SECTIONS[s->sec].keys[spec_index(SECTIONS[s->sec].keys, key)];
}

/* Integer key; *present (may be NULL) says whether the description gave it. Absent keys without
 * a default leave *v unchanged. */
static uakd_status get_int(const section *s, const char *key, int *v, int *present) {
    int line, pres;
    const char *t = value_of(s, key, &line, &pres);
    if (present) *present = pres;
    if (!t) return UAKD_OK;
    long x;
    UAKD_TRY(parse_long(s, line, spec_of(s, key), t, &x));
    *v = (int)x;
    return UAKD_OK;
}

static uakd_status get_float(const section *s, const char *key, float *v, int *present) {
    int line, pres;
    const char *t = value_of(s, key, &line, &pres);
    if (present) *present = pres;
    if (!t) return UAKD_OK;
    double x;
    UAKD_TRY(parse_double(s, line, spec_of(s, key), t, &x));
    *v = (float)x;
    return UAKD_OK;
}

/* Comma-separated list of up to max numbers; ints when iv, floats when fv. */
static uakd_status get_list(const section *s, const char *key, int max, int *iv, float *fv, int *n) {
    int line, pres;
    const char *t = value_of(s, key, &line, &pres);
    *n = 0;
    if (!t) return UAKD_OK;
    const key_spec *k = spec_of(s, key);
    const char *p = t;
    for (;;) {
        if (*n == max) return bad_value(s, line, key, t, "too many entries");
        char item[64];
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) len--;
        while (len && (*p == ' ' || *p == '\t')) p++, len--;
        if (len == 0 || len >= sizeof item) return bad_value(s, line, key, t, "malformed list (expected a,b,c)");
        memcpy(item, p, len);
        item[len] = '\0';
        if (iv) {
            long x;
            UAKD_TRY(parse_long(s, line, k, item, &x));
            iv[*n] = (int)x;
        } else {
            double x;
            UAKD_TRY(parse_double(s, line, k, item, &x));
            fv[*n] = (float)x;
        }
        (*n)++;
        if (!comma) break;
        p = comma + 1;
    }
    return UAKD_OK;
}

static uakd_status get_enum(const section *s, const char *key, int *v, int *present) {
    int line, pres;
    const char *t = value_of(s, key, &line, &pres);
    if (present) *present = pres;
    if (!t) return UAKD_OK;
    const key_spec *k = spec_of(s, key);
    size_t n = 0;
    for (; k->choices[n]; n++)
        if (strcmp(t, k->choices[n]) == 0) {
            *v = (int)n;
            return UAKD_OK;
        }
    char hint[96], msg[256];
    suggest(hint, sizeof hint, t, k->choices, n);
    size_t len = (size_t)snprintf(msg, sizeof msg, "unknown value (one of");
    for (size_t i = 0; i < n && len < sizeof msg; i++) len += (size_t)snprintf(msg + len, sizeof msg - len, " %s", k->choices[i]);
    if (len < sizeof msg) snprintf(msg + len, sizeof msg - len, ")%s", hint);
    return bad_value(s, line, key, t, msg);
}

static uakd_status get_name(const section *s, char *dst) {
    int line, pres;
    const char *t = value_of(s, "name", &line, &pres);
    if (!t) return UAKD_OK;
    size_t n = strlen(t);
    if (n >= UAKD_NETDESC_MAX_NAME) return bad_value(s, line, "name", t, "longer than 63 characters");
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                 (c == '.' && i > 0 && i + 1 < n && t[i - 1] != '.');
        if (!ok) return bad_value(s, line, "name", t, "use letters, digits, '_' and single inner '.'");
    }
    memcpy(dst, t, n + 1);
    return UAKD_OK;
}

/* An error for a key that has no effect with the section's other settings. */
static uakd_status useless_key(const section *s, const char *key, const char *why) {
    int line, pres;
    value_of(s, key, &line, &pres);
    return uakd_fail(UAKD_EFORMAT, "%s:%d: [%s] key '%s' has no effect %s; remove it", s->label, line,
                     SECTIONS[s->sec].name, key, why);
}

static uakd_status build_conv(const section *s, uakd_layer_desc *l) {
    int act = 0, pad = 0, has_padding, bn = 0, has_bn, norm = 0, has_norm, has_ng, has_eps, has_mom, has_bias;
    UAKD_TRY(get_int(s, "filters", &l->filters, NULL));
    UAKD_TRY(get_int(s, "size", &l->size, NULL));
    UAKD_TRY(get_int(s, "stride", &l->stride, NULL));
    UAKD_TRY(get_int(s, "pad", &pad, NULL));
    UAKD_TRY(get_int(s, "padding", &l->padding, &has_padding));
    UAKD_TRY(get_int(s, "groups", &l->groups, NULL));
    UAKD_TRY(get_int(s, "batch_normalize", &bn, &has_bn));
    UAKD_TRY(get_enum(s, "norm", &norm, &has_norm));
    UAKD_TRY(get_enum(s, "activation", &act, NULL));
    if (has_padding && pad)
        return uakd_fail(UAKD_EFORMAT, "%s:%d: [convolutional] give either pad=1 (padding = size/2) or padding=N, "
                         "not both", s->label, s->line);
    if (!has_padding) l->padding = pad ? l->size / 2 : 0;
    if (has_bn && has_norm && (bn ? norm != UAKD_ND_NORM_BATCH : norm == UAKD_ND_NORM_BATCH))
        return uakd_fail(UAKD_EFORMAT, "%s:%d: [convolutional] batch_normalize=%d contradicts norm=%s", s->label,
                         s->line, bn, NORMS[norm]);
    l->norm = has_norm ? (uakd_netdesc_norm)norm : bn ? UAKD_ND_NORM_BATCH : UAKD_ND_NORM_NONE;
    l->activation = (uakd_netdesc_act)act;
    l->norm_groups = 32;
    l->norm_eps = 1e-5f;
    l->norm_momentum = 0.1f;
    UAKD_TRY(get_int(s, "norm_groups", &l->norm_groups, &has_ng));
    UAKD_TRY(get_float(s, "eps", &l->norm_eps, &has_eps));
    UAKD_TRY(get_float(s, "momentum", &l->norm_momentum, &has_mom));
    l->bias = l->norm == UAKD_ND_NORM_NONE;
    UAKD_TRY(get_int(s, "bias", &l->bias, &has_bias));
    if (has_ng && l->norm != UAKD_ND_NORM_GROUP) return useless_key(s, "norm_groups", "without norm=group");
    if (has_eps && l->norm == UAKD_ND_NORM_NONE) return useless_key(s, "eps", "without normalisation");
    if (has_mom && l->norm != UAKD_ND_NORM_BATCH) return useless_key(s, "momentum", "without batch normalisation");
    if (l->norm == UAKD_ND_NORM_NONE) {
        l->norm_groups = 0;
        l->norm_eps = 0;
    }
    if (l->norm != UAKD_ND_NORM_BATCH) l->norm_momentum = 0;
    if (l->norm != UAKD_ND_NORM_GROUP) l->norm_groups = 0;
    if (l->filters % l->groups)
        return uakd_fail(UAKD_EFORMAT, "%s:%d: [convolutional] filters=%d is not divisible by groups=%d", s->label,
                         s->line, l->filters, l->groups);
    if (l->norm == UAKD_ND_NORM_GROUP && l->filters % l->norm_groups)
        return uakd_fail(UAKD_EFORMAT, "%s:%d: [convolutional] filters=%d is not divisible by norm_groups=%d",
                         s->label, s->line, l->filters, l->norm_groups);
    return UAKD_OK;
}

/* Resolves a layer reference: negative = relative to layer i, else absolute; must be earlier. */
static uakd_status resolve_ref(const section *s, const char *key, int i, int v, int *abs_index) {
    int a = v < 0 ? i + v : v;
    if (a < 0 || a >= i)
        return uakd_fail(UAKD_EFORMAT, "%s:%d: [%s] %s=%d refers to layer %d, but layer %d can only use layers 0..%d",
                         s->label, s->line, SECTIONS[s->sec].name, key, v, a, i, i - 1);
    *abs_index = a;
    return UAKD_OK;
}

static uakd_status build_layer(const section *s, int index, uakd_layer_desc *l) {
    memset(l, 0, sizeof *l);
    l->type = (uakd_netdesc_type)SECTIONS[s->sec].type;
    l->line = s->line;
    UAKD_TRY(get_name(s, l->name));
    int act = 0, v = 0;
    switch (l->type) {
    case UAKD_ND_CONV: return build_conv(s, l);
    case UAKD_ND_MAXPOOL:
        UAKD_TRY(get_int(s, "size", &l->size, NULL));
        l->stride = l->size;
        UAKD_TRY(get_int(s, "stride", &l->stride, NULL));
        UAKD_TRY(get_int(s, "padding", &l->padding, NULL));
        if (2 * l->padding > l->size)
            return uakd_fail(UAKD_EFORMAT, "%s:%d: [maxpool] padding=%d is more than half of size=%d", s->label,
                             s->line, l->padding, l->size);
        return UAKD_OK;
    case UAKD_ND_UPSAMPLE: return get_int(s, "stride", &l->stride, NULL);
    case UAKD_ND_ROUTE: {
        int refs[UAKD_NETDESC_MAX_ROUTE];
        UAKD_TRY(get_list(s, "layers", UAKD_NETDESC_MAX_ROUTE, refs, NULL, &l->n_from));
        for (int k = 0; k < l->n_from; k++) UAKD_TRY(resolve_ref(s, "layers", index, refs[k], &l->from[k]));
        return UAKD_OK;
    }
    case UAKD_ND_SHORTCUT:
    case UAKD_ND_SCALE_CHANNELS:
        UAKD_TRY(get_int(s, "from", &v, NULL));
        if (l->type == UAKD_ND_SHORTCUT) UAKD_TRY(get_enum(s, "activation", &act, NULL));
        l->activation = (uakd_netdesc_act)act;
        l->n_from = 1;
        UAKD_TRY(resolve_ref(s, "from", index, v, &l->from[0]));
        if (l->from[0] == index - 1)
            return uakd_fail(UAKD_EFORMAT, "%s:%d: [%s] from=%d must name a layer before the previous one", s->label,
                             s->line, SECTIONS[s->sec].name, v);
        return UAKD_OK;
    case UAKD_ND_ACTIVATION:
        UAKD_TRY(get_enum(s, "activation", &act, NULL));
        l->activation = (uakd_netdesc_act)act;
        return UAKD_OK;
    case UAKD_ND_OUTPUT:
    case UAKD_ND_AVGPOOL: return UAKD_OK;
    }
    return UAKD_OK;
}

static uakd_status build_net(const section *s, uakd_netdesc_input *in) {
    UAKD_TRY(get_int(s, "width", &in->width, NULL));
    UAKD_TRY(get_int(s, "height", &in->height, NULL));
    UAKD_TRY(get_int(s, "channels", &in->channels, NULL));
    int nm, ns;
    UAKD_TRY(get_list(s, "mean", UAKD_NETDESC_MAX_CHANNELS, NULL, in->mean, &nm));
    UAKD_TRY(get_list(s, "std", UAKD_NETDESC_MAX_CHANNELS, NULL, in->std, &ns));
    if (!nm)
        for (int c = 0; c < in->channels; c++) in->mean[c] = 0;
    if (!ns)
        for (int c = 0; c < in->channels; c++) in->std[c] = 1;
    if ((nm && nm != in->channels) || (ns && ns != in->channels))
        return uakd_fail(UAKD_EFORMAT, "%s:%d: [net] mean and std need one value per channel (channels=%d, got %d "
                         "and %d)", s->label, s->line, in->channels, nm ? nm : in->channels, ns ? ns : in->channels);
    return UAKD_OK;
}

/* Checks required keys, then turns the finished section into [net] or a layer. */
static uakd_status finish_section(const section *s, uakd_netdesc *d) {
    if (s->sec < 0) return UAKD_OK;
    const key_spec *keys = SECTIONS[s->sec].keys;
    for (int i = 0; keys[i].key; i++)
        if (!keys[i].def && !s->raw[i])
            return uakd_fail(UAKD_EFORMAT, "%s:%d: [%s] is missing the required key '%s'", s->label, s->line,
                             SECTIONS[s->sec].name, keys[i].key);
    if (SECTIONS[s->sec].type == SEC_NET) return build_net(s, &d->input);
    if (d->n_layers == UAKD_NETDESC_MAX_LAYERS)
        return uakd_fail(UAKD_EFORMAT, "%s:%d: more than %d layers", s->label, s->line, UAKD_NETDESC_MAX_LAYERS);
    if (d->n_layers == d->cap_layers) {
        int cap = d->cap_layers ? 2 * d->cap_layers : 32;
        uakd_layer_desc *grown = realloc(d->layers, (size_t)cap * sizeof *grown);
        if (!grown) return uakd_fail(UAKD_ENOMEM, "%s: out of memory", s->label);
        d->layers = grown;
        d->cap_layers = cap;
    }
    uakd_layer_desc *l = &d->layers[d->n_layers];
    UAKD_TRY(build_layer(s, d->n_layers, l));
    if (l->name[0])
        for (int i = 0; i < d->n_layers; i++)
            if (strcmp(d->layers[i].name, l->name) == 0)
                return uakd_fail(UAKD_EFORMAT, "%s:%d: name '%s' is already used by layer %d (line %d)", s->label,
                                 s->line, l->name, i, d->layers[i].line);
    d->n_layers++;
    return UAKD_OK;
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) s[--n] = '\0';
    return s;
}

static uakd_status parse_line(char *line, int lineno, section *s, uakd_netdesc *d, int *seen_net) {
    const char *label = s->label;
    char *hash = strpbrk(line, "#;");
    if (hash) *hash = '\0';
    line = trim(line);
    if (!*line) return UAKD_OK;
    char hint[96];
    if (*line == '[') {
        size_t n = strlen(line);
        if (line[n - 1] != ']') return uakd_fail(UAKD_EFORMAT, "%s:%d: section header lacks its closing ']'", label, lineno);
        line[n - 1] = '\0';
        char *name = trim(line + 1);
        UAKD_TRY(finish_section(s, d));
        int sec = -1;
        const char *names[N_SECTIONS];
        for (size_t i = 0; i < N_SECTIONS; i++) {
            names[i] = SECTIONS[i].name;
            if (strcmp(name, SECTIONS[i].name) == 0) sec = (int)i;
        }
        if (sec < 0) {
            suggest(hint, sizeof hint, name, names, N_SECTIONS);
            return uakd_fail(UAKD_EFORMAT, "%s:%d: unknown section [%s]%s", label, lineno, name, hint);
        }
        if (SECTIONS[sec].type == SEC_NET && *seen_net)
            return uakd_fail(UAKD_EFORMAT, "%s:%d: a second [net] section", label, lineno);
        if (SECTIONS[sec].type != SEC_NET && !*seen_net)
            return uakd_fail(UAKD_EFORMAT, "%s:%d: [%s] before [net]: the description must start with [net]", label,
                             lineno, name);
        *seen_net = 1;
        memset(s->raw, 0, sizeof s->raw);
        s->sec = sec;
        s->line = lineno;
        return UAKD_OK;
    }
    char *eq = strchr(line, '=');
    if (!eq) return uakd_fail(UAKD_EFORMAT, "%s:%d: expected key=value or [section], got \"%.40s\"", label, lineno, line);
    if (s->sec < 0) return uakd_fail(UAKD_EFORMAT, "%s:%d: key=value before the first section", label, lineno);
    *eq = '\0';
    char *key = trim(line), *value = trim(eq + 1);
    if (!*key) return uakd_fail(UAKD_EFORMAT, "%s:%d: a key is missing before '='", label, lineno);
    const key_spec *keys = SECTIONS[s->sec].keys;
    int k = spec_index(keys, key);
    if (k < 0) {
        const char *names[MAX_KEYS];
        size_t n = 0;
        for (; keys[n].key; n++) names[n] = keys[n].key;
        suggest(hint, sizeof hint, key, names, n);
        return uakd_fail(UAKD_EFORMAT, "%s:%d: unknown key '%s' in [%s]%s", label, lineno, key, SECTIONS[s->sec].name,
                         hint);
    }
    if (s->raw[k])
        return uakd_fail(UAKD_EFORMAT, "%s:%d: key '%s' given twice in this [%s] (first at line %d)", label, lineno,
                         key, SECTIONS[s->sec].name, s->raw_line[k]);
    if (!*value) return uakd_fail(UAKD_EFORMAT, "%s:%d: key '%s' has an empty value", label, lineno, key);
    s->raw[k] = value;
    s->raw_line[k] = lineno;
    return UAKD_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* shapes and counts */

static uakd_status layer_error(const char *label, const uakd_layer_desc *l, int i, const char *what) {
    return uakd_fail(UAKD_EFORMAT, "%s:%d: layer %d [%s]: %s", label, l->line, i, uakd_netdesc_type_name(l->type), what);
}

static uakd_status infer(uakd_netdesc *d, const char *label) {
    d->total_params = d->total_buffers = 0;
    d->total_flops = 0;
    int c = d->input.channels, h = d->input.height, w = d->input.width;
    char msg[200];
    for (int i = 0; i < d->n_layers; i++) {
        uakd_layer_desc *l = &d->layers[i];
        l->in_c = c;
        l->in_h = h;
        l->in_w = w;
        l->params = l->buffers = 0;
        l->flops = 0;
        switch (l->type) {
        case UAKD_ND_CONV:
        case UAKD_ND_MAXPOOL: {
            int64_t oh = ((int64_t)h + 2 * l->padding - l->size), ow = ((int64_t)w + 2 * l->padding - l->size);
            if (oh < 0 || ow < 0) {
                snprintf(msg, sizeof msg, "input %dx%d is smaller than the %dx%d window", h, w, l->size, l->size);
                return layer_error(label, l, i, msg);
            }
            h = (int)(oh / l->stride + 1);
            w = (int)(ow / l->stride + 1);
            if (l->type == UAKD_ND_MAXPOOL) break;
            if (c % l->groups) {
                snprintf(msg, sizeof msg, "%d input channels are not divisible by groups=%d", c, l->groups);
                return layer_error(label, l, i, msg);
            }
            int64_t fan_in = (int64_t)(c / l->groups) * l->size * l->size;
            l->params = l->filters * fan_in + (l->bias ? l->filters : 0) + (l->norm ? 2 * l->filters : 0);
            l->buffers = l->norm == UAKD_ND_NORM_BATCH ? 2 * l->filters : 0;
            c = l->filters;
            l->flops = 2.0 * (double)fan_in * c * h * w;
            break;
        }
        case UAKD_ND_UPSAMPLE:
            if ((int64_t)h * l->stride > 1 << 20 || (int64_t)w * l->stride > 1 << 20)
                return layer_error(label, l, i, "output larger than 2^20 pixels per side");
            h *= l->stride;
            w *= l->stride;
            break;
        case UAKD_ND_ROUTE: {
            const uakd_layer_desc *f = &d->layers[l->from[0]];
            h = f->out_h;
            w = f->out_w;
            int64_t sum = 0;
            for (int k = 0; k < l->n_from; k++) {
                f = &d->layers[l->from[k]];
                if (f->out_h != h || f->out_w != w) {
                    snprintf(msg, sizeof msg, "layer %d is %dx%d but layer %d is %dx%d: concatenation needs equal "
                             "sizes", l->from[0], h, w, l->from[k], f->out_h, f->out_w);
                    return layer_error(label, l, i, msg);
                }
                sum += f->out_c;
            }
            if (sum > 1 << 20) return layer_error(label, l, i, "more than 2^20 channels");
            c = (int)sum;
            break;
        }
        case UAKD_ND_SHORTCUT: {
            const uakd_layer_desc *f = &d->layers[l->from[0]];
            if (f->out_c != c || f->out_h != h || f->out_w != w) {
                snprintf(msg, sizeof msg, "adds layer %d (%dx%dx%d) to layer %d (%dx%dx%d): shapes differ", l->from[0],
                         f->out_c, f->out_h, f->out_w, i - 1, c, h, w);
                return layer_error(label, l, i, msg);
            }
            l->flops = (double)c * h * w;
            break;
        }
        case UAKD_ND_AVGPOOL:
            l->flops = (double)c * h * w;
            h = w = 1;
            break;
        case UAKD_ND_SCALE_CHANNELS: {
            const uakd_layer_desc *f = &d->layers[l->from[0]];
            if (h != 1 || w != 1 || c != f->out_c) {
                snprintf(msg, sizeof msg, "scales layer %d (%dx%dx%d) by the previous layer, which is %dx%dx%d, not "
                         "%dx1x1", l->from[0], f->out_c, f->out_h, f->out_w, c, h, w, f->out_c);
                return layer_error(label, l, i, msg);
            }
            c = f->out_c;
            h = f->out_h;
            w = f->out_w;
            l->flops = (double)c * h * w;
            break;
        }
        case UAKD_ND_ACTIVATION:
        case UAKD_ND_OUTPUT: break;
        }
        l->out_c = c;
        l->out_h = h;
        l->out_w = w;
        d->total_params += l->params;
        d->total_buffers += l->buffers;
        d->total_flops += l->flops;
    }
    return UAKD_OK;
}

uakd_status uakd_netdesc_set_input_size(uakd_netdesc *d, int width, int height) {
    if (width < 1 || height < 1 || width > 65536 || height > 65536)
        return uakd_fail(UAKD_EINVAL, "input size %dx%d out of range 1..65536", width, height);
    int ow = d->input.width, oh = d->input.height;
    d->input.width = width;
    d->input.height = height;
    uakd_status st = infer(d, "network description");
    if (st != UAKD_OK) {
        d->input.width = ow;
        d->input.height = oh;
        infer(d, "");
        return uakd_fail_context(st, "at input %dx%d: ", width, height);
    }
    return UAKD_OK;
}

uakd_status uakd_netdesc_parse(const char *text, size_t len, const char *label, uakd_netdesc **out) {
    *out = NULL;
    if (!label) label = "network description";
    if (len > UAKD_NETDESC_MAX_TEXT)
        return uakd_fail(UAKD_EFORMAT, "%s: %zu bytes, more than the %zu allowed", label, len, UAKD_NETDESC_MAX_TEXT);
    if (memchr(text, '\0', len)) return uakd_fail(UAKD_EFORMAT, "%s: contains a NUL byte (not a text file?)", label);
    char *buf = malloc(len + 1);
    uakd_netdesc *d = calloc(1, sizeof *d);
    if (!buf || !d) {
        free(buf);
        uakd_netdesc_free(d);
        return uakd_fail(UAKD_ENOMEM, "%s: out of memory", label);
    }
    memcpy(buf, text, len);
    buf[len] = '\0';
    section s = {.label = label, .sec = -1};
    int seen_net = 0, lineno = 1;
    uakd_status st = UAKD_OK;
    for (char *p = buf; st == UAKD_OK && p; lineno++) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = '\0';
        st = parse_line(p, lineno, &s, d, &seen_net);
        p = nl ? nl + 1 : NULL;
    }
    if (st == UAKD_OK) st = finish_section(&s, d);
    if (st == UAKD_OK && !seen_net) st = uakd_fail(UAKD_EFORMAT, "%s: no [net] section", label);
    if (st == UAKD_OK && d->n_layers == 0) st = uakd_fail(UAKD_EFORMAT, "%s: no layers after [net]", label);
    if (st == UAKD_OK) st = infer(d, label);
    free(buf);
    if (st != UAKD_OK) {
        uakd_netdesc_free(d);
        return st;
    }
    *out = d;
    return UAKD_OK;
}

uakd_status uakd_netdesc_load(const char *path, uakd_netdesc **out) {
    *out = NULL;
    void *text;
    size_t len;
    UAKD_TRY(uakd_read_file(path, UAKD_NETDESC_MAX_TEXT, &text, &len));
    uakd_status st = uakd_netdesc_parse(text, len, path, out);
    free(text);
    return st;
}

void uakd_netdesc_free(uakd_netdesc *d) {
    if (!d) return;
    free(d->layers);
    free(d);
}

int uakd_netdesc_find_output(const uakd_netdesc *d, const char *name) {
    for (int i = 0; i < d->n_layers; i++)
        if (d->layers[i].type == UAKD_ND_OUTPUT && strcmp(d->layers[i].name, name) == 0) return i;
    return -1;
}

void uakd_netdesc_layer_prefix(const uakd_netdesc *d, int i, char *buf, size_t cap) {
    if (i >= 0 && i < d->n_layers && d->layers[i].name[0]) snprintf(buf, cap, "%s", d->layers[i].name);
    else snprintf(buf, cap, "layers.%d", i);
}

/* ------------------------------------------------------------------------------------------ */
/* summary and canonical form */

/* Closes an open_memstream stream; *buf is only final after fclose. */
static uakd_status finish_stream(FILE *f, char **buf, char **text) {
    *text = NULL;
    if (!f) return uakd_fail(UAKD_ENOMEM, "out of memory");
    if (fclose(f) != 0) {
        free(*buf);
        return uakd_fail(UAKD_ENOMEM, "out of memory");
    }
    *text = *buf;
    return UAKD_OK;
}

uakd_status uakd_netdesc_summary(const uakd_netdesc *d, char **text) {
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f) return finish_stream(f, &buf, text);
    fprintf(f, "layer  type            detail              input            output           params      MFLOPs\n");
    for (int i = 0; i < d->n_layers; i++) {
        const uakd_layer_desc *l = &d->layers[i];
        char detail[64] = "";
        switch (l->type) {
        case UAKD_ND_CONV:
            snprintf(detail, sizeof detail, "%d %dx%d/%d%s %s", l->filters, l->size, l->size, l->stride,
                     l->norm == UAKD_ND_NORM_BATCH ? " bn" : l->norm == UAKD_ND_NORM_GROUP ? " gn" : "",
                     ACTS[l->activation]);
            break;
        case UAKD_ND_MAXPOOL: snprintf(detail, sizeof detail, "%dx%d/%d", l->size, l->size, l->stride); break;
        case UAKD_ND_UPSAMPLE: snprintf(detail, sizeof detail, "x%d", l->stride); break;
        case UAKD_ND_ROUTE:
        case UAKD_ND_SHORTCUT:
        case UAKD_ND_SCALE_CHANNELS: {
            size_t n = 0;
            for (int k = 0; k < l->n_from && n < sizeof detail; k++)
                n += (size_t)snprintf(detail + n, sizeof detail - n, k ? ",%d" : "%d", l->from[k]);
            break;
        }
        case UAKD_ND_ACTIVATION: snprintf(detail, sizeof detail, "%s", ACTS[l->activation]); break;
        case UAKD_ND_OUTPUT: snprintf(detail, sizeof detail, "%s", l->name); break;
        case UAKD_ND_AVGPOOL: snprintf(detail, sizeof detail, "global"); break;
        }
        char in[32], outs[32];
        snprintf(in, sizeof in, "%dx%dx%d", l->in_c, l->in_h, l->in_w);
        snprintf(outs, sizeof outs, "%dx%dx%d", l->out_c, l->out_h, l->out_w);
        fprintf(f, "%5d  %-14s  %-18s  %-15s  %-15s  %10lld  %10.3f\n", i, uakd_netdesc_type_name(l->type), detail, in,
                outs, (long long)l->params, l->flops / 1e6);
    }
    fprintf(f, "total: %d layers, %lld parameters (%.3f M), %lld buffers, %.3f GFLOPs at %dx%d\n", d->n_layers,
            (long long)d->total_params, d->total_params / 1e6, (long long)d->total_buffers, d->total_flops / 1e9,
            d->input.width, d->input.height);
    return finish_stream(f, &buf, text);
}

/* The canonical text; without the input width and height when with_size is 0. */
static uakd_status write_canonical(const uakd_netdesc *d, int with_size, char **text) {
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f) return finish_stream(f, &buf, text);
    const uakd_netdesc_input *in = &d->input;
    fprintf(f, "[net]\n");
    if (with_size) fprintf(f, "width=%d\nheight=%d\n", in->width, in->height);
    fprintf(f, "channels=%d\nmean=", in->channels);
    for (int c = 0; c < in->channels; c++) fprintf(f, c ? ",%.9g" : "%.9g", in->mean[c]);
    fprintf(f, "\nstd=");
    for (int c = 0; c < in->channels; c++) fprintf(f, c ? ",%.9g" : "%.9g", in->std[c]);
    fprintf(f, "\n");
    for (int i = 0; i < d->n_layers; i++) {
        const uakd_layer_desc *l = &d->layers[i];
        fprintf(f, "\n[%s]\n", uakd_netdesc_type_name(l->type));
        if (l->name[0]) fprintf(f, "name=%s\n", l->name);
        switch (l->type) {
        case UAKD_ND_CONV:
            fprintf(f, "filters=%d\nsize=%d\nstride=%d\npadding=%d\ngroups=%d\nnorm=%s\n", l->filters, l->size,
                    l->stride, l->padding, l->groups, NORMS[l->norm]);
            if (l->norm == UAKD_ND_NORM_GROUP) fprintf(f, "norm_groups=%d\n", l->norm_groups);
            if (l->norm != UAKD_ND_NORM_NONE) fprintf(f, "eps=%.9g\n", l->norm_eps);
            if (l->norm == UAKD_ND_NORM_BATCH) fprintf(f, "momentum=%.9g\n", l->norm_momentum);
            fprintf(f, "bias=%d\nactivation=%s\n", l->bias, ACTS[l->activation]);
            break;
        case UAKD_ND_MAXPOOL:
            fprintf(f, "size=%d\nstride=%d\npadding=%d\n", l->size, l->stride, l->padding);
            break;
        case UAKD_ND_UPSAMPLE: fprintf(f, "stride=%d\n", l->stride); break;
        case UAKD_ND_ROUTE:
            fprintf(f, "layers=");
            for (int k = 0; k < l->n_from; k++) fprintf(f, k ? ",%d" : "%d", l->from[k]);
            fprintf(f, "\n");
            break;
        case UAKD_ND_SHORTCUT: fprintf(f, "from=%d\nactivation=%s\n", l->from[0], ACTS[l->activation]); break;
        case UAKD_ND_ACTIVATION: fprintf(f, "activation=%s\n", ACTS[l->activation]); break;
        case UAKD_ND_SCALE_CHANNELS: fprintf(f, "from=%d\n", l->from[0]); break;
        case UAKD_ND_OUTPUT:
        case UAKD_ND_AVGPOOL: break;
        }
    }
    return finish_stream(f, &buf, text);
}

uakd_status uakd_netdesc_canonical(const uakd_netdesc *d, char **text) { return write_canonical(d, 1, text); }

uakd_status uakd_netdesc_hash(const uakd_netdesc *d, uint64_t *hash) {
    char *text;
    UAKD_TRY(write_canonical(d, 0, &text));
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) h = (h ^ *p) * 0x100000001b3ull;
    free(text);
    *hash = h;
    return UAKD_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* architecture metadata in safetensors files */

static void format_floats(char *buf, size_t cap, const float *v, int n) {
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && len < cap; i++) len += (size_t)snprintf(buf + len, cap - len, i ? ",%.9g" : "%.9g", v[i]);
}

uakd_status uakd_netdesc_put_metadata(const uakd_netdesc *d, uakd_safetensors_writer *w) {
    char *canon;
    UAKD_TRY(uakd_netdesc_canonical(d, &canon));
    uint64_t h;
    uakd_status st = uakd_netdesc_hash(d, &h);
    char buf[UAKD_NETDESC_MAX_CHANNELS * 20 + 32];
    if (st == UAKD_OK) st = uakd_safetensors_writer_set_meta(w, "arch", canon);
    free(canon);
    if (st == UAKD_OK) {
        snprintf(buf, sizeof buf, "%016llx", (unsigned long long)h);
        st = uakd_safetensors_writer_set_meta(w, "arch_hash", buf);
    }
    if (st == UAKD_OK) {
        snprintf(buf, sizeof buf, "%dx%dx%d", d->input.width, d->input.height, d->input.channels);
        st = uakd_safetensors_writer_set_meta(w, "input_size", buf);
    }
    if (st == UAKD_OK) {
        format_floats(buf, sizeof buf, d->input.mean, d->input.channels);
        st = uakd_safetensors_writer_set_meta(w, "input_mean", buf);
    }
    if (st == UAKD_OK) {
        format_floats(buf, sizeof buf, d->input.std, d->input.channels);
        st = uakd_safetensors_writer_set_meta(w, "input_std", buf);
    }
    return st;
}

uakd_status uakd_netdesc_check_metadata(const uakd_netdesc *d, const uakd_safetensors *st) {
    uint64_t h;
    UAKD_TRY(uakd_netdesc_hash(d, &h));
    char mine[17];
    snprintf(mine, sizeof mine, "%016llx", (unsigned long long)h);
    const char *theirs = uakd_safetensors_meta(st, "arch_hash");
    if (!theirs)
        return uakd_fail(UAKD_EFORMAT, "the file records no architecture (metadata \"arch_hash\"); this network's "
                         "hash is %s", mine);
    if (strcmp(theirs, mine) != 0)
        return uakd_fail(UAKD_EFORMAT, "the file was written for another architecture (arch_hash %.16s, this "
                         "network %s); its metadata \"arch\" holds that description", theirs, mine);
    return UAKD_OK;
}
