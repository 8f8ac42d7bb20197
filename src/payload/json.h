/*
 * json.h -- point payloads: the optional JSON object carried by every point.
 * Validation (with messages naming the problem and where it is), the canonical
 * compact text that gets stored, and the top-level merge of PATCH .../points/{id}.
 * Built on jansson (Debian libjansson-dev); nothing of jansson leaks through
 * this header. See docs/DESIGN.md "JSON library" for why jansson.
 *
 * Rules every payload text must meet (else NDL_INVALID, err->msg says which):
 *   - valid UTF-8 (strict: no overlongs, surrogates or code points > U+10FFFF),
 *   - one strict RFC 8259 JSON value (no comments, trailing commas, NaN,
 *     leading zeros, single quotes; only whitespace after it),
 *   - and that value is an object,
 *   - nesting at most PAYLOAD_MAX_DEPTH containers ({} alone is depth 1);
 *     deeper texts are refused by an iterative pre-scan before the (recursive)
 *     parser runs, so no input can exhaust the stack,
 *   - no duplicate keys in any object,
 *   - integers fit in int64, reals in a finite double,
 *   - no \u0000 in keys (string values may hold \u0000: consumers of decoded
 *     values must use lengths, not strlen),
 *   - where a max_bytes is given, at most max_bytes bytes.
 *
 * Canonical text: no insignificant whitespace, keys in the order given,
 * strings re-escaped minimally ("\/" -> "/", "\u00e9" -> raw UTF-8 bytes;
 * control characters as \n \t ... or \u001f), integers exact, reals in the
 * shortest of %.15g/%.16g/%.17g that reads back to the same double, always
 * with a '.' or an exponent so they stay reals ("1.0", "1e300", "0.1").
 *
 * Texts are (pointer, length) and need no NUL terminator. Output strings are
 * NUL-terminated (not counted in *out_len), allocated with ndl_malloc: free
 * them with ndl_free. All functions are thread-safe.
 */
#ifndef NDL_PAYLOAD_JSON_H
#define NDL_PAYLOAD_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "needle.h"

#define PAYLOAD_MAX_DEPTH 64
#define PAYLOAD_DEFAULT_MAX_BYTES 65536

/* NDL_OK if json[0..len) meets every rule above and len <= max_bytes;
 * NDL_INVALID with a message such as
 *   "payload is 70000 bytes; the limit is 65536"
 *   "payload is not valid JSON at line 1 column 17: ..."
 *   "payload must be a JSON object, got an array"
 *   "payload nests deeper than 64 levels (line 1 column 65, byte offset 64)"
 *   "payload is not valid UTF-8: byte 0xFF at line 1 column 7 (byte offset 6)"
 * NDL_NOMEM when memory runs out. */
ndl_status payload_validate(const char *json, size_t len, size_t max_bytes, ndl_error *err);

/* Canonical compact text of a payload (every rule above but the size limit is
 * checked; errors as payload_validate). */
ndl_status payload_canonical(const char *json, size_t len, char **out, size_t *out_len, ndl_error *err);

/* payload_validate + payload_canonical with one parse: what an upsert stores.
 * The limit applies to the text given and to the canonical text (which can be
 * longer, e.g. 1e5 -> 100000.0). */
ndl_status payload_prepare(const char *json, size_t len, size_t max_bytes, char **out, size_t *out_len,
                           ndl_error *err);
/* payload_prepare that also hands over the parsed object (*tree, the
 * caller's reference; it reads as the canonical text would), for payload
 * indexes to use instead of parsing the text again. */
ndl_status payload_prepare_tree(const char *json, size_t len, size_t max_bytes, char **out,
                                size_t *out_len, json_t **tree, ndl_error *err);

/* Top-level merge (Qdrant set_payload semantics): start from the stored
 * object, then every key of the patch replaces the stored key of that name
 * (whole value, no deep merge) or is appended after the stored keys; stored
 * keys absent from the patch stay, in place. A patch value of null stores the
 * key with value null (it does not delete the key). stored may be NULL or
 * empty (no payload yet: treated as {}); otherwise it must be a valid
 * payload, else NDL_CORRUPT. The patch must meet the payload rules (its own
 * size is not limited); the merged canonical text must be <= max_bytes, else
 * NDL_INVALID "merged payload is N bytes; the limit is M". */
ndl_status payload_merge(const char *stored, size_t stored_len, const char *patch, size_t patch_len,
                         size_t max_bytes, char **out, size_t *out_len, ndl_error *err);

/* Routes jansson's allocations through ndl_malloc/ndl_free, so OOM injection
 * (ndl_alloc_fail_after) reaches them. Idempotent, thread-safe; the functions
 * above call it. Other modules that use jansson should call it before their
 * first use, then check payload_json_alloc_failed() after each jansson call
 * that allocates: jansson 2.14 aborts on some failed allocations
 * (akheron/jansson#362), so a failed ndl_malloc is retried with malloc and
 * only recorded; the caller must then drop the result and report NDL_NOMEM. */
void payload_json_init(void);

/* True if a jansson allocation failed on this thread since the last call
 * (clears the flag). */
bool payload_json_alloc_failed(void);

#endif
