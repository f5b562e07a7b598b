/* JSON-lines training logs -> series, training-curve plots, and accuracy-vs-threshold curves.
 *
 * Log: one object per line, "step" an integer in [0, 2^53], every other value a finite number or
 * null (NaN). Series k holds the values of key k in line order, NaN where a line lacks the key.
 * Accuracy curve: rate(t) = 100 * #{j : err_j < t} / n at t_i = max_frac * i / (npts - 1). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uakd/report.h"

enum { MAX_KEYS = 64, MAX_KEY_LEN = 64, MAX_LINE = 1 << 20 };

typedef struct log_builder {
    int rows, cap, nkeys;
    char *keys[MAX_KEYS];
    double *step;
    double *cols[MAX_KEYS];
} log_builder;

static void builder_free(log_builder *b) {
    for (int k = 0; k < b->nkeys; k++) free(b->keys[k]), free(b->cols[k]);
    free(b->step);
}

static uakd_status grow(log_builder *b, const char *path) {
    if (b->rows < b->cap) return UAKD_OK;
    if (b->cap > (1 << 26)) return uakd_fail(UAKD_EFORMAT, "%s: more than %d log lines", path, 1 << 26);
    int cap = b->cap ? 2 * b->cap : 256;
    double *s = realloc(b->step, (size_t)cap * sizeof *s);
    if (!s) return uakd_fail(UAKD_ENOMEM, "%s: out of memory reading the log", path);
    b->step = s;
    for (int k = 0; k < b->nkeys; k++) {
        double *c = realloc(b->cols[k], (size_t)cap * sizeof *c);
        if (!c) return uakd_fail(UAKD_ENOMEM, "%s: out of memory reading the log", path);
        b->cols[k] = c;
    }
    b->cap = cap;
    return UAKD_OK;
}

static uakd_status add_key(log_builder *b, const char *name, const char *path, long line, int *out) {
    if (b->nkeys == MAX_KEYS)
        return uakd_fail(UAKD_EFORMAT, "%s:%ld: key \"%s\" would be key %d; at most %d keys are supported", path,
                         line, name, MAX_KEYS + 1, MAX_KEYS);
    size_t n = strlen(name);
    if (n == 0 || n > MAX_KEY_LEN)
        return uakd_fail(UAKD_EFORMAT, "%s:%ld: key \"%s\" must have 1..%d characters", path, line, name, MAX_KEY_LEN);
    char *s = strdup(name);
    double *c = malloc((size_t)(b->cap ? b->cap : 1) * sizeof *c);
    if (!s || !c) {
        free(s), free(c);
        return uakd_fail(UAKD_ENOMEM, "%s: out of memory reading the log", path);
    }
    for (int r = 0; r < b->rows; r++) c[r] = NAN;
    b->keys[b->nkeys] = s, b->cols[b->nkeys] = c;
    *out = b->nkeys++;
    return UAKD_OK;
}

static int find_key(char *const *keys, int n, const char *name) {
    for (int k = 0; k < n; k++)
        if (!strcmp(keys[k], name)) return k;
    return -1;
}

static int blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') return 0;
    return 1;
}

/* Parses one line into row b->rows (already allocated). */
static uakd_status parse_line(log_builder *b, const char *text, size_t len, const char *path, long line) {
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!o || !cJSON_IsObject(o) || !blank(end, len - (size_t)(end - text))) {
        cJSON_Delete(o);
        return uakd_fail(UAKD_EFORMAT, "%s:%ld: not a JSON object (a truncated or corrupted line?)", path, line);
    }
    uakd_status st = UAKD_OK;
    int seen[MAX_KEYS] = {0}, have_step = 0, r = b->rows;
    for (int k = 0; k < b->nkeys; k++) b->cols[k][r] = NAN;
    for (const cJSON *it = o->child; it && st == UAKD_OK; it = it->next) {
        const char *name = it->string;
        if (!strcmp(name, "step")) {
            double v = it->valuedouble;
            if (have_step++ || !cJSON_IsNumber(it) || !(v >= 0 && v <= 9007199254740992.0) || v != floor(v))
                st = uakd_fail(UAKD_EFORMAT, "%s:%ld: \"step\" must appear once as an integer >= 0", path, line);
            else b->step[r] = v;
            continue;
        }
        if (!cJSON_IsNumber(it) && !cJSON_IsNull(it)) {
            st = uakd_fail(UAKD_EFORMAT, "%s:%ld: key \"%s\" is not a number (training logs hold numbers or null)",
                           path, line, name);
            break;
        }
        double v = cJSON_IsNull(it) ? NAN : it->valuedouble;
        if (cJSON_IsNumber(it) && !isfinite(v)) {
            st = uakd_fail(UAKD_EFORMAT, "%s:%ld: key \"%s\" is out of range; write null for a non-finite value",
                           path, line, name);
            break;
        }
        int k = find_key(b->keys, b->nkeys, name);
        if (k < 0 && (st = add_key(b, name, path, line, &k)) != UAKD_OK) break;
        if (seen[k]++) {
            st = uakd_fail(UAKD_EFORMAT, "%s:%ld: key \"%s\" appears twice", path, line, name);
            break;
        }
        b->cols[k][r] = v;
    }
    if (st == UAKD_OK && !have_step) st = uakd_fail(UAKD_EFORMAT, "%s:%ld: no \"step\" key", path, line);
    cJSON_Delete(o);
    if (st == UAKD_OK) b->rows++;
    return st;
}

/* Moves the builder's columns into out (nkeys x rows, series-major). */
static uakd_status finish(log_builder *b, const char *path, uakd_train_log *out) {
    if (b->rows == 0) return uakd_fail(UAKD_EFORMAT, "%s: the log has no lines; has training started?", path);
    double *values = malloc((size_t)(b->nkeys ? b->nkeys : 1) * b->rows * sizeof *values);
    char **keys = calloc((size_t)(b->nkeys ? b->nkeys : 1), sizeof *keys);
    if (!values || !keys) {
        free(values), free(keys);
        return uakd_fail(UAKD_ENOMEM, "%s: out of memory reading the log", path);
    }
    for (int k = 0; k < b->nkeys; k++) {
        memcpy(values + (size_t)k * b->rows, b->cols[k], (size_t)b->rows * sizeof *values);
        free(b->cols[k]);
        keys[k] = b->keys[k];
    }
    out->rows = b->rows, out->nkeys = b->nkeys, out->keys = keys, out->step = b->step, out->values = values;
    b->nkeys = 0, b->step = NULL;
    return UAKD_OK;
}

uakd_status uakd_train_log_read(const char *path, uakd_train_log *out) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return uakd_fail(UAKD_EIO, "%s: cannot open training log (%s)", path, strerror(errno));
    log_builder b = {0};
    char *buf = NULL;
    size_t bufcap = 0;
    long line = 0;
    ssize_t n;
    uakd_status st = UAKD_OK;
    while (st == UAKD_OK && (n = getline(&buf, &bufcap, f)) >= 0) {
        line++;
        if (n > MAX_LINE) st = uakd_fail(UAKD_EFORMAT, "%s:%ld: line longer than %d bytes", path, line, MAX_LINE);
        else if (memchr(buf, '\0', (size_t)n)) st = uakd_fail(UAKD_EFORMAT, "%s:%ld: NUL byte in the line", path, line);
        else if (blank(buf, (size_t)n)) continue;
        else if ((st = grow(&b, path)) == UAKD_OK) st = parse_line(&b, buf, (size_t)n, path, line);
    }
    if (st == UAKD_OK && ferror(f)) st = uakd_fail(UAKD_EIO, "%s: read error after line %ld", path, line);
    free(buf);
    fclose(f);
    if (st == UAKD_OK) st = finish(&b, path, out);
    builder_free(&b);
    return st;
}

void uakd_train_log_free(uakd_train_log *log) {
    for (int k = 0; k < log->nkeys; k++) free(log->keys[k]);
    free(log->keys);
    free(log->step);
    free(log->values);
    memset(log, 0, sizeof *log);
}

int uakd_train_log_key(const uakd_train_log *log, const char *key) { return find_key(log->keys, log->nkeys, key); }

/* Keys that are logged beside the losses but are not losses. */
static int is_not_loss(const char *key) {
    return !strcmp(key, "lr") || !strcmp(key, "img_s") || !strcmp(key, "epoch") || !strcmp(key, "time_s");
}

uakd_status uakd_plot_train_log(const uakd_train_log *log, const char *const *keys, int nkeys,
                                const uakd_plot_opts *o, uakd_image *out) {
    uakd_plot_series s[MAX_KEYS];
    int ns = 0;
    if (keys) {
        if (nkeys < 1 || nkeys > MAX_KEYS)
            return uakd_fail(UAKD_EINVAL, "training curves: %d keys asked for, expected 1..%d", nkeys, MAX_KEYS);
        for (int i = 0; i < nkeys; i++) {
            int k = uakd_train_log_key(log, keys[i]);
            if (k < 0) return uakd_fail(UAKD_EINVAL, "training curves: the log has no key \"%s\"", keys[i]);
            s[ns++] = (uakd_plot_series){log->keys[k], log->step, log->values + (size_t)k * log->rows, log->rows};
        }
    } else {
        for (int k = 0; k < log->nkeys; k++)
            if (!is_not_loss(log->keys[k]))
                s[ns++] = (uakd_plot_series){log->keys[k], log->step, log->values + (size_t)k * log->rows, log->rows};
        if (ns == 0) return uakd_fail(UAKD_EINVAL, "training curves: the log has no loss keys to plot");
    }
    uakd_plot_opts def = {0};
    def.title = "Training curves", def.xlabel = "step", def.ylabel = "loss", def.log_y = 1;
    return uakd_plot_lines(o ? o : &def, s, ns, out, NULL);
}

uakd_status uakd_accuracy_curve(const double *err, long n, int npts, double max_frac, double *thr, double *rate) {
    if (n < 1 || !err || npts < 2 || !(max_frac > 0 && isfinite(max_frac)))
        return uakd_fail(UAKD_EINVAL, "accuracy curve: needs n >= 1 errors (got %ld), npts >= 2 (got %d) and a "
                         "finite max_frac > 0 (got %g)", n, npts, max_frac);
    for (int i = 0; i < npts; i++) {
        thr[i] = max_frac * i / (npts - 1);
        long pass = 0;
        for (long j = 0; j < n; j++) pass += err[j] < thr[i];
        rate[i] = 100.0 * pass / n;
    }
    return UAKD_OK;
}
