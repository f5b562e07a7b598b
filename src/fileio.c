/* Whole-file reads with a size cap and atomic replacement of files.
 *
 * Atomic replacement: mkstemp("<dir>/.<name>.tmp.XXXXXX") -> write (every fwrite checked) ->
 * fflush -> fsync(file) -> fclose -> rename(tmp, path) -> fsync(dir). rename() within one
 * directory is atomic on POSIX file systems, and the two fsyncs make the new content and the
 * new directory entry durable, in that order. */
#include "uakd/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

uakd_status uakd_read_file(const char *path, size_t max_bytes, void **data, size_t *size) {
    *data = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return uakd_fail(UAKD_EIO, "%s: cannot open for reading: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return uakd_fail(UAKD_EIO, "%s: not a regular file", path);
    }
    if ((unsigned long long)sb.st_size > (unsigned long long)max_bytes) {
        fclose(f);
        return uakd_fail(UAKD_EFORMAT, "%s: file is %lld bytes, more than the %zu allowed here", path,
                         (long long)sb.st_size, max_bytes);
    }
    size_t n = (size_t)sb.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        fclose(f);
        return uakd_fail(UAKD_ENOMEM, "%s: cannot allocate %zu bytes", path, n + 1);
    }
    size_t got = fread(buf, 1, n, f);
    int extra = fgetc(f); /* a file that grew while we read it is refused, not cut */
    int err = ferror(f);
    fclose(f);
    if (got != n || extra != EOF || err) {
        free(buf);
        return uakd_fail(UAKD_EIO, "%s: read %zu of %zu bytes (file changed or read error)", path, got, n);
    }
    buf[n] = '\0';
    *data = buf;
    *size = n;
    return UAKD_OK;
}

uakd_status uakd_fwrite_all(FILE *f, const void *data, size_t n, const char *path) {
    if (n && fwrite(data, 1, n, f) != n)
        return uakd_fail(UAKD_EIO, "%s: write failed (%s); disk full?", path, strerror(errno));
    return UAKD_OK;
}

/* Splits path into its directory ("." when none) and file name parts. */
static uakd_status split_path(const char *path, char **dir, const char **base) {
    const char *slash = strrchr(path, '/');
    size_t dlen = slash ? (size_t)(slash - path) : 1;
    *dir = malloc(dlen + 1);
    if (!*dir) return uakd_fail(UAKD_ENOMEM, "%s: out of memory", path);
    if (!slash) memcpy(*dir, ".", 2);
    else if (dlen == 0) memcpy(*dir, "/", 2);
    else {
        memcpy(*dir, path, dlen);
        (*dir)[dlen] = '\0';
    }
    *base = slash ? slash + 1 : path;
    if (!**base) {
        free(*dir);
        return uakd_fail(UAKD_EINVAL, "\"%s\": a file name is required, not a directory", path);
    }
    return UAKD_OK;
}

static uakd_status fsync_dir(const char *dir, const char *path) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return uakd_fail(UAKD_EIO, "%s: cannot open directory %s: %s", path, dir, strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    /* Some file systems cannot fsync directories (EINVAL); the rename itself has happened. */
    if (rc != 0 && e != EINVAL)
        return uakd_fail(UAKD_EIO, "%s: fsync of directory %s failed: %s", path, dir, strerror(e));
    return UAKD_OK;
}

uakd_status uakd_write_atomic(const char *path, uakd_write_fn fn, void *user) {
    char *dir = NULL;
    const char *base = NULL;
    UAKD_TRY(split_path(path, &dir, &base));
    size_t tlen = strlen(dir) + strlen(base) + 16;
    char *tmp = malloc(tlen);
    if (!tmp) {
        free(dir);
        return uakd_fail(UAKD_ENOMEM, "%s: out of memory", path);
    }
    snprintf(tmp, tlen, "%s/.%s.tmp.XXXXXX", dir, base);
    uakd_status st = UAKD_OK;
    int fd = mkstemp(tmp);
    if (fd < 0) {
        st = uakd_fail(UAKD_EIO, "%s: cannot create a temporary file in %s: %s", path, dir, strerror(errno));
        goto done;
    }
    fchmod(fd, 0644);
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        st = uakd_fail(UAKD_EIO, "%s: fdopen failed: %s", path, strerror(errno));
        close(fd);
        unlink(tmp);
        goto done;
    }
    st = fn(f, path, user);
    if (st == UAKD_OK && fflush(f) != 0)
        st = uakd_fail(UAKD_EIO, "%s: flush failed (%s); disk full?", path, strerror(errno));
    if (st == UAKD_OK && fsync(fileno(f)) != 0)
        st = uakd_fail(UAKD_EIO, "%s: fsync failed: %s", path, strerror(errno));
    if (fclose(f) != 0 && st == UAKD_OK)
        st = uakd_fail(UAKD_EIO, "%s: close failed: %s", path, strerror(errno));
    if (st == UAKD_OK && rename(tmp, path) != 0)
        st = uakd_fail(UAKD_EIO, "%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
    if (st != UAKD_OK) {
        unlink(tmp);
        goto done;
    }
    st = fsync_dir(dir, path);
done:
    free(tmp);
    free(dir);
    return st;
}

typedef struct {
    const void *data;
    size_t n;
} mem_content;

static uakd_status write_mem(FILE *f, const char *path, void *user) {
    const mem_content *m = user;
    return uakd_fwrite_all(f, m->data, m->n, path);
}

uakd_status uakd_write_file_atomic(const char *path, const void *data, size_t n) {
    mem_content m = {data, n};
    return uakd_write_atomic(path, write_mem, &m);
}
