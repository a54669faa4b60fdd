/* rpc_status.c -- gRPC status helpers (see rpc_status.h). */
#include "rpc_status.h"

size_t rpc_status_encode_message(const char *msg, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
        if (*p >= 0x20 && *p <= 0x7e && *p != '%') {
            if (o + 1 >= outlen)
                break;
            out[o++] = (char)*p;
        } else {
            if (o + 3 >= outlen)
                break;
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = '\0';
    return o;
}

int64_t rpc_status_parse_timeout(const char *v, size_t len)
{
    /* TimeoutValue is 1 to 8 ASCII digits, then one unit */
    if (len < 2 || len > 9)
        return -1;
    int64_t n = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (v[i] - '0');
    }
    switch (v[len - 1]) {
    case 'H':
        return n * 3600 * 1000;
    case 'M':
        return n * 60 * 1000;
    case 'S':
        return n * 1000;
    case 'm':
        return n;
    case 'u':
        return (n + 999) / 1000;
    case 'n':
        return (n + 999999) / 1000000;
    default:
        return -1;
    }
}
