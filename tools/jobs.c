/* Forked parallel runs with a slot limit (jobs.h). A child redirects its output to its log (when
 * given) before it runs, and leaves with _exit so that the parent's stdio buffers are not flushed
 * twice. */
#include "jobs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void wait_one(cli_jobs *j) {
    int ws;
    if (wait(&ws) > 0) j->running--, j->failed |= !WIFEXITED(ws) || WEXITSTATUS(ws) != 0;
    else j->running = 0; /* no child left (ECHILD) */
}

int cli_jobs_start(cli_jobs *j, const char *log, int (*fn)(void *), void *arg) {
    while (j->running >= j->max) wait_one(j);
    fflush(NULL);
    const pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "uakd: fork failed: %s\n", strerror(errno));
        j->failed = 1;
        return -1;
    }
    if (pid == 0) {
        if (log) {
            const int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0666);
            if (fd < 0) {
                fprintf(stderr, "uakd: cannot open %s: %s\n", log, strerror(errno));
                _exit(1);
            }
            dup2(fd, 1), dup2(fd, 2), close(fd);
        }
        const int rc = fn(arg);
        fflush(NULL);
        _exit(rc);
    }
    j->running++;
    return 0;
}

void cli_jobs_wait_all(cli_jobs *j) {
    while (j->running > 0) wait_one(j);
}
