/* jsonw.h -- JSON written into a caller's fixed buffer: the answers of the hot paths
 * (forward-auth denials, RFC 7662 introspection) are built without an allocation.
 *
 * Strings are escaped per RFC 8259 7 (quote, backslash, and control characters as \uXXXX);
 * bytes at or above 0x80 are copied as they are (our values are UTF-8 already). A writer
 * that runs out of room remembers it: jsonw_end() then says -1 and the buffer holds
 * nothing useful. Pure.
 */
#ifndef P2A_JSONW_H
#define P2A_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct jsonw {
    char *out;
    size_t cap, len;
    bool overflow;
    bool first; /* no member written yet at the current level */
};

/* Starts an object in out[0..cap). */
void jsonw_begin(struct jsonw *w, char *out, size_t cap);
void jsonw_str(struct jsonw *w, const char *key, const char *value);
void jsonw_int(struct jsonw *w, const char *key, int64_t value);
void jsonw_bool(struct jsonw *w, const char *key, bool value);
/* An array member; then jsonw_item() for each string in it, then jsonw_array_end(). */
void jsonw_array(struct jsonw *w, const char *key);
void jsonw_item(struct jsonw *w, const char *value);
void jsonw_array_end(struct jsonw *w);
/* An object member; then its members, then jsonw_object_end(). */
void jsonw_object(struct jsonw *w, const char *key);
void jsonw_object_end(struct jsonw *w);
/* Closes the object and NUL-terminates it: its length, or -1 when it did not fit. */
long jsonw_end(struct jsonw *w);

#endif
