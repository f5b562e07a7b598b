/* Markdown output: a growable string, tables padded to column width, and a report file with PNG
 * images beside it.
 *
 * A table column's width is the largest cell width in characters (UTF-8 code points, at least 3);
 * the alignment row is ":--" (left), "--:" (right) or ":-:" (centre) stretched to that width.
 * Files are replaced atomically through uakd/fileio.h (temp file, fsync, rename). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "uakd/fileio.h"
#include "uakd/report.h"

/* ---- strbuf ---- */

static uakd_status reserve(uakd_strbuf *b, size_t extra) {
    if (extra > ((size_t)1 << 40) - b->len) return uakd_fail(UAKD_ENOMEM, "string buffer: %zu bytes is too large", extra);
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return UAKD_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) return uakd_fail(UAKD_ENOMEM, "string buffer: out of memory growing to %zu bytes", cap);
    b->s = s, b->cap = cap;
    return UAKD_OK;
}

uakd_status uakd_strbuf_append(uakd_strbuf *b, const char *text) {
    size_t n = strlen(text);
    UAKD_TRY(reserve(b, n));
    memcpy(b->s + b->len, text, n + 1);
    b->len += n;
    return UAKD_OK;
}

static uakd_status strbuf_vprintf(uakd_strbuf *b, const char *fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) return uakd_fail(UAKD_EINVAL, "string buffer: bad format \"%s\"", fmt);
    UAKD_TRY(reserve(b, (size_t)n));
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return UAKD_OK;
}

uakd_status uakd_strbuf_printf(uakd_strbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    uakd_status st = strbuf_vprintf(b, fmt, ap);
    va_end(ap);
    return st;
}

void uakd_strbuf_free(uakd_strbuf *b) {
    free(b->s);
    b->s = NULL, b->len = b->cap = 0;
}

/* ---- tables ---- */

enum { MAX_COLS = 64 };

struct uakd_md_table {
    int ncols, rows, col; /* col: next cell of the current row */
    int cap_rows;
    uakd_align align[MAX_COLS];
    char **cells; /* (rows + 1) x ncols, row 0 the header; NULL = empty */
};

/* A copy of text with '|' escaped and line breaks turned into spaces. */
static char *cell_copy(const char *text) {
    size_t n = 0;
    for (const char *p = text; *p; p++) n += *p == '|' ? 2 : 1;
    char *s = malloc(n + 1), *q = s;
    if (!s) return NULL;
    for (const char *p = text; *p; p++) {
        if (*p == '|') *q++ = '\\';
        *q++ = *p == '\n' || *p == '\r' ? ' ' : *p;
    }
    *q = '\0';
    return s;
}

uakd_status uakd_md_table_new(int ncols, const char *const *header, uakd_md_table **out) {
    *out = NULL;
    if (ncols < 1 || ncols > MAX_COLS || !header)
        return uakd_fail(UAKD_EINVAL, "Markdown table: %d columns, expected 1..%d with a header", ncols, MAX_COLS);
    uakd_md_table *t = calloc(1, sizeof *t);
    if (!t) return uakd_fail(UAKD_ENOMEM, "Markdown table: out of memory");
    t->ncols = ncols, t->col = ncols, t->cap_rows = 8;
    t->cells = calloc((size_t)(t->cap_rows + 1) * ncols, sizeof *t->cells);
    if (!t->cells) {
        free(t);
        return uakd_fail(UAKD_ENOMEM, "Markdown table: out of memory");
    }
    for (int c = 0; c < ncols; c++)
        if (!header[c] || !(t->cells[c] = cell_copy(header[c]))) {
            uakd_md_table_free(t);
            return uakd_fail(header[c] ? UAKD_ENOMEM : UAKD_EINVAL, "Markdown table: header cell %d %s", c,
                             header[c] ? "could not be copied (out of memory)" : "is NULL");
        }
    *out = t;
    return UAKD_OK;
}

void uakd_md_table_free(uakd_md_table *t) {
    if (!t) return;
    for (long i = 0; i < (long)(t->rows + 1) * t->ncols; i++) free(t->cells[i]);
    free(t->cells);
    free(t);
}

uakd_status uakd_md_table_align(uakd_md_table *t, int col, uakd_align a) {
    if (col < 0 || col >= t->ncols || (a != UAKD_ALIGN_LEFT && a != UAKD_ALIGN_RIGHT && a != UAKD_ALIGN_CENTER))
        return uakd_fail(UAKD_EINVAL, "Markdown table: column %d (of %d) or alignment %d is out of range", col,
                         t->ncols, (int)a);
    t->align[col] = a;
    return UAKD_OK;
}

uakd_status uakd_md_table_row(uakd_md_table *t) {
    if (t->rows == t->cap_rows) {
        if (t->cap_rows > 1 << 24) return uakd_fail(UAKD_ENOMEM, "Markdown table: too many rows");
        size_t old = (size_t)(t->cap_rows + 1) * t->ncols, cap = (size_t)(2 * t->cap_rows + 1) * t->ncols;
        char **cells = realloc(t->cells, cap * sizeof *cells);
        if (!cells) return uakd_fail(UAKD_ENOMEM, "Markdown table: out of memory adding a row");
        memset(cells + old, 0, (cap - old) * sizeof *cells);
        t->cells = cells, t->cap_rows *= 2;
    }
    t->rows++, t->col = 0;
    return UAKD_OK;
}

uakd_status uakd_md_table_text(uakd_md_table *t, const char *text) {
    if (t->rows == 0 || t->col >= t->ncols)
        return uakd_fail(UAKD_EINVAL, "Markdown table: no room for cell \"%s\" (%s)", text ? text : "",
                         t->rows ? "row already has every column" : "call uakd_md_table_row first");
    if (!text) return uakd_fail(UAKD_EINVAL, "Markdown table: NULL cell text");
    char *s = cell_copy(text);
    if (!s) return uakd_fail(UAKD_ENOMEM, "Markdown table: out of memory");
    t->cells[(size_t)t->rows * t->ncols + t->col++] = s;
    return UAKD_OK;
}

static int clamp_prec(int prec) { return prec < 0 ? 0 : prec > 12 ? 12 : prec; }

uakd_status uakd_md_table_num(uakd_md_table *t, double v, int prec) {
    char buf[64];
    if (isfinite(v)) snprintf(buf, sizeof buf, "%.*f", clamp_prec(prec), v);
    else snprintf(buf, sizeof buf, "-");
    return uakd_md_table_text(t, buf);
}

uakd_status uakd_md_table_pm(uakd_md_table *t, double mean, double spread, int prec) {
    char buf[128];
    if (isfinite(mean) && isfinite(spread))
        snprintf(buf, sizeof buf, "%.*f \xc2\xb1 %.*f", clamp_prec(prec), mean, clamp_prec(prec), spread);
    else snprintf(buf, sizeof buf, "-");
    return uakd_md_table_text(t, buf);
}

/* Characters (UTF-8 code points) in s. */
static size_t text_width(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static uakd_status pad(uakd_strbuf *b, size_t n, char ch) {
    UAKD_TRY(reserve(b, n));
    memset(b->s + b->len, ch, n);
    b->len += n;
    b->s[b->len] = '\0';
    return UAKD_OK;
}

uakd_status uakd_md_table_format(const uakd_md_table *t, uakd_strbuf *out) {
    size_t width[MAX_COLS];
    for (int c = 0; c < t->ncols; c++) {
        width[c] = 3;
        for (int r = 0; r <= t->rows; r++) {
            const char *s = t->cells[(size_t)r * t->ncols + c];
            if (s && text_width(s) > width[c]) width[c] = text_width(s);
        }
    }
    for (int r = 0; r <= t->rows; r++) {
        for (int c = 0; c < t->ncols; c++) {
            const char *s = t->cells[(size_t)r * t->ncols + c];
            s = s ? s : "";
            size_t gap = width[c] - text_width(s);
            size_t before = t->align[c] == UAKD_ALIGN_RIGHT ? gap : t->align[c] == UAKD_ALIGN_CENTER ? gap / 2 : 0;
            UAKD_TRY(uakd_strbuf_append(out, "| "));
            UAKD_TRY(pad(out, before, ' '));
            UAKD_TRY(uakd_strbuf_append(out, s));
            UAKD_TRY(pad(out, gap - before + 1, ' '));
        }
        UAKD_TRY(uakd_strbuf_append(out, "|\n"));
        if (r > 0) continue;
        for (int c = 0; c < t->ncols; c++) {
            uakd_align a = t->align[c];
            UAKD_TRY(uakd_strbuf_append(out, a == UAKD_ALIGN_RIGHT ? "|-" : "|:"));
            UAKD_TRY(pad(out, width[c], '-'));
            UAKD_TRY(uakd_strbuf_append(out, a == UAKD_ALIGN_LEFT ? "-" : ":"));
        }
        UAKD_TRY(uakd_strbuf_append(out, "|\n"));
    }
    return UAKD_OK;
}

/* ---- atomic file replacement ---- */

/* PNG encoded in memory, then replaced atomically like every other file we write. */
static uakd_status write_png_atomic(const char *path, const uakd_image *im) {
    void *png = NULL;
    size_t n = 0;
    UAKD_TRY(uakd_image_encode_png(im, &png, &n, path));
    uakd_status st = uakd_write_file_atomic(path, png, n);
    free(png);
    return st;
}

/* ---- reports ---- */

struct uakd_report {
    char *path;
    uakd_strbuf dir; /* the directory of path, with a trailing '/' (empty for the current one) */
    uakd_strbuf md;
};

uakd_status uakd_report_new(const char *md_path, const char *title, uakd_report **out) {
    *out = NULL;
    if (!md_path || !md_path[0] || !title)
        return uakd_fail(UAKD_EINVAL, "report: needs a Markdown path and a title");
    uakd_report *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(md_path))) {
        free(r);
        return uakd_fail(UAKD_ENOMEM, "report: out of memory");
    }
    const char *slash = strrchr(md_path, '/');
    uakd_status st = uakd_strbuf_append(&r->dir, "");
    if (st == UAKD_OK && slash) st = uakd_strbuf_printf(&r->dir, "%.*s", (int)(slash - md_path + 1), md_path);
    if (st == UAKD_OK) st = uakd_strbuf_printf(&r->md, "# %s\n", title);
    if (st != UAKD_OK) {
        uakd_report_free(r);
        return st;
    }
    *out = r;
    return UAKD_OK;
}

void uakd_report_free(uakd_report *r) {
    if (!r) return;
    free(r->path);
    uakd_strbuf_free(&r->dir);
    uakd_strbuf_free(&r->md);
    free(r);
}

uakd_status uakd_report_heading(uakd_report *r, const char *text) {
    if (!text) return uakd_fail(UAKD_EINVAL, "report heading: NULL text");
    return uakd_strbuf_printf(&r->md, "\n## %s\n", text);
}

uakd_status uakd_report_text(uakd_report *r, const char *fmt, ...) {
    UAKD_TRY(uakd_strbuf_append(&r->md, "\n"));
    va_list ap;
    va_start(ap, fmt);
    uakd_status st = strbuf_vprintf(&r->md, fmt, ap);
    va_end(ap);
    if (st == UAKD_OK) st = uakd_strbuf_append(&r->md, "\n");
    return st;
}

uakd_status uakd_report_table(uakd_report *r, const uakd_md_table *t) {
    UAKD_TRY(uakd_strbuf_append(&r->md, "\n"));
    return uakd_md_table_format(t, &r->md);
}

static int safe_png_name(const char *s) {
    size_t n = strlen(s);
    if (n < 5 || n > 200 || strcmp(s + n - 4, ".png") != 0 || s[0] == '.') return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
              *p == '_' || *p == '-'))
            return 0;
    return 1;
}

uakd_status uakd_report_image(uakd_report *r, const uakd_image *im, const char *file_name, const char *caption) {
    if (!file_name || !safe_png_name(file_name))
        return uakd_fail(UAKD_EINVAL, "report image name \"%s\": use letters, digits, '.', '_' and '-' only, not "
                         "starting with '.', ending in \".png\"", file_name ? file_name : "");
    uakd_strbuf path = {0};
    uakd_status st = uakd_strbuf_printf(&path, "%s%s", r->dir.s, file_name);
    if (st == UAKD_OK) st = write_png_atomic(path.s, im);
    uakd_strbuf_free(&path);
    if (st != UAKD_OK) return st;
    UAKD_TRY(uakd_strbuf_append(&r->md, "\n!["));
    for (const char *p = caption ? caption : ""; *p; p++) {
        char ch[2] = {*p == '[' ? '(' : *p == ']' ? ')' : *p == '\n' ? ' ' : *p, '\0'};
        UAKD_TRY(uakd_strbuf_append(&r->md, ch));
    }
    return uakd_strbuf_printf(&r->md, "](%s)\n", file_name);
}

const char *uakd_report_markdown(const uakd_report *r) { return r->md.s; }

uakd_status uakd_report_write(const uakd_report *r) {
    return uakd_write_file_atomic(r->path, r->md.s, r->md.len);
}
