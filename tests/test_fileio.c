/* Tests of whole-file reading with a cap and of atomic replacement (including a write that
 * fails halfway, which must leave the previous file intact and no temporary file behind). */
#include "test.h"
#include "uakd/fileio.h"
#include "uakd/status.h"

#include <dirent.h>
#include <sys/stat.h>

/* Number of entries in dir other than "." and "..". */
static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void test_write_then_read(void) {
    const char *dir = test_tmp("fileio_rw");
    mkdir(dir, 0755);
    char path[1100];
    snprintf(path, sizeof path, "%s/a.bin", dir);
    const char content[] = "hello\0world";
    CHECK_OK(uakd_write_file_atomic(path, content, sizeof content));
    void *data;
    size_t n;
    CHECK_OK(uakd_read_file(path, 1000, &data, &n));
    CHECK(n == sizeof content);
    CHECK(memcmp(data, content, n) == 0);
    CHECK(((char *)data)[n] == '\0');
    free(data);
    /* Replacing with a shorter content leaves exactly the new bytes. */
    CHECK_OK(uakd_write_file_atomic(path, "xy", 2));
    CHECK_OK(uakd_read_file(path, 1000, &data, &n));
    CHECK(n == 2 && memcmp(data, "xy", 2) == 0);
    free(data);
    CHECK(count_entries(dir) == 1);
    /* Empty files are fine. */
    CHECK_OK(uakd_write_file_atomic(path, "", 0));
    CHECK_OK(uakd_read_file(path, 0, &data, &n));
    CHECK(n == 0);
    free(data);
}

static void test_read_refusals(void) {
    const char *path = test_tmp("fileio_cap.bin");
    CHECK_OK(uakd_write_file_atomic(path, "0123456789", 10));
    void *data = (void *)1;
    size_t n = 7;
    CHECK_FAILS(uakd_read_file(path, 9, &data, &n), UAKD_EFORMAT);
    CHECK(data == NULL && n == 0);
    CHECK(strstr(uakd_last_error(), "10 bytes") != NULL);
    CHECK_OK(uakd_read_file(path, 10, &data, &n));
    free(data);
    CHECK_FAILS(uakd_read_file(test_tmp("fileio_no_such_file"), 100, &data, &n), UAKD_EIO);
    CHECK_FAILS(uakd_read_file(test_tmp(""), 100, &data, &n), UAKD_EIO); /* a directory */
}

typedef struct {
    int fail_after_half;
} half_writer;

/* Writes the first half of a 1000-byte pattern, then fails (like a crash or a full disk). */
static uakd_status write_pattern(FILE *f, const char *path, void *user) {
    const half_writer *h = user;
    unsigned char buf[1000];
    for (int i = 0; i < 1000; i++) buf[i] = (unsigned char)(i * 7);
    UAKD_TRY(uakd_fwrite_all(f, buf, 500, path));
    if (h->fail_after_half) return uakd_fail(UAKD_EINTERRUPTED, "%s: interrupted by the test", path);
    return uakd_fwrite_all(f, buf + 500, 500, path);
}

static void test_interrupted_write_keeps_old_file(void) {
    const char *dir = test_tmp("fileio_interrupt");
    mkdir(dir, 0755);
    char path[1100];
    snprintf(path, sizeof path, "%s/ckpt.bin", dir);
    CHECK_OK(uakd_write_file_atomic(path, "previous", 8));
    half_writer h = {1};
    CHECK_FAILS(uakd_write_atomic(path, write_pattern, &h), UAKD_EINTERRUPTED);
    void *data;
    size_t n;
    CHECK_OK(uakd_read_file(path, 100000, &data, &n));
    CHECK(n == 8 && memcmp(data, "previous", 8) == 0);
    free(data);
    CHECK(count_entries(dir) == 1); /* the temporary file was removed */
    h.fail_after_half = 0;
    CHECK_OK(uakd_write_atomic(path, write_pattern, &h));
    CHECK_OK(uakd_read_file(path, 100000, &data, &n));
    CHECK(n == 1000);
    int ok = n == 1000;
    for (size_t i = 0; ok && i < n; i++) ok = ((unsigned char *)data)[i] == (unsigned char)(i * 7);
    CHECK(ok);
    free(data);
    CHECK(count_entries(dir) == 1);
}

static void test_write_refusals(void) {
    CHECK_FAILS(uakd_write_file_atomic(test_tmp("no_such_dir/x.bin"), "a", 1), UAKD_EIO);
    CHECK_FAILS(uakd_write_file_atomic(test_tmp("dir_only/"), "a", 1), UAKD_EINVAL);
}

int main(void) {
    RUN(test_write_then_read);
    RUN(test_read_refusals);
    RUN(test_interrupted_write_keeps_old_file);
    RUN(test_write_refusals);
    return TEST_END();
}
