/* rpc_frame.h -- the gRPC length-prefixed message: 1 flag byte, 4-byte big-endian length.
 * Pure functions, no I/O. */
#ifndef P2A_RPC_FRAME_H
#define P2A_RPC_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define RPC_FRAME_PREFIX 5
#define RPC_MAX_MSG_LEN (256 * 1024) /* largest request message we accept */

enum rpc_frame_result {
    RPC_FRAME_OK = 0,
    RPC_FRAME_INCOMPLETE, /* fewer bytes than the prefix announces */
    RPC_FRAME_TOO_LARGE,  /* the prefix announces more than max */
    RPC_FRAME_COMPRESSED, /* the compressed flag is set */
    RPC_FRAME_BAD_FLAG,   /* a flag byte other than 0 or 1 */
    RPC_FRAME_EXTRA,      /* bytes after the one message a unary call may carry */
};

/* Parses the single message of a unary call from buf. On RPC_FRAME_OK, *msg and *msglen
 * point into buf. Checks as much as the bytes allow: a prefix that announces more than max
 * is RPC_FRAME_TOO_LARGE even before the rest arrives. */
enum rpc_frame_result rpc_frame_decode(const uint8_t *buf, size_t len, size_t max,
                                       const uint8_t **msg, size_t *msglen);

/* Writes the 5-byte prefix of an uncompressed message of len bytes. */
void rpc_frame_prefix(uint8_t out[RPC_FRAME_PREFIX], size_t len);

/* What each result means, for grpc-message. */
const char *rpc_frame_why(enum rpc_frame_result r);

#endif
