/* Progress bar: rate = done / elapsed, ETA = (total - done) / rate (the mean rate since the start,
 * which is steady for uniform work and needs no smoothing state). */
#include "progress.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* "1:02:03" or "2:03" */
static void fmt_time(char *buf, size_t n, double s) {
    long t = s < 0 ? 0 : (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

void uakd_progress_start(uakd_progress *p, const char *label, long total, const char *unit) {
    memset(p, 0, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", label);
    p->total = total > 0 ? total : 0;
    p->unit = unit ? unit : "it";
    p->start = p->last_draw = now_s();
    p->tty = isatty(fileno(stderr));
    p->last_decile = 0;
}

static void draw(uakd_progress *p, long done, double t, int final) {
    double el = t - p->start, rate = el > 0 ? done / el : 0;
    char elapsed[32], eta[32] = "?";
    fmt_time(elapsed, sizeof elapsed, el);
    if (p->total > 0 && rate > 0) fmt_time(eta, sizeof eta, (p->total - done) / rate);
    char bar[32] = "";
    if (p->total > 0) {
        int w = 24, fill = (int)((double)w * done / p->total);
        if (fill > w) fill = w;
        bar[0] = '[';
        for (int i = 0; i < w; i++) bar[1 + i] = i < fill ? '#' : '.';
        bar[w + 1] = ']';
        bar[w + 2] = '\0';
    }
    if (final) {
        fprintf(stderr, "%s%s: %ld %s in %s (%.1f %s/s)\n", p->tty ? "\r\033[K" : "", p->label, done, p->unit,
                elapsed, rate, p->unit);
    } else if (p->total > 0) {
        fprintf(stderr, "%s%s %s %ld/%ld  %.1f %s/s  elapsed %s  ETA %s%s", p->tty ? "\r\033[K" : "", p->label, bar,
                done, p->total, rate, p->unit, elapsed, eta, p->tty ? "" : "\n");
    } else {
        fprintf(stderr, "%s%s %ld %s  %.1f %s/s  elapsed %s%s", p->tty ? "\r\033[K" : "", p->label, done, p->unit,
                rate, p->unit, elapsed, p->tty ? "" : "\n");
    }
    fflush(stderr);
    p->last_draw = t;
}

void uakd_progress_update(uakd_progress *p, long done) {
    double t = now_s();
    if (p->tty) {
        if (t - p->last_draw >= 0.1) draw(p, done, t, 0);
        return;
    }
    int decile = p->total > 0 ? (int)(10.0 * done / p->total) : 0;
    if (decile > p->last_decile || t - p->last_draw >= 30) {
        p->last_decile = decile;
        draw(p, done, t, 0);
    }
}

void uakd_progress_finish(uakd_progress *p, long done) { draw(p, done, now_s(), 1); }
