/* Replays the committed fuzz corpora (fuzz/corpus/...) through the fuzz targets' entry
 * functions: files named ok-* must be accepted (with their round-trip properties), bad-* must be
 * refused with a message, and anything else (fuzzer finds) must not crash or break a round trip.
 * Under `make SAN=1 test` this also checks every input for memory errors and leaks. */
#define UAKD_FUZZ_NO_ENTRY 1
#include "../fuzz/fuzz_netdesc.c"
#include "../fuzz/fuzz_safetensors.c"

#include <dirent.h>

#include "test.h"
#include "uakd/fileio.h"
#include "uakd/status.h"

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs fn on every file of dir (sorted); returns how many files there were. */
static int replay(const char *dir, int (*fn)(const uint8_t *, size_t), int *n_ok, int *n_bad) {
    DIR *d = opendir(dir);
    CHECK_MSG(d != NULL, "cannot open %s (run from the repository root)", dir);
    if (!d) return 0;
    char *names[512];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 512)
        if (e->d_name[0] != '.') names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_names);
    for (int i = 0; i < n; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        void *data;
        size_t len;
        uakd_status st = uakd_read_file(path, (size_t)1 << 24, &data, &len);
        CHECK_OK(st);
        if (st == UAKD_OK) {
            int r = fn(data, len);
            free(data);
            const char *msg = uakd_last_error();
            if (strncmp(names[i], "ok-", 3) == 0) {
                CHECK_MSG(r == 1, "%s: expected acceptance, got %d: %s", path, r, msg);
                (*n_ok)++;
            } else if (strncmp(names[i], "bad-", 4) == 0) {
                CHECK_MSG(r == 0 && msg[0], "%s: expected a refusal with a message, got %d", path, r);
                (*n_bad)++;
            } else {
                CHECK_MSG(r >= 0, "%s: round trip violated", path);
            }
        }
        free(names[i]);
    }
    return n;
}

static void test_replay_safetensors(void) {
    int ok = 0, bad = 0;
    int n = replay("fuzz/corpus/safetensors", uakd_fuzz_safetensors, &ok, &bad);
    CHECK(n >= 20 && ok >= 8 && bad >= 10);
}

static void test_replay_netdesc(void) {
    int ok = 0, bad = 0;
    int n = replay("fuzz/corpus/netdesc", uakd_fuzz_netdesc, &ok, &bad);
    CHECK(n >= 20 && ok >= 6 && bad >= 10);
}

int main(void) {
    RUN(test_replay_safetensors);
    RUN(test_replay_netdesc);
    return TEST_END();
}
