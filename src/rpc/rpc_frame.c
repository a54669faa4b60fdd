/* rpc_frame.c -- gRPC message framing (see rpc_frame.h). */
#include "rpc_frame.h"

enum rpc_frame_result rpc_frame_decode(const uint8_t *buf, size_t len, size_t max,
                                       const uint8_t **msg, size_t *msglen)
{
    if (len >= 1 && buf[0] > 1)
        return RPC_FRAME_BAD_FLAG;
    if (len >= 1 && buf[0] == 1)
        return RPC_FRAME_COMPRESSED;
    if (len < RPC_FRAME_PREFIX)
        return RPC_FRAME_INCOMPLETE;
    size_t n = (size_t)buf[1] << 24 | (size_t)buf[2] << 16 | (size_t)buf[3] << 8 | buf[4];
    if (n > max)
        return RPC_FRAME_TOO_LARGE;
    if (len - RPC_FRAME_PREFIX < n)
        return RPC_FRAME_INCOMPLETE;
    if (len - RPC_FRAME_PREFIX > n)
        return RPC_FRAME_EXTRA;
    *msg = buf + RPC_FRAME_PREFIX;
    *msglen = n;
    return RPC_FRAME_OK;
}

void rpc_frame_prefix(uint8_t out[RPC_FRAME_PREFIX], size_t len)
{
    out[0] = 0;
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
}

const char *rpc_frame_why(enum rpc_frame_result r)
{
    switch (r) {
    case RPC_FRAME_OK:
        return "ok";
    case RPC_FRAME_INCOMPLETE:
        return "truncated gRPC message";
    case RPC_FRAME_TOO_LARGE:
        return "request message larger than 262144 bytes";
    case RPC_FRAME_COMPRESSED:
        return "compressed messages are not supported";
    case RPC_FRAME_BAD_FLAG:
        return "invalid gRPC message flag";
    case RPC_FRAME_EXTRA:
        return "a unary call carries exactly one message";
    }
    return "invalid gRPC message";
}
