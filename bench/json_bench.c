/*
 * json_bench.c -- picks the JSON library for payloads and HTTP bodies by
 * measuring the Debian 12 candidates side by side:
 *   cJSON 1.7.15 (libcjson-dev), jansson 2.14 (libjansson-dev), json-c 0.16 (libjson-c-dev)
 *
 * Bodies:
 *   upsert   {"points":[{"id":i,"vector":[768 floats],"payload":{..}} x 1000]} (~9 MB)
 *   payload  10,000 small payload-like objects (~150-250 B each), parsed one by one
 * Measures: parse MB/s (of input), serialize MB/s (compact, of output, from the
 * parsed tree), "build+print" of a search answer holding vectors (100 x 768
 * doubles created with the library's constructors, then printed), and the
 * live heap held by the parsed tree (glibc mallinfo2, as a multiple of the
 * input size). Best of several rounds. Then a table of behaviours that matter
 * for correctness (number round trips, UTF-8, duplicates, nesting, errors);
 * each probe runs in a forked child so a crashing library is reported, not fatal.
 *
 * jansson.h and json-c's json.h cannot share a translation unit (both declare
 * json_object, json_type, ...; the shared-library symbols are versioned, so
 * linking both is fine). This file is therefore compiled twice: once with
 * -DJSON_BENCH_JSONC_TU (only the json-c adapter) and once normally.
 *
 * Build (stand-alone; needs libcjson-dev libjansson-dev libjson-c-dev):
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -DJSON_BENCH_JSONC_TU -c bench/json_bench.c \
 *      -o build/json_bench_jsonc.o &&
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra bench/json_bench.c build/json_bench_jsonc.o \
 *      $(pkg-config --cflags --libs libcjson jansson json-c) -lpthread -o build/json_bench
 * Run:  build/json_bench [ROUNDS]    (default 5)
 */
#ifdef JSON_BENCH_JSONC_TU
/* ------------------------------------------------ json-c translation unit */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

enum { ANSWER_POINTS = 100, DIM = 768 }; /* must match the main unit */
void *jc_parse(const char *s, size_t len);
char *jc_print(void *t, size_t *len);
void jc_drop(void *t);
void *jc_build(const double *v);
void jc_error_text(const char *in, size_t len, char *out, size_t cap);

/* json-c: STRICT + VALIDATE_UTF8, depth 65 (the spec's limit + 1). */
void *jc_parse(const char *s, size_t len)
{
    struct json_tokener *tok = json_tokener_new_ex(65);
    if (!tok)
        return NULL;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *o = json_tokener_parse_ex(tok, s, (int)len);
    if (json_tokener_get_error(tok) != json_tokener_success || json_tokener_get_parse_end(tok) != len) {
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    return o;
}
char *jc_print(void *t, size_t *len)
{
    size_t n;
    const char *s = json_object_to_json_string_length(t, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
    char *c = malloc(n + 1); /* the string belongs to the tree; copy to measure like the others */
    memcpy(c, s, n + 1);
    *len = n;
    return c;
}
void jc_drop(void *t) { json_object_put(t); }
void *jc_build(const double *v)
{
    json_object *root = json_object_new_object(), *res = json_object_new_array();
    json_object_object_add(root, "results", res);
    for (unsigned i = 0; i < ANSWER_POINTS; i++) {
        json_object *p = json_object_new_object(), *vec = json_object_new_array_ext(DIM);
        json_object_object_add(p, "id", json_object_new_int64(i));
        json_object_object_add(p, "score", json_object_new_double(v[i]));
        for (unsigned d = 0; d < DIM; d++)
            json_object_array_add(vec, json_object_new_double(v[(size_t)i * DIM + d]));
        json_object_object_add(p, "vector", vec);
        json_object_array_add(res, p);
    }
    return root;
}


/* Error text and position json-c gives. */
void jc_error_text(const char *in, size_t len, char *out, size_t cap)
{
    struct json_tokener *tok = json_tokener_new_ex(65);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *o = json_tokener_parse_ex(tok, in, (int)len);
    enum json_tokener_error e = json_tokener_get_error(tok);
    if (o && e == json_tokener_success)
        snprintf(out, cap, "(accepted)");
    else
        snprintf(out, cap, "\"%s\" at offset %zu", json_tokener_error_desc(e), json_tokener_get_parse_end(tok));
    json_object_put(o);
    json_tokener_free(tok);
}

#else /* ------------------------------------------------ main translation unit */
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <jansson.h>

#include "bench_util.h"

/* json-c adapter (other translation unit, see the header comment) */
void *jc_parse(const char *s, size_t len);
char *jc_print(void *t, size_t *len);
void jc_drop(void *t);
void *jc_build(const double *v);
void jc_error_text(const char *in, size_t len, char *out, size_t cap);

/* ------------------------------------------------------------ helpers */

typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static void buf_put(buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p) {
            perror("realloc");
            exit(1);
        }
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    buf_put(b, tmp, (size_t)n);
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545F4914F6CDD1Dull;
}
static double rnd_unit(void) { return (double)(rnd() >> 11) / 9007199254740992.0 * 2.0 - 1.0; }

static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static const char *words[] = {"tech", "science", "sports", "news", "art", "music", "travel",
                              "food", "caf\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac", "john", "mary"};
#define NWORDS (sizeof words / sizeof words[0])

/* A payload-like object; shapes vary with i. */
static void gen_payload(buf *b, unsigned i)
{
    buf_printf(b, "{\"category\":\"%s\",\"price\":%.2f,\"year\":%u,\"in_stock\":%s",
               words[rnd() % NWORDS], (double)(rnd() % 100000) / 100.0, 1990 + (unsigned)(rnd() % 35),
               (rnd() & 1) ? "true" : "false");
    if (i % 2 == 0)
        buf_printf(b, ",\"tags\":[\"%s\",\"%s\",\"%s\"]", words[rnd() % NWORDS],
                   words[rnd() % NWORDS], words[rnd() % NWORDS]);
    if (i % 3 == 0)
        buf_printf(b, ",\"meta\":{\"author\":\"%s\",\"score\":%.6g,\"published\":\"2024-0%u-1%uT10:00:00Z\"}",
                   words[rnd() % NWORDS], rnd_unit(), 1 + (unsigned)(rnd() % 9), (unsigned)(rnd() % 10));
    if (i % 4 == 0)
        buf_printf(b, ",\"title\":\"A \\\"quoted\\\" title number %u about \\u00e9t\\u00e9 and vectors\"", i);
    if (i % 5 == 0)
        buf_put(b, ",\"note\":null", 12);
    buf_put(b, "}", 1);
}

enum { UPSERT_POINTS = 1000, DIM = 768, NPAYLOADS = 10000, ANSWER_POINTS = 100 };

static buf gen_upsert(void)
{
    buf b = {0};
    buf_put(&b, "{\"points\":[", 11);
    for (unsigned i = 0; i < UPSERT_POINTS; i++) {
        buf_printf(&b, "%s{\"id\":%u,\"vector\":[", i ? "," : "", i);
        for (unsigned d = 0; d < DIM; d++)
            /* what numpy/float32 -> Python json typically emits: ~9 significant digits */
            buf_printf(&b, "%s%.9g", d ? "," : "", (double)(float)rnd_unit() * 0.1);
        buf_put(&b, "],\"payload\":", 12);
        gen_payload(&b, i);
        buf_put(&b, "}", 1);
    }
    buf_put(&b, "]}", 2);
    return b;
}

/* ------------------------------------------------------------ adapters */

typedef struct lib {
    const char *name;
    void *(*parse)(const char *s, size_t len);
    char *(*print)(void *tree, size_t *len); /* compact; free with free() */
    void (*drop)(void *tree);
    void *(*build_answer)(const double *v); /* {"results":[{"id":i,"score":s,"vector":[..]}]} */
} lib;

/* cJSON: ParseWithLengthOpts + manual trailing-garbage check. */
static void *cj_parse(const char *s, size_t len)
{
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(s, len, &end, 0);
    if (!j)
        return NULL;
    while (end < s + len && (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t'))
        end++;
    if (end != s + len) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}
static char *cj_print(void *t, size_t *len)
{
    char *s = cJSON_PrintUnformatted(t);
    *len = s ? strlen(s) : 0;
    return s;
}
static void cj_drop(void *t) { cJSON_Delete(t); }
static void *cj_build(const double *v)
{
    cJSON *root = cJSON_CreateObject(), *res = cJSON_AddArrayToObject(root, "results");
    for (unsigned i = 0; i < ANSWER_POINTS; i++) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddNumberToObject(p, "id", i);
        cJSON_AddNumberToObject(p, "score", v[i]);
        cJSON *vec = cJSON_AddArrayToObject(p, "vector");
        for (unsigned d = 0; d < DIM; d++)
            cJSON_AddItemToArray(vec, cJSON_CreateNumber(v[(size_t)i * DIM + d]));
        cJSON_AddItemToArray(res, p);
    }
    return root;
}

/* jansson: strict RFC parser; DECODE_ANY so scalars parse too. */
static void *ja_parse(const char *s, size_t len)
{
    json_error_t e;
    return json_loadb(s, len, JSON_DECODE_ANY, &e);
}
static char *ja_print(void *t, size_t *len)
{
    char *s = json_dumps(t, JSON_COMPACT | JSON_ENCODE_ANY);
    *len = s ? strlen(s) : 0;
    return s;
}
static void ja_drop(void *t) { json_decref(t); }
static void *ja_build(const double *v)
{
    json_t *root = json_object(), *res = json_array();
    json_object_set_new(root, "results", res);
    for (unsigned i = 0; i < ANSWER_POINTS; i++) {
        json_t *p = json_object(), *vec = json_array();
        json_object_set_new(p, "id", json_integer(i));
        json_object_set_new(p, "score", json_real(v[i]));
        for (unsigned d = 0; d < DIM; d++)
            json_array_append_new(vec, json_real(v[(size_t)i * DIM + d]));
        json_object_set_new(p, "vector", vec);
        json_array_append_new(res, p);
    }
    return root;
}

static const lib LIBS[] = {
    {"cJSON 1.7.15", cj_parse, cj_print, cj_drop, cj_build},
    {"jansson 2.14", ja_parse, ja_print, ja_drop, ja_build},
    {"json-c 0.16", jc_parse, jc_print, jc_drop, jc_build},
};
#define NLIBS (sizeof LIBS / sizeof LIBS[0])

/* ------------------------------------------------------------ speed */

typedef struct result {
    double up_parse, up_print, up_heap, pl_parse, pl_print, pl_heap, ans_print;
} result;

static void bench_lib(const lib *L, const buf *up, const buf *pl, const size_t *pl_off, const double *vecs,
                      int rounds, result *r)
{
    memset(r, 0, sizeof *r);
    /* upsert body */
    for (int k = 0; k < rounds; k++) {
        size_t h0 = heap_in_use();
        double t0 = bench_now();
        void *t = L->parse(up->p, up->len);
        double t1 = bench_now();
        if (!t) {
            fprintf(stderr, "%s: failed to parse the upsert body\n", L->name);
            exit(1);
        }
        size_t h1 = heap_in_use();
        size_t n;
        double t2 = bench_now();
        char *s = L->print(t, &n);
        double t3 = bench_now();
        if (up->len / (t1 - t0) / 1e6 > r->up_parse)
            r->up_parse = up->len / (t1 - t0) / 1e6;
        if (n / (t3 - t2) / 1e6 > r->up_print)
            r->up_print = n / (t3 - t2) / 1e6;
        r->up_heap = (double)(h1 - h0) / (double)up->len;
        free(s);
        L->drop(t);
    }
    /* payload objects, one parse per object; the trees of one pass stay alive
     * so the heap figure is per-byte of payload text */
    void **trees = malloc(NPAYLOADS * sizeof *trees);
    for (int k = 0; k < rounds; k++) {
        size_t h0 = heap_in_use();
        double t0 = bench_now();
        for (unsigned i = 0; i < NPAYLOADS; i++) {
            trees[i] = L->parse(pl->p + pl_off[i], pl_off[i + 1] - pl_off[i]);
            if (!trees[i]) {
                fprintf(stderr, "%s: failed to parse payload %u\n", L->name, i);
                exit(1);
            }
        }
        double t1 = bench_now();
        size_t h1 = heap_in_use();
        size_t out = 0;
        double t2 = bench_now();
        for (unsigned i = 0; i < NPAYLOADS; i++) {
            size_t n;
            char *s = L->print(trees[i], &n);
            out += n;
            free(s);
        }
        double t3 = bench_now();
        for (unsigned i = 0; i < NPAYLOADS; i++)
            L->drop(trees[i]);
        if (pl->len / (t1 - t0) / 1e6 > r->pl_parse)
            r->pl_parse = pl->len / (t1 - t0) / 1e6;
        if (out / (t3 - t2) / 1e6 > r->pl_print)
            r->pl_print = out / (t3 - t2) / 1e6;
        r->pl_heap = (double)(h1 - h0) / (double)pl->len;
    }
    free(trees);
    /* build + print a search answer with vectors */
    for (int k = 0; k < rounds; k++) {
        double t0 = bench_now();
        void *t = L->build_answer(vecs);
        size_t n;
        char *s = L->print(t, &n);
        double t1 = bench_now();
        if (n / (t1 - t0) / 1e6 > r->ans_print)
            r->ans_print = n / (t1 - t0) / 1e6;
        free(s);
        L->drop(t);
    }
}

/* ------------------------------------------------------------ behaviour */

/* Parse, print compact; "REJECT" when the parse fails. Result in out. */
static void roundtrip(const lib *L, const char *in, size_t len, char *out, size_t cap)
{
    void *t = L->parse(in, len);
    if (!t) {
        snprintf(out, cap, "REJECT");
        return;
    }
    size_t n;
    char *s = L->print(t, &n);
    snprintf(out, cap, "%s", s ? s : "(print failed)");
    free(s);
    L->drop(t);
}

/* Runs fn(L, arg, out) in a forked child (optionally on a thread with a small
 * stack) so crashes are reported. */
typedef struct probe_arg {
    const lib *L;
    const char *in;
    size_t len;
    char out[4096];
} probe_arg;

static void *probe_thread(void *p)
{
    probe_arg *a = p;
    roundtrip(a->L, a->in, a->len, a->out, sizeof a->out);
    return NULL;
}

static void probe(const lib *L, const char *in, size_t len, size_t stack, char *out, size_t cap)
{
    int fds[2];
    if (pipe(fds) != 0) {
        perror("pipe");
        exit(1);
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        static probe_arg a;
        a.L = L;
        a.in = in;
        a.len = len;
        if (stack) {
            pthread_attr_t at;
            pthread_attr_init(&at);
            pthread_attr_setstacksize(&at, stack);
            pthread_t th;
            pthread_create(&th, &at, probe_thread, &a);
            pthread_join(th, NULL);
        } else {
            probe_thread(&a);
        }
        ssize_t w = write(fds[1], a.out, strlen(a.out));
        _exit(w < 0);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = read(fds[0], out + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = 0;
    close(fds[0]);
    int st;
    waitpid(pid, &st, 0);
    if (WIFSIGNALED(st))
        snprintf(out, cap, "CRASH (signal %d)", WTERMSIG(st));
}

/* Error text and position each library gives for a bad document. */
static void error_text(int which, const char *in, char *out, size_t cap)
{
    size_t len = strlen(in);
    if (which == 0) {
        const char *end = NULL;
        cJSON *j = cJSON_ParseWithLengthOpts(in, len, &end, 0);
        if (j) {
            snprintf(out, cap, "(accepted)");
            cJSON_Delete(j);
        } else {
            snprintf(out, cap, "no message; error pointer at offset %td", end ? end - in : (ptrdiff_t)-1);
        }
    } else if (which == 1) {
        json_error_t e;
        json_t *j = json_loadb(in, len, JSON_DECODE_ANY, &e);
        if (j) {
            snprintf(out, cap, "(accepted)");
            json_decref(j);
        } else {
            snprintf(out, cap, "\"%s\" line %d column %d position %d", e.text, e.line, e.column, e.position);
        }
    } else {
        jc_error_text(in, len, out, cap);
    }
}

/* Allocation failure: the library's allocator (cJSON_InitHooks,
 * json_set_alloc_funcs) fails the k-th allocation and every later one, for
 * k = 0, 1, ... until the parse succeeds. Runs in a forked child: a library
 * that aborts on a failed allocation shows as CRASH. */
static long oom_budget = -1;
static void *oom_malloc(size_t n)
{
    if (oom_budget == 0)
        return NULL;
    if (oom_budget > 0)
        oom_budget--;
    return malloc(n);
}

static void oom_probe(int which, char *out, size_t cap)
{
    if (which == 2) {
        snprintf(out, cap, "no allocator hook: cannot be tested (plain malloc)");
        return;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stderr)) /* the assert message would cut the table */
            _exit(255);
        const char *doc = "[1234567890123456,{\"key\":\"a string value longer than sixteen bytes\"},[0.5,true]]";
        if (which == 0) {
            cJSON_Hooks h = {oom_malloc, free};
            cJSON_InitHooks(&h);
        } else {
            json_set_alloc_funcs(oom_malloc, free);
        }
        for (long k = 0;; k++) {
            oom_budget = k;
            void *t = LIBS[which].parse(doc, strlen(doc));
            oom_budget = -1;
            if (t) {
                LIBS[which].drop(t);
                _exit((int)(k > 250 ? 250 : k));
            }
        }
    }
    int st;
    waitpid(pid, &st, 0);
    if (WIFSIGNALED(st))
        snprintf(out, cap, "CRASH (signal %d)", WTERMSIG(st));
    else
        snprintf(out, cap, "clean NULL at each of %d failure points", WEXITSTATUS(st));
}

typedef struct bcase {
    const char *what;
    const char *in;
    size_t len; /* 0: strlen */
    size_t stack;
} bcase;

static char *deep_doc(size_t depth)
{
    char *s = malloc(2 * depth + 1);
    memset(s, '[', depth);
    memset(s + depth, ']', depth);
    s[2 * depth] = 0;
    return s;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 5;
    if (rounds < 1)
        rounds = 1;

    buf up = gen_upsert();
    buf pl = {0};
    size_t *pl_off = malloc((NPAYLOADS + 1) * sizeof *pl_off);
    for (unsigned i = 0; i < NPAYLOADS; i++) {
        pl_off[i] = pl.len;
        gen_payload(&pl, i);
    }
    pl_off[NPAYLOADS] = pl.len;
    double *vecs = malloc((size_t)ANSWER_POINTS * DIM * sizeof *vecs);
    for (size_t i = 0; i < (size_t)ANSWER_POINTS * DIM; i++)
        vecs[i] = (double)(float)rnd_unit();

    printf("upsert body: %u points x %u floats, %.2f MB; payloads: %u objects, %.2f MB (avg %zu B)\n"
           "best of %d rounds; MB/s = 10^6 bytes of JSON text per second; heap = live tree bytes / text bytes\n\n",
           UPSERT_POINTS, DIM, up.len / 1e6, NPAYLOADS, pl.len / 1e6, pl.len / NPAYLOADS, rounds);
    printf("| library      | upsert parse | upsert print | upsert heap | payload parse | payload print | payload heap | answer build+print |\n");
    printf("|--------------|-------------:|-------------:|------------:|--------------:|--------------:|-------------:|-------------------:|\n");
    for (size_t i = 0; i < NLIBS; i++) {
        result r;
        bench_lib(&LIBS[i], &up, &pl, pl_off, vecs, rounds, &r);
        printf("| %-12s | %7.1f MB/s | %7.1f MB/s | %10.1fx | %8.1f MB/s | %8.1f MB/s | %11.1fx | %13.1f MB/s |\n",
               LIBS[i].name, r.up_parse, r.up_print, r.up_heap, r.pl_parse, r.pl_print, r.pl_heap, r.ans_print);
        fflush(stdout);
    }

    char *deep100k = deep_doc(100000);
    char *deep3000 = deep_doc(3000);
    char *deep900 = deep_doc(900);
    const bcase cases[] = {
        {"floats round trip", "[0.1,0.5,1e300,5e-324,0.30000000000000004,-0.0,1.5e-7,123456789.123456789]", 0, 0},
        {"float32 text", "[0.123456791,-0.0812345669,3.40282347e+38]", 0, 0},
        {"integers", "[9007199254740993,9223372036854775807,-9223372036854775808]", 0, 0},
        {"u64 max", "[18446744073709551615]", 0, 0},
        {"integer > u64", "[123456789012345678901234567890]", 0, 0},
        {"1e400", "[1e400]", 0, 0},
        {"non-RFC numbers", "[01]", 0, 0},
        {"non-RFC 1.", "[1.]", 0, 0},
        {"non-RFC -.5", "[-.5]", 0, 0},
        {"NaN literal", "[NaN]", 0, 0},
        {"escapes", "[\"a\\\"b\\\\c\\/d\\n\\u00e9\\ud83d\\ude00\\u001f\"]", 0, 0},
        {"raw UTF-8", "[\"caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x98\x80\"]", 0, 0},
        {"invalid byte 0xFF", "[\"a\xff\"]", 0, 0},
        {"overlong C0 AF", "[\"\xc0\xaf\"]", 0, 0},
        {"overlong E0 80 AF", "[\"\xe0\x80\xaf\"]", 0, 0},
        {"raw surrogate ED A0 80", "[\"\xed\xa0\x80\"]", 0, 0},
        {"> U+10FFFF F4 90 80 80", "[\"\xf4\x90\x80\x80\"]", 0, 0},
        {"truncated seq E6 97", "[\"\xe6\x97\"]", 0, 0},
        {"lone \\ud800 escape", "[\"\\ud800\"]", 0, 0},
        {"\\u0000 escape", "[\"a\\u0000b\"]", 0, 0},
        {"raw control 0x01", "[\"a\x01z\"]", 0, 0},
        {"NUL byte in text", "{\"a\":1}\0", 8, 0},
        {"duplicate keys", "{\"a\":1,\"b\":2,\"a\":3}", 0, 0},
        {"trailing comma", "{\"a\":1,}", 0, 0},
        {"trailing garbage", "{\"a\":1} x", 0, 0},
        {"single quotes", "{'a':1}", 0, 0},
        {"comment", "{\"a\":1 /* c */}", 0, 0},
        {"900 deep, 8 MB stack", deep900, 0, 0},
        {"3000 deep, 8 MB stack", deep3000, 0, 0},
        {"100k deep, 8 MB stack", deep100k, 0, 0},
        {"900 deep, 64 KB stack", deep900, 0, 64 * 1024},
        {"100k deep, 64 KB stack", deep100k, 0, 64 * 1024},
    };
    printf("\nbehaviour (parse, then print compact; REJECT = parse error; CRASH = the child died)\n\n");
    printf("| case | input | %s | %s | %s |\n|---|---|---|---|---|\n", LIBS[0].name, LIBS[1].name, LIBS[2].name);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t len = cases[c].len ? cases[c].len : strlen(cases[c].in);
        printf("| %s | ", cases[c].what);
        if (len > 80)
            printf("(%zu bytes)", len);
        else
            for (size_t k = 0; k < len; k++) {
                unsigned char ch = (unsigned char)cases[c].in[k];
                if (ch < 0x20 || ch >= 0x7f)
                    printf("\\x%02X", ch);
                else if (ch == '|')
                    printf("\\|");
                else
                    putchar(ch);
            }
        for (size_t i = 0; i < NLIBS; i++) {
            char out[4096];
            probe(&LIBS[i], cases[c].in, len, cases[c].stack, out, sizeof out);
            if (strlen(out) > 170)
                snprintf(out + 60, sizeof out - 60, "... (%zu bytes)", strlen(out));
            printf(" | ");
            for (char *p = out; *p; p++) {
                unsigned char ch = (unsigned char)*p;
                if (ch < 0x20 || ch == 0x7f)
                    printf("\\x%02X", ch);
                else if (ch == '|')
                    printf("\\|");
                else
                    putchar(ch);
            }
        }
        printf(" |\n");
        fflush(stdout);
    }

    printf("| allocation failure | [1234567890123456,{\"key\":..},[0.5,true]]");
    for (int i = 0; i < 3; i++) {
        char out[256];
        oom_probe(i, out, sizeof out);
        printf(" | %s", out);
    }
    printf(" |\n");

    const char *bad[] = {"{\"a\": 1,, \"b\": 2}", "{\"name\": \"x\",\n \"v\": [1, 2,\n  tru]}", "{\"a\": \"b"};
    printf("\nerror reports\n\n| input | %s | %s | %s |\n|---|---|---|---|\n", LIBS[0].name, LIBS[1].name,
           LIBS[2].name);
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        printf("| ");
        for (const char *p = bad[b]; *p; p++)
            printf(*p == '\n' ? "\\n" : "%c", *p);
        for (int i = 0; i < 3; i++) {
            char out[512];
            error_text(i, bad[b], out, sizeof out);
            printf(" | %s", out);
        }
        printf(" |\n");
    }

    free(deep100k);
    free(deep3000);
    free(deep900);
    free(up.p);
    free(pl.p);
    free(pl_off);
    free(vecs);
    return 0;
}
#endif
