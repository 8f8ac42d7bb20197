/*
 * wal_format.c -- the WAL's bytes on disk: segment names and headers,
 * record encoding, and the reader that decodes and checks records of one
 * segment file. Format drawn in wal_internal.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "storage/wal_internal.h"
#include "util/alloc.h"
#include "util/crc32c.h"

#define WINDOW_BYTES ((size_t)1 << 20)

/* ---------------------------------------------------------------- names and headers */

char *wal_seg_path(const char *dir, uint64_t first_lsn)
{
    size_t n = strlen(dir) + 1 + WAL_NAME_LEN + 1;
    char *p = ndl_malloc(n);
    if (p)
        snprintf(p, n, "%s/wal-%016" PRIx64 ".log", dir, first_lsn);
    return p;
}

bool wal_seg_name_parse(const char *name, uint64_t *lsn)
{
    if (strlen(name) != WAL_NAME_LEN || memcmp(name, "wal-", 4) != 0 ||
        memcmp(name + 20, ".log", 4) != 0)
        return false;
    uint64_t v = 0;
    for (int i = 4; i < 20; i++) {
        char c = name[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else
            return false;
        v = v << 4 | d;
    }
    if (v == 0)
        return false;
    *lsn = v;
    return true;
}

void wal_header_encode(uint8_t h[WAL_SEG_HEADER], uint64_t first_lsn)
{
    memset(h, 0, WAL_SEG_HEADER);
    memcpy(h, WAL_MAGIC, 8);
    le_put32(h + 8, WAL_VERSION);
    le_put64(h + 16, first_lsn);
    le_put32(h + 28, crc32c(0, h, 28));
}

const char *wal_header_check(const uint8_t h[WAL_SEG_HEADER], uint64_t first_lsn)
{
    if (memcmp(h, WAL_MAGIC, 8) != 0)
        return "bad magic";
    if (le_get32(h + 28) != crc32c(0, h, 28))
        return "header checksum mismatch";
    if (le_get32(h + 8) != WAL_VERSION)
        return "unknown format version";
    if (le_get32(h + 12) != 0 || le_get32(h + 24) != 0)
        return "reserved header fields are not zero";
    if (le_get64(h + 16) != first_lsn)
        return "first LSN differs from the file name";
    return NULL;
}

void wal_rec_header(uint8_t h[WAL_REC_HEADER], uint32_t type, uint64_t lsn,
                    const wal_part *parts, size_t nparts, uint32_t len)
{
    le_put32(h, len);
    le_put32(h + 4, type);
    le_put64(h + 8, lsn);
    le_put32(h + 20, 0);
    uint32_t crc = crc32c(0, h, 16);
    for (size_t i = 0; i < nparts; i++)
        crc = crc32c(crc, parts[i].data, parts[i].len);
    le_put32(h + 16, crc);
}

/* ---------------------------------------------------------------- reader */

void wal_reader_init(wal_reader *r, int fd, uint64_t size)
{
    memset(r, 0, sizeof *r);
    r->fd = fd;
    r->size = size;
}

void wal_reader_free(wal_reader *r)
{
    ndl_free(r->buf);
    ndl_free(r->big);
    r->buf = r->big = NULL;
    r->cap = r->big_cap = 0;
}

/* Read exactly n bytes at off into dst; -1 (read_errno set) on failure or
 * if the file ends early (it shrank under us). */
static int read_exact(wal_reader *r, uint8_t *dst, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t got = pread(r->fd, dst, n, (off_t)off);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            r->read_errno = errno;
            return -1;
        }
        if (got == 0) {
            r->read_errno = EIO; /* shorter than its size said */
            return -1;
        }
        dst += got;
        n -= (size_t)got;
        off += (uint64_t)got;
    }
    return 0;
}

/* Pointer to file bytes [off, off + n); n <= WINDOW_BYTES and off + n <=
 * size. NULL on a read error or out of memory. */
static const uint8_t *span(wal_reader *r, uint64_t off, size_t n)
{
    if (off >= r->woff && off + n <= r->woff + r->wlen)
        return r->buf + (off - r->woff);
    if (!r->buf) {
        r->cap = (size_t)NDL_MIN((uint64_t)WINDOW_BYTES, NDL_MAX(r->size, (uint64_t)4096));
        r->buf = ndl_malloc(r->cap);
        if (!r->buf) {
            r->cap = 0;
            r->read_errno = ENOMEM;
            return NULL;
        }
    }
    size_t want = (size_t)NDL_MIN((uint64_t)r->cap, r->size - off);
    r->wlen = 0;
    if (read_exact(r, r->buf, want, off) != 0)
        return NULL;
    r->woff = off;
    r->wlen = want;
    return r->buf;
}

wal_rec_result wal_reader_header(wal_reader *r, uint8_t h[WAL_SEG_HEADER])
{
    if (r->size < WAL_SEG_HEADER)
        return WAL_REC_BAD;
    const uint8_t *p = span(r, 0, WAL_SEG_HEADER);
    if (!p)
        return WAL_REC_IOERR;
    memcpy(h, p, WAL_SEG_HEADER);
    return WAL_REC_OK;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

wal_rec_result wal_reader_next(wal_reader *r, uint64_t off, bool want_data, wal_rec *rec,
                               char *why, size_t why_cap)
{
    if (off >= r->size)
        return WAL_REC_END;
    uint64_t left = r->size - off;
    if (left < WAL_REC_HEADER) {
        snprintf(why, why_cap, "a record header cut short (%" PRIu64 " of %u bytes)", left,
                 WAL_REC_HEADER);
        return WAL_REC_BAD;
    }
    const uint8_t *h = span(r, off, WAL_REC_HEADER);
    if (!h)
        return WAL_REC_IOERR;
    uint8_t hdr[WAL_REC_HEADER];
    memcpy(hdr, h, sizeof hdr); /* h dies with the next span() */
    uint32_t len = le_get32(hdr);
    uint32_t stored_crc = le_get32(hdr + 16);
    if (le_get32(hdr + 20) != 0) {
        snprintf(why, why_cap, "reserved field is not zero");
        return WAL_REC_BAD;
    }
    if (len > WAL_RECORD_MAX) {
        snprintf(why, why_cap, "length %" PRIu32 " exceeds the limit of %" PRIu32, len,
                 WAL_RECORD_MAX);
        return WAL_REC_BAD;
    }
    uint64_t total = wal_rec_bytes(len);
    if (total > left) {
        snprintf(why, why_cap,
                 "a record of %" PRIu64 " bytes where the file has %" PRIu64 " left", total,
                 left);
        return WAL_REC_BAD;
    }
    size_t pad = (size_t)(total - WAL_REC_HEADER - len);
    uint32_t crc = crc32c(0, hdr, 16);
    const uint8_t *data = NULL;
    bool pad_ok;
    if (total <= WINDOW_BYTES) {
        const uint8_t *p = span(r, off, (size_t)total);
        if (!p)
            return WAL_REC_IOERR;
        data = p + WAL_REC_HEADER;
        crc = crc32c(crc, data, len);
        pad_ok = all_zero(data + len, pad);
    } else if (want_data) {
        /* the file really holds these bytes (total <= left), so the
         * allocation is bounded by the file's size */
        if (r->big_cap < total) {
            uint8_t *nb = ndl_realloc(r->big, (size_t)total);
            if (!nb) {
                r->read_errno = ENOMEM;
                return WAL_REC_IOERR;
            }
            r->big = nb;
            r->big_cap = (size_t)total;
        }
        if (read_exact(r, r->big, (size_t)(total - WAL_REC_HEADER), off + WAL_REC_HEADER) != 0)
            return WAL_REC_IOERR;
        data = r->big;
        crc = crc32c(crc, data, len);
        pad_ok = all_zero(data + len, pad);
    } else {
        /* checking only: stream the payload through the window */
        uint64_t pos = off + WAL_REC_HEADER, stop = off + total;
        pad_ok = true;
        while (pos < stop) {
            size_t n = (size_t)NDL_MIN((uint64_t)WINDOW_BYTES, stop - pos);
            const uint8_t *p = span(r, pos, n);
            if (!p)
                return WAL_REC_IOERR;
            uint64_t payload_end = off + WAL_REC_HEADER + len;
            size_t in_payload =
                pos >= payload_end ? 0 : (size_t)NDL_MIN((uint64_t)n, payload_end - pos);
            crc = crc32c(crc, p, in_payload);
            if (!all_zero(p + in_payload, n - in_payload))
                pad_ok = false;
            pos += n;
        }
    }
    if (crc != stored_crc) {
        snprintf(why, why_cap, "checksum mismatch");
        return WAL_REC_BAD;
    }
    if (!pad_ok) {
        snprintf(why, why_cap, "padding is not zero");
        return WAL_REC_BAD;
    }
    rec->off = off;
    rec->next = off + total;
    rec->lsn = le_get64(hdr + 8);
    rec->type = le_get32(hdr + 4);
    rec->len = len;
    rec->data = want_data ? data : NULL;
    return WAL_REC_OK;
}

wal_rec_result wal_reader_find_valid(wal_reader *r, uint64_t bad_off, uint64_t min_lsn,
                                     uint64_t *found_off)
{
    /* no more records than headers fit after the damage */
    uint64_t max_lsn = min_lsn + (r->size - bad_off) / WAL_REC_HEADER;
    char why[128];
    for (uint64_t y = bad_off + 8; y < r->size && r->size - y >= WAL_REC_HEADER; y += 8) {
        const uint8_t *h = span(r, y, WAL_REC_HEADER);
        if (!h)
            return WAL_REC_IOERR;
        /* cheap filters before the checksum */
        uint32_t len = le_get32(h);
        uint64_t lsn = le_get64(h + 8);
        if (le_get32(h + 20) != 0 || len > WAL_RECORD_MAX || wal_rec_bytes(len) > r->size - y ||
            lsn < min_lsn || lsn > max_lsn)
            continue;
        wal_rec rec;
        wal_rec_result res = wal_reader_next(r, y, false, &rec, why, sizeof why);
        if (res == WAL_REC_IOERR)
            return res;
        if (res == WAL_REC_OK) {
            *found_off = y;
            return WAL_REC_OK;
        }
    }
    return WAL_REC_END;
}
