/* rpc_status.h -- gRPC status codes, grpc-message encoding and grpc-timeout parsing. Pure
 * functions. */
#ifndef P2A_RPC_STATUS_H
#define P2A_RPC_STATUS_H

#include <stddef.h>
#include <stdint.h>

enum rpc_code {
    RPC_OK = 0,
    RPC_CANCELLED = 1,
    RPC_UNKNOWN = 2,
    RPC_INVALID_ARGUMENT = 3,
    RPC_DEADLINE_EXCEEDED = 4,
    RPC_NOT_FOUND = 5,
    RPC_ALREADY_EXISTS = 6,
    RPC_PERMISSION_DENIED = 7,
    RPC_RESOURCE_EXHAUSTED = 8,
    RPC_FAILED_PRECONDITION = 9,
    RPC_ABORTED = 10,
    RPC_OUT_OF_RANGE = 11,
    RPC_UNIMPLEMENTED = 12,
    RPC_INTERNAL = 13,
    RPC_UNAVAILABLE = 14,
    RPC_DATA_LOSS = 15,
    RPC_UNAUTHENTICATED = 16,
};

/* Percent-encodes msg for the grpc-message trailer (bytes outside 0x20..0x7e and '%').
 * Writes at most outlen-1 bytes and a NUL; returns the length written. */
size_t rpc_status_encode_message(const char *msg, char *out, size_t outlen);

/* Parses a grpc-timeout value ("100m", "5S", ...) into milliseconds, rounded up.
 * Returns -1 when malformed. */
int64_t rpc_status_parse_timeout(const char *v, size_t len);

#endif
