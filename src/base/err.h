/* err.h -- the error codes every module returns.
 *
 * A function that can fail returns a p2a_err and puts results in out-parameters. A verdict
 * (a token is expired, revoked, ...) is not an error: errors are for when we could not
 * decide. Detail travels as a static string ("why"), never with input bytes in it, so it is
 * safe in logs, in grpc-message and in an OAuth error_description.
 */
#ifndef P2A_ERR_H
#define P2A_ERR_H

typedef enum p2a_err {
    P2A_OK = 0,
    P2A_ERR_INVALID = -1,     /* input malformed or over a bound */
    P2A_ERR_REFUSED = -3,     /* a rule refuses it (a disabled user) */
    P2A_ERR_NOT_FOUND = -4,   /* no such record (or not the caller's) */
    P2A_ERR_UNAVAILABLE = -6, /* backend down, or revocation view not trustworthy */
    P2A_ERR_INTERNAL = -9,
} p2a_err;

#endif
