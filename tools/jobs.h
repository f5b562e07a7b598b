/* Parallel runs of the CLI (uakd ensemble --jobs, uakd ablate --jobs): each run a forked child
 * process, at most `max` at once; a run's output can go to its own log file. */
#ifndef UAKD_CLI_JOBS_H
#define UAKD_CLI_JOBS_H

typedef struct cli_jobs {
    int max;     /* runs at the same time (>= 1) */
    int running; /* children not yet waited for */
    int failed;  /* some child exited with a nonzero status, a signal, or could not start */
} cli_jobs;

/* Waits for a free slot, then runs fn(arg) in a child process (its return value is the child's exit
 * status). log (may be NULL) receives the child's stdout and stderr. Returns 0, or -1 when fork
 * failed (reported, and counted in failed). */
int cli_jobs_start(cli_jobs *j, const char *log, int (*fn)(void *), void *arg);
/* Waits for every child. */
void cli_jobs_wait_all(cli_jobs *j);

#endif
