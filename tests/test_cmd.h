/* Running a shell command from a test (the CLI end-to-end tests) and capturing what it prints. */
#ifndef UAKD_TEST_CMD_H
#define UAKD_TEST_CMD_H

#include <stdio.h>
#include <sys/wait.h>

/* Runs cmd through the shell with its standard output in out (at most cap - 1 bytes, then a NUL).
 * Returns the exit status, or -1 when it could not start or did not exit normally. */
static inline int test_run_cmd(const char *cmd, char *out, size_t cap) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#endif
