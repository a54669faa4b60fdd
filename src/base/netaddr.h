/* netaddr.h -- client addresses: CIDR sets, and who the client is behind a proxy.
 *
 * Limits that key on an address must key on the client's, not on a proxy's: behind an
 * Ingress every connection comes from the Ingress. The peer of the TCP connection is the
 * client unless it is one of PIPE2_AUTH_TRUSTED_PROXIES; then the forwarded chain
 * (X-Forwarded-For, else RFC 7239 Forwarded) is read from the right, each trusted hop
 * skipped, and the first address not trusted is the client. Entries to the left of it
 * are the client's own words and are never believed. Addresses come out in one canonical
 * text form (inet_ntop), so that one client is one key.
 */
#ifndef P2A_NETADDR_H
#define P2A_NETADDR_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define NETADDR_MAX 64 /* canonical text of an IPv6 address fits */

struct p2a_cidr {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    int prefix;
};

/* "10.0.0.0/8", "127.0.0.1" (a /32), "fd00::/8". */
p2a_err netaddr_cidr_parse(const char *s, struct p2a_cidr *out);
/* A comma-separated list, at most max entries, into a fresh array (caller frees). */
p2a_err netaddr_cidr_list_parse(const char *list, size_t max, struct p2a_cidr **out, size_t *n,
                                const char **why);
/* Whether the textual address ip is in one of set[0..n). */
bool netaddr_in(const struct p2a_cidr *set, size_t n, const char *ip);
/* Whether an outgoing fetch may connect to ip: false for the special-purpose blocks of RFC
 * 6890 and its successors (private, shared, link-local with cloud metadata, loopback unless
 * allow_loopback, multicast, documentation, benchmarking, reserved, NAT64, 6to4, ULA), and
 * for anything that is not an IP address. IPv4-mapped IPv6 is judged as IPv4. */
bool netaddr_is_public(const char *ip, bool allow_loopback);
/* Whether ip is 127.0.0.0/8 or ::1 (IPv4-mapped judged as IPv4). */
bool netaddr_is_loopback(const char *ip);
/* Canonical text of ip into out; false when it is not an IP address. */
bool netaddr_canon(const char *ip, char out[NETADDR_MAX]);
/* What a limit per address counts ip as: an IPv4 address itself (IPv4-mapped IPv6 too), an
 * IPv6 address its /64 ("2001:db8:1:2::/64"), since anyone given one address is given the
 * whole subnet. Anything else (a peer that is no address, "unknown") is copied as it is. */
void netaddr_limit_key(const char *ip, char out[NETADDR_MAX]);
/* The client's address (see above). xff: every X-Forwarded-For value in order, joined with
 * ','; fwd: every Forwarded value likewise; either may be NULL. */
void netaddr_client(const struct p2a_cidr *set, size_t n, const char *peer, const char *xff,
                    const char *fwd, char out[NETADDR_MAX]);

#endif
