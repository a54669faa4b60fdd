/* connguard.h -- bounds on the connections of one listening port, and a listener that
 * survives a full descriptor table.
 *
 * A connguard counts the open connections of one port (the RPC port, the facade,
 * forward-auth) in total and per client address, across the threads that accept on it. A connection over
 * either bound is closed as soon as it is accepted. Trusted proxies (PIPE2_AUTH_TRUSTED_
 * PROXIES) are exempt from the per-address bound: every client behind them shares their
 * address. Refusals are counted and logged at most once a second.
 *
 * An accept_guard sits on one evconnlistener. It keeps one descriptor in reserve; when
 * accept() fails with EMFILE or ENFILE (the table is full), it gives the reserve back,
 * accepts the newest connection and closes it at once (the client sees a closed connection
 * instead of a hang, and the kernel's queue does not grow), takes the reserve again, and
 * pauses the listener with a back-off (10 ms, doubling to 1 s) instead of spinning. One log
 * line a second at most.
 */
#ifndef P2A_CONNGUARD_H
#define P2A_CONNGUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "netaddr.h"

struct sockaddr;
struct event;
struct event_base;
struct evconnlistener;
struct connguard;

struct connguard *connguard_new(const char *port, size_t max_total, size_t max_per_addr,
                                const struct p2a_cidr *exempt, size_t nexempt);
void connguard_free(struct connguard *g);
/* The peer's canonical address ("unknown" for a socket that is not IP). */
void connguard_peer(const struct sockaddr *sa, char out[NETADDR_MAX]);
/* A connection from addr was accepted: true when it may stay (it is then counted until
 * connguard_release with the same addr), false when it must be closed now. Any thread. */
bool connguard_admit(struct connguard *g, const char *addr);
void connguard_release(struct connguard *g, const char *addr);
/* Open connections now, and connections refused since start. */
size_t connguard_open(struct connguard *g);
uint64_t connguard_refused(struct connguard *g);
/* The default total bound for a share of the descriptor limit (RLIMIT_NOFILE / div). */
size_t connguard_default_max(int div);

struct accept_guard {
    const char *name;
    struct evconnlistener *listener;
    struct event *resume_ev;
    int reserve_fd;
    int backoff_ms;
    struct log_limit log;
    uint64_t emfile; /* times the table was found full */
};

void accept_guard_init(struct accept_guard *a, struct event_base *base,
                       struct evconnlistener *l, const char *name);
void accept_guard_deinit(struct accept_guard *a);
/* From the listener's error callback. */
void accept_guard_on_error(struct accept_guard *a);
/* From the accept callback: a connection came, so the back-off starts over. */
void accept_guard_ok(struct accept_guard *a);

#endif
