/* PLY mesh reader (ASCII and binary little-endian) and mesh extents.
 *
 * The header declares elements, each with a count and typed properties (scalars or lists
 * "list <count type> <item type> name"). We keep vertex x y z, optional nx ny nz and
 * red green blue (alpha ignored), and face vertex_indices; every other property and element is
 * skipped by type. Polygons (v0, v1, ..., vk) are fanned into triangles (v0, vi, vi+1).
 *
 * Extents: the axis-aligned box, its 8 corners in the order index = 4 ix + 2 iy + iz (0 = min,
 * 1 = max per axis), and the diameter max_ij |Xi - Xj|, exact, found by visiting points by
 * decreasing distance r to the centroid and pruning with |Xi - Xj| <= ri + rj. */
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uakd/mesh.h"

enum { MAX_ELEMENTS = 32, MAX_PROPS = 64 };

typedef enum { T_NONE, T_I8, T_U8, T_I16, T_U16, T_I32, T_U32, T_F32, T_F64 } ply_type;

typedef struct {
    char name[64];
    ply_type type;      /* scalar type, or item type of a list */
    ply_type count_type; /* T_NONE for a scalar property */
} ply_prop;

typedef struct {
    char name[64];
    long long count;
    int nprops;
    ply_prop props[MAX_PROPS];
} ply_element;

typedef struct {
    const char *path;
    const unsigned char *p, *end; /* cursor in the body */
    int binary;
    const char *elem, *prop;      /* what is being read, for messages */
    long long index;
} reader;

static const struct {
    const char *name;
    ply_type type;
} type_names[] = {
    {"char", T_I8},    {"int8", T_I8},     {"uchar", T_U8},  {"uint8", T_U8},    {"short", T_I16},
    {"int16", T_I16},  {"ushort", T_U16},  {"uint16", T_U16}, {"int", T_I32},    {"int32", T_I32},
    {"uint", T_U32},   {"uint32", T_U32},  {"float", T_F32}, {"float32", T_F32}, {"double", T_F64},
    {"float64", T_F64},
};

static int type_size(ply_type t) {
    static const int sizes[] = {0, 1, 1, 2, 2, 4, 4, 4, 8};
    return sizes[t];
}

static ply_type parse_type(const char *s) {
    for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
        if (!strcmp(s, type_names[i].name)) return type_names[i].type;
    return T_NONE;
}

static uakd_status truncated(const reader *r) {
    return uakd_fail(UAKD_EFORMAT, "%s: file ends inside element \"%s\" %lld, property \"%s\" (truncated file?)",
                     r->path, r->elem, r->index, r->prop);
}

/* Reads one value of type t at the cursor into *v. */
static uakd_status read_value(reader *r, ply_type t, double *v) {
    if (r->binary) {
        int n = type_size(t);
        if (r->end - r->p < n) return truncated(r);
        const unsigned char *b = r->p;
        uint32_t u32 = 0;
        uint64_t u64 = 0;
        switch (t) {
        case T_I8: *v = (int8_t)b[0]; break;
        case T_U8: *v = b[0]; break;
        case T_I16: *v = (int16_t)(uint16_t)(b[0] | b[1] << 8); break;
        case T_U16: *v = (uint16_t)(b[0] | b[1] << 8); break;
        case T_I32:
        case T_U32:
        case T_F32:
            u32 = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
            if (t == T_I32) {
                int32_t i32;
                memcpy(&i32, &u32, 4);
                *v = i32;
            } else if (t == T_U32) {
                *v = u32;
            } else {
                float f;
                memcpy(&f, &u32, 4);
                *v = f;
            }
            break;
        case T_F64: {
            for (int i = 7; i >= 0; i--) u64 = u64 << 8 | b[i];
            double d;
            memcpy(&d, &u64, 8);
            *v = d;
            break;
        }
        default: return uakd_fail(UAKD_EFORMAT, "%s: bad property type", r->path);
        }
        r->p += n;
        return UAKD_OK;
    }
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')) r->p++;
    if (r->p >= r->end) return truncated(r);
    char tok[64];
    size_t n = 0;
    while (r->p < r->end && !(*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')) {
        if (n + 1 >= sizeof tok)
            return uakd_fail(UAKD_EFORMAT, "%s: element \"%s\" %lld, property \"%s\": number too long", r->path,
                             r->elem, r->index, r->prop);
        tok[n++] = (char)*r->p++;
    }
    tok[n] = 0;
    char *endp;
    errno = 0;
    double d = strtod(tok, &endp);
    if (*endp || errno == ERANGE)
        return uakd_fail(UAKD_EFORMAT, "%s: element \"%s\" %lld, property \"%s\": \"%s\" is not a number", r->path,
                         r->elem, r->index, r->prop, tok);
    if (t != T_F32 && t != T_F64 && d != floor(d))
        return uakd_fail(UAKD_EFORMAT, "%s: element \"%s\" %lld, property \"%s\": \"%s\" is not an integer", r->path,
                         r->elem, r->index, r->prop, tok);
    *v = d;
    return UAKD_OK;
}

/* Parses the header; on success the cursor points at the body. */
static uakd_status parse_header(reader *r, ply_element *els, int *nels) {
    const char *s = (const char *)r->p;
    size_t len = (size_t)(r->end - r->p);
    if (len < 4 || memcmp(s, "ply", 3) || (s[3] != '\n' && s[3] != '\r'))
        return uakd_fail(UAKD_EFORMAT, "%s: not a PLY file (missing \"ply\" magic line)", r->path);
    int have_format = 0, n = 0, lineno = 0;
    size_t pos = 0;
    for (;;) {
        size_t eol = pos;
        while (eol < len && s[eol] != '\n') eol++;
        if (eol >= len) return uakd_fail(UAKD_EFORMAT, "%s: header has no \"end_header\" line", r->path);
        char line[512];
        size_t ll = eol - pos;
        if (ll > 0 && s[pos + ll - 1] == '\r') ll--;
        if (ll >= sizeof line) return uakd_fail(UAKD_EFORMAT, "%s: header line %d is too long", r->path, lineno + 1);
        memcpy(line, s + pos, ll);
        line[ll] = 0;
        pos = eol + 1;
        lineno++;
        if (!strncmp(line, "comment", 7) || !strncmp(line, "obj_info", 8)) continue;
        char w[6][64], *save = NULL;
        int nw = 0;
        for (char *tok = strtok_r(line, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
            if (nw == 6 || strlen(tok) >= 64)
                return uakd_fail(UAKD_EFORMAT, "%s: header line %d is malformed", r->path, lineno);
            strcpy(w[nw++], tok);
        }
        if (nw == 0 || (lineno == 1 && !strcmp(w[0], "ply"))) continue;
        if (!strcmp(w[0], "end_header")) break;
        if (!strcmp(w[0], "format")) {
            if (nw != 3) return uakd_fail(UAKD_EFORMAT, "%s: header line %d: malformed format line", r->path, lineno);
            if (!strcmp(w[1], "ascii"))
                r->binary = 0;
            else if (!strcmp(w[1], "binary_little_endian"))
                r->binary = 1;
            else
                return uakd_fail(UAKD_EUNSUPPORTED, "%s: PLY format \"%s\" is not supported (use ascii or binary_little_endian)",
                                 r->path, w[1]);
            have_format = 1;
        } else if (!strcmp(w[0], "element")) {
            if (nw != 3) return uakd_fail(UAKD_EFORMAT, "%s: header line %d: expected \"element <name> <count>\"", r->path, lineno);
            if (n == MAX_ELEMENTS) return uakd_fail(UAKD_EFORMAT, "%s: more than %d elements", r->path, MAX_ELEMENTS);
            char *endp;
            errno = 0;
            long long c = strtoll(w[2], &endp, 10);
            if (*endp || errno || c < 0 || c > INT_MAX / 3)
                return uakd_fail(UAKD_EFORMAT, "%s: element \"%s\": count \"%s\" is invalid or too large", r->path, w[1], w[2]);
            ply_element *e = &els[n++];
            memset(e, 0, sizeof *e);
            strcpy(e->name, w[1]);
            e->count = c;
        } else if (!strcmp(w[0], "property")) {
            if (n == 0) return uakd_fail(UAKD_EFORMAT, "%s: header line %d: property before any element", r->path, lineno);
            ply_element *e = &els[n - 1];
            if (e->nprops == MAX_PROPS)
                return uakd_fail(UAKD_EFORMAT, "%s: element \"%s\" has more than %d properties", r->path, e->name, MAX_PROPS);
            ply_prop *pr = &e->props[e->nprops];
            if (nw == 3) {
                pr->count_type = T_NONE;
                pr->type = parse_type(w[1]);
                strcpy(pr->name, w[2]);
            } else if (nw == 5 && !strcmp(w[1], "list")) {
                pr->count_type = parse_type(w[2]);
                pr->type = parse_type(w[3]);
                strcpy(pr->name, w[4]);
                if (pr->count_type == T_NONE || pr->count_type == T_F32 || pr->count_type == T_F64)
                    return uakd_fail(UAKD_EFORMAT, "%s: element \"%s\", list \"%s\": count type \"%s\" must be an integer type",
                                     r->path, e->name, w[4], w[2]);
            } else {
                return uakd_fail(UAKD_EFORMAT, "%s: header line %d: expected \"property <type> <name>\" or "
                                 "\"property list <count type> <item type> <name>\"", r->path, lineno);
            }
            if (pr->type == T_NONE)
                return uakd_fail(UAKD_EFORMAT, "%s: element \"%s\", property \"%s\": unknown type", r->path, e->name,
                                 pr->name);
            for (int i = 0; i < e->nprops; i++)
                if (!strcmp(e->props[i].name, pr->name))
                    return uakd_fail(UAKD_EFORMAT, "%s: element \"%s\": property \"%s\" declared twice", r->path, e->name,
                                     pr->name);
            e->nprops++;
        } else {
            return uakd_fail(UAKD_EFORMAT, "%s: header line %d: unknown keyword \"%s\"", r->path, lineno, w[0]);
        }
    }
    if (!have_format) return uakd_fail(UAKD_EFORMAT, "%s: header has no \"format\" line", r->path);
    r->p += pos;
    *nels = n;
    return UAKD_OK;
}

static int find_prop(const ply_element *e, const char *name) {
    for (int i = 0; i < e->nprops; i++)
        if (!strcmp(e->props[i].name, name)) return i;
    return -1;
}

static uakd_status read_vertices(reader *r, const ply_element *e, uakd_mesh *m) {
    int ix[3] = {find_prop(e, "x"), find_prop(e, "y"), find_prop(e, "z")};
    int in[3] = {find_prop(e, "nx"), find_prop(e, "ny"), find_prop(e, "nz")};
    int ic[3] = {find_prop(e, "red"), find_prop(e, "green"), find_prop(e, "blue")};
    static const char *axis[3] = {"x", "y", "z"};
    for (int k = 0; k < 3; k++) {
        if (ix[k] < 0)
            return uakd_fail(UAKD_EFORMAT, "%s: element \"vertex\" has no property \"%s\"", r->path, axis[k]);
        if (e->props[ix[k]].count_type != T_NONE)
            return uakd_fail(UAKD_EFORMAT, "%s: vertex property \"%s\" is a list", r->path, axis[k]);
    }
    int has_n = in[0] >= 0 && in[1] >= 0 && in[2] >= 0, has_c = ic[0] >= 0 && ic[1] >= 0 && ic[2] >= 0;
    if ((in[0] >= 0 || in[1] >= 0 || in[2] >= 0) && !has_n)
        return uakd_fail(UAKD_EFORMAT, "%s: vertex normals need all of nx, ny, nz", r->path);
    if ((ic[0] >= 0 || ic[1] >= 0 || ic[2] >= 0) && !has_c)
        return uakd_fail(UAKD_EFORMAT, "%s: vertex colours need all of red, green, blue", r->path);
    int role[MAX_PROPS]; /* 0..2 xyz, 3..5 normal, 6..8 colour, -1 skipped */
    for (int i = 0; i < e->nprops; i++) role[i] = -1;
    for (int k = 0; k < 3; k++) {
        role[ix[k]] = k;
        if (has_n) role[in[k]] = 3 + k;
        if (has_c) role[ic[k]] = 6 + k;
    }
    size_t nv = (size_t)e->count;
    m->num_vertices = (int)nv;
    m->xyz = malloc(3 * nv * sizeof(float) + 1);
    if (has_n) m->normals = malloc(3 * nv * sizeof(float) + 1);
    if (has_c) m->rgb = malloc(3 * nv + 1);
    if (!m->xyz || (has_n && !m->normals) || (has_c && !m->rgb))
        return uakd_fail(UAKD_ENOMEM, "%s: out of memory for %zu vertices", r->path, nv);
    r->elem = "vertex";
    for (size_t v = 0; v < nv; v++) {
        r->index = (long long)v;
        for (int i = 0; i < e->nprops; i++) {
            const ply_prop *pr = &e->props[i];
            r->prop = pr->name;
            double val, cnt = 1;
            if (pr->count_type != T_NONE) {
                UAKD_TRY(read_value(r, pr->count_type, &cnt));
                if (cnt < 0) return uakd_fail(UAKD_EFORMAT, "%s: vertex %zu, list \"%s\": negative length", r->path, v, pr->name);
            }
            for (double c = 0; c < cnt; c++) UAKD_TRY(read_value(r, pr->type, &val));
            int k = role[i];
            if (k < 0) continue;
            if (!isfinite(val))
                return uakd_fail(UAKD_EFORMAT, "%s: vertex %zu, property \"%s\" is not finite", r->path, v, pr->name);
            if (k < 3) {
                m->xyz[3 * v + (size_t)k] = (float)val;
            } else if (k < 6) {
                m->normals[3 * v + (size_t)k - 3] = (float)val;
            } else {
                if (pr->type == T_F32 || pr->type == T_F64) val *= 255; /* float colours are in [0, 1] */
                m->rgb[3 * v + (size_t)k - 6] = (uint8_t)fmin(255, fmax(0, round(val)));
            }
        }
    }
    return UAKD_OK;
}

static uakd_status read_faces(reader *r, const ply_element *e, uakd_mesh *m) {
    int fi = find_prop(e, "vertex_indices");
    if (fi < 0) fi = find_prop(e, "vertex_index");
    if (fi < 0) return uakd_fail(UAKD_EFORMAT, "%s: element \"face\" has no property \"vertex_indices\"", r->path);
    const ply_prop *fp = &e->props[fi];
    if (fp->count_type == T_NONE || fp->type == T_F32 || fp->type == T_F64 || fp->count_type == T_F32 ||
        fp->count_type == T_F64)
        return uakd_fail(UAKD_EFORMAT, "%s: face property \"%s\" must be an integer list", r->path, fp->name);
    size_t cap = (size_t)e->count + 1, nt = 0;
    m->faces = malloc(3 * cap * sizeof(int32_t));
    if (!m->faces) return uakd_fail(UAKD_ENOMEM, "%s: out of memory for %lld faces", r->path, e->count);
    r->elem = "face";
    for (long long f = 0; f < e->count; f++) {
        r->index = f;
        for (int i = 0; i < e->nprops; i++) {
            const ply_prop *pr = &e->props[i];
            r->prop = pr->name;
            double val, cnt = 1;
            if (pr->count_type != T_NONE) {
                UAKD_TRY(read_value(r, pr->count_type, &cnt));
                if (cnt < 0) return uakd_fail(UAKD_EFORMAT, "%s: face %lld, list \"%s\": negative length", r->path, f, pr->name);
            }
            if (i != fi) {
                for (double c = 0; c < cnt; c++) UAKD_TRY(read_value(r, pr->type, &val));
                continue;
            }
            if (cnt > INT_MAX)
                return uakd_fail(UAKD_EFORMAT, "%s: face %lld: list length %.0f is too large", r->path, f, cnt);
            if (cnt < 3)
                return uakd_fail(UAKD_EFORMAT, "%s: face %lld has %g vertices (at least 3 needed)", r->path, f, cnt);
            int32_t first = 0, prev = 0;
            for (int c = 0; c < (int)cnt; c++) {
                UAKD_TRY(read_value(r, pr->type, &val));
                if (val < 0 || val >= m->num_vertices)
                    return uakd_fail(UAKD_EFORMAT, "%s: face %lld: vertex index %.0f out of range [0, %d)", r->path, f,
                                     val, m->num_vertices);
                int32_t idx = (int32_t)val;
                if (c == 0) first = idx;
                if (c >= 2) {
                    if (nt == cap) {
                        if (cap > (size_t)INT_MAX / 2)
                            return uakd_fail(UAKD_ENOMEM, "%s: too many triangles after fanning polygons", r->path);
                        int32_t *g = realloc(m->faces, 3 * 2 * cap * sizeof(int32_t));
                        if (!g) return uakd_fail(UAKD_ENOMEM, "%s: out of memory for faces", r->path);
                        m->faces = g;
                        cap *= 2;
                    }
                    int32_t *t = m->faces + 3 * nt++;
                    t[0] = first;
                    t[1] = prev;
                    t[2] = idx;
                }
                prev = idx;
            }
        }
    }
    m->num_faces = (int)nt;
    return UAKD_OK;
}

static uakd_status skip_element(reader *r, const ply_element *e) {
    r->elem = e->name;
    for (long long k = 0; k < e->count; k++) {
        r->index = k;
        for (int i = 0; i < e->nprops; i++) {
            const ply_prop *pr = &e->props[i];
            r->prop = pr->name;
            double val, cnt = 1;
            if (pr->count_type != T_NONE) {
                UAKD_TRY(read_value(r, pr->count_type, &cnt));
                if (cnt < 0) return uakd_fail(UAKD_EFORMAT, "%s: element \"%s\": negative list length", r->path, e->name);
            }
            for (double c = 0; c < cnt; c++) UAKD_TRY(read_value(r, pr->type, &val));
        }
    }
    return UAKD_OK;
}

/* Smallest number of body bytes an element can take; rejects absurd counts before allocating. */
static double min_bytes(const reader *r, const ply_element *e) {
    double per = 0;
    for (int i = 0; i < e->nprops; i++)
        per += r->binary ? type_size(e->props[i].count_type != T_NONE ? e->props[i].count_type : e->props[i].type) : 2;
    return per * (double)e->count;
}

static uakd_status read_body(reader *r, const ply_element *els, int nels, uakd_mesh *m) {
    int vi = -1;
    for (int i = 0; i < nels; i++)
        if (!strcmp(els[i].name, "vertex")) vi = i;
    if (vi < 0) return uakd_fail(UAKD_EFORMAT, "%s: no \"vertex\" element", r->path);
    double need = 0;
    for (int i = 0; i < nels; i++) {
        if (els[i].nprops == 0 && els[i].count > 0)
            return uakd_fail(UAKD_EFORMAT, "%s: element \"%s\" has no properties", r->path, els[i].name);
        need += min_bytes(r, &els[i]);
    }
    if (need > (double)(r->end - r->p))
        return uakd_fail(UAKD_EFORMAT, "%s: header declares more data (%.0f bytes at least) than the file holds (%td bytes); truncated?",
                         r->path, need, r->end - r->p);
    int seen_vertex = 0;
    for (int i = 0; i < nels; i++) {
        if (i == vi) {
            UAKD_TRY(read_vertices(r, &els[i], m));
            seen_vertex = 1;
        } else if (!strcmp(els[i].name, "face")) {
            if (!seen_vertex) return uakd_fail(UAKD_EFORMAT, "%s: \"face\" element comes before \"vertex\"", r->path);
            UAKD_TRY(read_faces(r, &els[i], m));
        } else {
            UAKD_TRY(skip_element(r, &els[i]));
        }
    }
    while (!r->binary && r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')) r->p++;
    if (r->p != r->end)
        return uakd_fail(UAKD_EFORMAT, "%s: %td bytes of data after the last element; the header's counts are wrong",
                         r->path, r->end - r->p);
    return UAKD_OK;
}

uakd_status uakd_mesh_read_ply(const char *path, uakd_mesh *out) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return uakd_fail(UAKD_EIO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char *buf = NULL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return uakd_fail(UAKD_EIO, "%s: cannot determine the file size", path);
    }
    buf = malloc((size_t)size + 1);
    if (!buf) {
        fclose(f);
        return uakd_fail(UAKD_ENOMEM, "%s: out of memory reading %ld bytes", path, size);
    }
    size_t got = fread(buf, 1, (size_t)size, f);
    fclose(f);
    if (got != (size_t)size) {
        free(buf);
        return uakd_fail(UAKD_EIO, "%s: read %zu of %ld bytes", path, got, size);
    }
    reader r = {.path = path, .p = buf, .end = buf + size, .elem = "", .prop = ""};
    ply_element *els = malloc(MAX_ELEMENTS * sizeof *els);
    int nels = 0;
    uakd_status st = els ? parse_header(&r, els, &nels) : uakd_fail(UAKD_ENOMEM, "%s: out of memory", path);
    if (st == UAKD_OK) st = read_body(&r, els, nels, out);
    free(els);
    free(buf);
    if (st != UAKD_OK) uakd_mesh_free(out);
    return st;
}

void uakd_mesh_free(uakd_mesh *m) {
    if (!m) return;
    free(m->xyz);
    free(m->normals);
    free(m->rgb);
    free(m->faces);
    memset(m, 0, sizeof *m);
}

uakd_status uakd_mesh_bbox(const uakd_mesh *m, double min[3], double max[3]) {
    if (!m || m->num_vertices <= 0 || !m->xyz) return uakd_fail(UAKD_EINVAL, "mesh bounding box: the mesh has no vertices");
    for (int k = 0; k < 3; k++) min[k] = max[k] = m->xyz[k];
    for (int v = 1; v < m->num_vertices; v++)
        for (int k = 0; k < 3; k++) {
            double x = m->xyz[3 * v + k];
            if (x < min[k]) min[k] = x;
            if (x > max[k]) max[k] = x;
        }
    return UAKD_OK;
}

void uakd_bbox_corners(const double min[3], const double max[3], double corners[24]) {
    for (int i = 0; i < 8; i++) {
        corners[3 * i + 0] = (i & 4) ? max[0] : min[0];
        corners[3 * i + 1] = (i & 2) ? max[1] : min[1];
        corners[3 * i + 2] = (i & 1) ? max[2] : min[2];
    }
}

typedef struct {
    double r;
    float x, y, z;
} ranked_point;

static int by_radius_desc(const void *a, const void *b) {
    double ra = ((const ranked_point *)a)->r, rb = ((const ranked_point *)b)->r;
    return (ra < rb) - (ra > rb);
}

uakd_status uakd_mesh_diameter(const uakd_mesh *m, double *diameter) {
    if (!m || m->num_vertices <= 0 || !m->xyz) return uakd_fail(UAKD_EINVAL, "mesh diameter: the mesh has no vertices");
    size_t n = (size_t)m->num_vertices;
    ranked_point *p = malloc(n * sizeof *p);
    if (!p) return uakd_fail(UAKD_ENOMEM, "mesh diameter: out of memory for %zu vertices", n);
    double c[3] = {0, 0, 0};
    for (size_t v = 0; v < n; v++)
        for (int k = 0; k < 3; k++) c[k] += m->xyz[3 * v + (size_t)k];
    for (int k = 0; k < 3; k++) c[k] /= (double)n;
    for (size_t v = 0; v < n; v++) {
        p[v].x = m->xyz[3 * v];
        p[v].y = m->xyz[3 * v + 1];
        p[v].z = m->xyz[3 * v + 2];
        double dx = p[v].x - c[0], dy = p[v].y - c[1], dz = p[v].z - c[2];
        p[v].r = sqrt(dx * dx + dy * dy + dz * dz);
    }
    qsort(p, n, sizeof *p, by_radius_desc);
    double best2 = 0, best = 0;
    for (size_t i = 0; i < n && 2 * p[i].r > best; i++) {
        for (size_t j = i + 1; j < n && p[i].r + p[j].r > best; j++) {
            double dx = (double)p[i].x - p[j].x, dy = (double)p[i].y - p[j].y, dz = (double)p[i].z - p[j].z;
            double d2 = dx * dx + dy * dy + dz * dz;
            if (d2 > best2) {
                best2 = d2;
                best = sqrt(d2);
            }
        }
    }
    free(p);
    *diameter = best;
    return UAKD_OK;
}
