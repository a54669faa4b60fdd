/* http_reply.h -- how every HTTP answer of the facade is sent and counted.
 *
 * One way to send (content type, never cached unless the caller said otherwise, no MIME
 * sniffing), one JSON error body ({"error", "error_description"}, RFC 6749 5.2's shape,
 * used by the operational endpoints too), one table of answers by status for /metrics.
 */
#ifndef P2A_HTTP_REPLY_H
#define P2A_HTTP_REPLY_H

#include <stddef.h>
#include <stdint.h>

struct evhttp_request;
struct mbuf;

#define HTTP_STATUS_SLOTS 13 /* 12 statuses and "other" */

/* Counts one answer of status in counts. */
void http_count(uint64_t counts[HTTP_STATUS_SLOTS], int status);
/* Appends `metric{label="value",code="..."} n` for every status counted. */
void http_counts_render(struct mbuf *out, const char *metric, const char *label, const char *value,
                        const uint64_t counts[HTTP_STATUS_SLOTS]);
/* Sends body (ctype NULL: no Content-Type) with Cache-Control: no-store (unless a
 * Cache-Control was set already) and X-Content-Type-Options: nosniff. */
void http_send(struct evhttp_request *req, int status, const char *ctype, const char *body,
               size_t len);
/* {"error":error,"error_description":desc} as JSON text; the caller frees it. */
char *http_error_json(const char *error, const char *desc);
/* http_send of that body as application/json. */
void http_send_error(struct evhttp_request *req, int status, const char *error, const char *desc);

#endif
