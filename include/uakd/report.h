/* Reports a person reads: Markdown tables, a Markdown report with PNG plots beside it, the
 * JSON-lines training-log reader behind the training curves, and accuracy-vs-threshold curves.
 *
 * Nothing here prints. Report files (the .md and its PNGs) are replaced atomically: written to a
 * temporary file in the same directory, then renamed. */
#ifndef UAKD_REPORT_H
#define UAKD_REPORT_H

#include <stddef.h>

#include "uakd/image.h"
#include "uakd/plot.h"
#include "uakd/status.h"

/* ---- a growable string ---- */

/* Zero-initialise; s is always '\0'-terminated once anything was appended (NULL before). */
typedef struct uakd_strbuf {
    char *s;
    size_t len, cap;
} uakd_strbuf;

uakd_status uakd_strbuf_append(uakd_strbuf *b, const char *text);
uakd_status uakd_strbuf_printf(uakd_strbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void uakd_strbuf_free(uakd_strbuf *b);

/* ---- Markdown tables ---- */

typedef enum uakd_align { UAKD_ALIGN_LEFT = 0, UAKD_ALIGN_RIGHT, UAKD_ALIGN_CENTER } uakd_align;

/* A table built row by row, then formatted with every column padded to its widest cell:
 *
 *   | method  | ADD-0.1d (%) |
 *   |:--------|-------------:|
 *   | student |        81.90 |
 *
 * Cells are filled left to right; a row may be left short (the rest stay empty). '|' in a cell is
 * escaped as "\|" and line breaks become spaces. */
typedef struct uakd_md_table uakd_md_table;

/* ncols 1..64 header cells (copied). Columns start left-aligned. */
uakd_status uakd_md_table_new(int ncols, const char *const *header, uakd_md_table **out);
void uakd_md_table_free(uakd_md_table *t);
uakd_status uakd_md_table_align(uakd_md_table *t, int col, uakd_align a);
/* Starts a new row. */
uakd_status uakd_md_table_row(uakd_md_table *t);
/* Appends a cell to the current row: text; a number with `prec` decimals ("-" when not finite);
 * "mean ± spread" with `prec` decimals each. */
uakd_status uakd_md_table_text(uakd_md_table *t, const char *text);
uakd_status uakd_md_table_num(uakd_md_table *t, double v, int prec);
uakd_status uakd_md_table_pm(uakd_md_table *t, double mean, double spread, int prec);
/* Appends the formatted table (header, alignment row, rows; each line ends in '\n'). */
uakd_status uakd_md_table_format(const uakd_md_table *t, uakd_strbuf *out);

/* ---- Markdown reports ---- */

/* A report destined for md_path; images are written beside it and linked by relative path. */
typedef struct uakd_report uakd_report;

/* Starts "# title". */
uakd_status uakd_report_new(const char *md_path, const char *title, uakd_report **out);
void uakd_report_free(uakd_report *r);
/* "## text". */
uakd_status uakd_report_heading(uakd_report *r, const char *text);
/* A paragraph (printf-style). */
uakd_status uakd_report_text(uakd_report *r, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
uakd_status uakd_report_table(uakd_report *r, const uakd_md_table *t);
/* Writes im as PNG file_name in the report's directory now (file_name: letters, digits, '.',
 * '_', '-', ending in ".png") and links it as ![caption](file_name). */
uakd_status uakd_report_image(uakd_report *r, const uakd_image *im, const char *file_name, const char *caption);
/* The Markdown text so far. */
const char *uakd_report_markdown(const uakd_report *r);
/* Writes the Markdown file. */
uakd_status uakd_report_write(const uakd_report *r);

/* ---- training logs (JSON lines) ---- */

/* One JSON object per line, e.g. {"step": 10, "loss": 1.2, "cls": 0.3, "lr": 1e-3}: "step" is
 * required (an integer >= 0); every other key is a number or null (a value that was not finite)
 * and becomes a series; keys may come and go between lines (missing values are NaN). Blank lines
 * are skipped. */
typedef struct uakd_train_log {
    int rows;       /* lines with data */
    int nkeys;      /* series other than step, in order of first appearance */
    char **keys;
    double *step;   /* rows */
    double *values; /* nkeys x rows: series k is values + k * rows */
} uakd_train_log;

/* Reads a log (at most 64 keys, lines up to 1 MiB). A malformed line fails with UAKD_EFORMAT and
 * a message "path:line: ...". */
uakd_status uakd_train_log_read(const char *path, uakd_train_log *out);
void uakd_train_log_free(uakd_train_log *log);
/* Index of a key, or -1. */
int uakd_train_log_key(const uakd_train_log *log, const char *key);

/* Training curves: the named keys against step (keys NULL: every key except "lr", "img_s",
 * "epoch" and "time_s", i.e. the loss terms). o NULL means 800 x 500, a log y axis, title
 * "Training curves", axis labels "step" and "loss"; otherwise o is used as given. */
uakd_status uakd_plot_train_log(const uakd_train_log *log, const char *const *keys, int nkeys,
                                const uakd_plot_opts *o, uakd_image *out);

/* ---- accuracy vs threshold ---- */

/* Success rate (%) at npts thresholds thr[i] = max_frac * i / (npts - 1): the share of the n
 * errors err[j] (each already divided by the object's diameter) below thr[i]. A non-finite error
 * (no prediction) is a failure at every threshold. npts >= 2, max_frac > 0. */
uakd_status uakd_accuracy_curve(const double *err, long n, int npts, double max_frac, double *thr, double *rate);

#endif
