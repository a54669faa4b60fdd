/* fuzz_h1scan.c -- the strict HTTP/1.1 framing reader over any bytes, fed in pieces whose
 * sizes the input chooses (its first byte), so that every split of a line or a body is
 * reached. Invariants: never reads past what it is given, a refusal is final and comes
 * with a status, a body is never left with nothing to read. */
#include <stdbool.h>

#include "fuzz_common.h"
#include "h1scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t step = (size_t)data[0] % 64 + 1, off = 1;
    struct h1scan s;
    h1scan_init(&s);
    bool refused = false;
    while (off < size) {
        size_t n = size - off < step ? size - off : step, used = 0;
        enum h1_event ev = h1scan_feed(&s, data + off, n, &used);
        if (used > n)
            __builtin_trap();
        if (refused && ev != H1_REFUSED)
            __builtin_trap();
        if (ev == H1_REFUSED) {
            if (s.status != 400 && s.status != 411 && s.status != 431)
                __builtin_trap();
            refused = true;
            off += used ? used : 1;
            continue;
        }
        if (s.state == H1_BODY && s.body_left == 0)
            __builtin_trap();
        if (ev == H1_MORE && used != n)
            __builtin_trap();
        off += used;
    }
    return 0;
}
