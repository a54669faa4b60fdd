/* http_gate.h -- what stands between the public HTTP port and evhttp.
 *
 * The facade's listener is ours (an evconnlistener handed to evhttp), and every connection
 * evhttp takes is a filter bufferevent of ours over the socket (evhttp_set_bevcb), so that:
 *   - connections are bounded in total and per client address (connguard.h); one over a
 *     bound is shut down as soon as it is accepted;
 *   - EMFILE is met by the reserve-descriptor trick and a paused listener (accept_guard);
 *   - every byte a client sends goes through h1scan.h first: a request with smuggling-prone
 *     framing or control characters in its head is answered 400 (411, 431) with
 *     Connection: close, and the connection is shut down before evhttp sees the request;
 *   - deadlines are absolute, not per read: the head of a request within HEADER_TIMEOUT of
 *     its first byte (of the accept, for the first request; of the last response, when idle
 *     between requests), its body within REQUEST_TIMEOUT of the head's end. A connection
 *     past its deadline is shut down, whatever it trickles.
 * Shutting down the socket (not freeing evhttp's connection under it) lets evhttp see an
 * ordinary end of stream and free the connection itself; a request already handed to the
 * facade is answered into the void, as for any client that hangs up.
 */
#ifndef P2A_HTTP_GATE_H
#define P2A_HTTP_GATE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct evhttp;
struct event_base;
struct mbuf;
struct p2a_config;
struct http_gate;

p2a_err http_gate_new(struct event_base *base, struct evhttp *http, const struct p2a_config *cfg,
                      struct http_gate **out, char *err, size_t errlen);
void http_gate_free(struct http_gate *g);
/* Appends the gate's series (open connections, refusals, deadlines, refused heads). */
void http_gate_metrics(struct http_gate *g, struct mbuf *out);

#endif
