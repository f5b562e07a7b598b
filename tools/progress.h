/* A command-line progress bar on stderr: done/total, a bar, the rate, the elapsed time and the
 * estimated time left. On a terminal it redraws one line in place (at most 10 times a second);
 * otherwise (logs, pipes) it prints a plain line at every 10% and at least every 30 s. */
#ifndef UAKD_CLI_PROGRESS_H
#define UAKD_CLI_PROGRESS_H

typedef struct uakd_progress {
    char label[48];
    long total;      /* 0 when unknown: no bar, no ETA */
    const char *unit; /* e.g. "img"; rate printed as "<rate> <unit>/s" */
    double start, last_draw;
    int tty;
    int last_decile;
} uakd_progress;

void uakd_progress_start(uakd_progress *p, const char *label, long total, const char *unit);
/* Reports that done items are finished (throttled; cheap to call often). */
void uakd_progress_update(uakd_progress *p, long done);
/* Draws the final state and ends the line: "label: N unit in T s (R unit/s)". */
void uakd_progress_finish(uakd_progress *p, long done);

#endif
