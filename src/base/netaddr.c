/* netaddr.c -- see netaddr.h. */
#include "netaddr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "strlist.h"
#include "xalloc.h"

static bool parse_ip(const char *s, int *family, unsigned char addr[16])
{
    memset(addr, 0, 16);
    if (inet_pton(AF_INET, s, addr) == 1) {
        *family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, s, addr) == 1) {
        *family = AF_INET6;
        /* an IPv4-mapped address is that IPv4 address */
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(addr, mapped, 12) == 0) {
            memmove(addr, addr + 12, 4);
            memset(addr + 4, 0, 12);
            *family = AF_INET;
        }
        return true;
    }
    return false;
}

p2a_err netaddr_cidr_parse(const char *s, struct p2a_cidr *out)
{
    char buf[NETADDR_MAX + 8];
    if (strlen(s) >= sizeof(buf))
        return P2A_ERR_INVALID;
    snprintf(buf, sizeof(buf), "%s", s);
    char *slash = strchr(buf, '/');
    long prefix = -1;
    if (slash != NULL) {
        *slash = '\0';
        char *end;
        if (!isdigit((unsigned char)slash[1]))
            return P2A_ERR_INVALID;
        prefix = strtol(slash + 1, &end, 10);
        if (*end != '\0')
            return P2A_ERR_INVALID;
    }
    if (!parse_ip(buf, &out->family, out->addr))
        return P2A_ERR_INVALID;
    int bits = out->family == AF_INET ? 32 : 128;
    if (prefix < 0)
        prefix = bits;
    if (prefix > bits)
        return P2A_ERR_INVALID;
    out->prefix = (int)prefix;
    return P2A_OK;
}

p2a_err netaddr_cidr_list_parse(const char *list, size_t max, struct p2a_cidr **out, size_t *n,
                                const char **why)
{
    *out = NULL;
    *n = 0;
    if (list == NULL || list[0] == '\0')
        return P2A_OK;
    struct p2a_cidr *v = xcalloc(max, sizeof(*v));
    p2a_err rc = P2A_OK;
    for (struct strlist it = strlist_of(list, ","); rc == P2A_OK && strlist_next(&it);) {
        char *t = xstrndup(it.item, it.len);
        if (*n == max) {
            *why = "too many entries";
            rc = P2A_ERR_INVALID;
        } else if (netaddr_cidr_parse(t, &v[*n]) != P2A_OK) {
            *why = "expected comma-separated addresses or CIDRs (10.0.0.0/8, fd00::/8)";
            rc = P2A_ERR_INVALID;
        } else {
            (*n)++;
        }
        free(t);
    }
    if (rc != P2A_OK) {
        free(v);
        *n = 0;
        return rc;
    }
    *out = v;
    return P2A_OK;
}

static bool in_set(const struct p2a_cidr *set, size_t n, int family, const unsigned char *a)
{
    for (size_t i = 0; i < n; i++) {
        if (set[i].family != family)
            continue;
        int full = set[i].prefix / 8, rest = set[i].prefix % 8;
        if (memcmp(set[i].addr, a, (size_t)full) != 0)
            continue;
        if (rest == 0 || ((set[i].addr[full] ^ a[full]) & (0xff << (8 - rest))) == 0)
            return true;
    }
    return false;
}

bool netaddr_in(const struct p2a_cidr *set, size_t n, const char *ip)
{
    int family;
    unsigned char a[16];
    return parse_ip(ip, &family, a) && in_set(set, n, family, a);
}

/* Never reached by a fetch (loopback is apart: a test may allow it). */
static const struct p2a_cidr special[] = {
    {AF_INET, {0}, 8},                        /* "this network" */
    {AF_INET, {10}, 8},                       /* private */
    {AF_INET, {100, 64}, 10},                 /* shared (carrier NAT) */
    {AF_INET, {169, 254}, 16},                /* link-local, cloud metadata (169.254.169.254) */
    {AF_INET, {172, 16}, 12},                 /* private */
    {AF_INET, {192, 0, 0}, 24},               /* IETF protocol assignments */
    {AF_INET, {192, 0, 2}, 24},               /* documentation */
    {AF_INET, {192, 88, 99}, 24},             /* 6to4 relay */
    {AF_INET, {192, 168}, 16},                /* private */
    {AF_INET, {198, 18}, 15},                 /* benchmarking */
    {AF_INET, {198, 51, 100}, 24},            /* documentation */
    {AF_INET, {203, 0, 113}, 24},             /* documentation */
    {AF_INET, {224}, 4},                      /* multicast */
    {AF_INET, {240}, 4},                      /* reserved, broadcast */
    {AF_INET6, {0}, 8},                       /* ::, ::1 (apart), IPv4-compatible */
    {AF_INET6, {0, 0x64, 0xff, 0x9b}, 32},    /* NAT64 (64:ff9b::/96, 64:ff9b:1::/48) */
    {AF_INET6, {0x01, 0x00}, 64},             /* discard */
    {AF_INET6, {0x20, 0x01}, 23},             /* IETF protocol assignments (Teredo...) */
    {AF_INET6, {0x20, 0x01, 0x0d, 0xb8}, 32}, /* documentation */
    {AF_INET6, {0x20, 0x02}, 16},             /* 6to4: may embed a private IPv4 */
    {AF_INET6, {0xfc}, 7},                    /* unique local (fd00:ec2::254: cloud metadata) */
    {AF_INET6, {0xfe, 0x80}, 10},             /* link-local */
    {AF_INET6, {0xff}, 8},                    /* multicast */
};

static bool is_loopback(int family, const unsigned char a[16])
{
    static const unsigned char v6_loopback[16] = {[15] = 1};
    return family == AF_INET ? a[0] == 127 : memcmp(a, v6_loopback, 16) == 0;
}

bool netaddr_is_public(const char *ip, bool allow_loopback)
{
    int family;
    unsigned char a[16];
    if (!parse_ip(ip, &family, a))
        return false;
    if (is_loopback(family, a))
        return allow_loopback;
    return !in_set(special, sizeof(special) / sizeof(special[0]), family, a);
}

bool netaddr_is_loopback(const char *ip)
{
    int family;
    unsigned char a[16];
    return parse_ip(ip, &family, a) && is_loopback(family, a);
}

bool netaddr_canon(const char *ip, char out[NETADDR_MAX])
{
    int family;
    unsigned char a[16];
    if (!parse_ip(ip, &family, a))
        return false;
    return inet_ntop(family, a, out, NETADDR_MAX) != NULL;
}

void netaddr_limit_key(const char *ip, char out[NETADDR_MAX])
{
    int family;
    unsigned char a[16];
    char text[NETADDR_MAX];
    if (!parse_ip(ip, &family, a) || inet_ntop(family, a, text, sizeof(text)) == NULL) {
        snprintf(out, NETADDR_MAX, "%s", ip);
        return;
    }
    if (family == AF_INET) {
        memcpy(out, text, NETADDR_MAX);
        return;
    }
    memset(a + 8, 0, 8); /* one subnet, the least a host is given (RFC 6177) */
    if (inet_ntop(AF_INET6, a, text, sizeof(text)) == NULL)
        text[0] = '\0';
    snprintf(out, NETADDR_MAX, "%.*s/64", NETADDR_MAX - 4, text);
}

/* One hop of a forwarded chain as an address: "1.2.3.4", "1.2.3.4:80", "[::1]:80",
 * "\"[::1]:80\"" (Forwarded's quoting). false when it is not one (unknown, _hidden). */
static bool hop_addr(const char *s, size_t len, char out[NETADDR_MAX])
{
    while (len > 0 && (*s == ' ' || *s == '\t' || *s == '"'))
        s++, len--;
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '"'))
        len--;
    char buf[NETADDR_MAX + 16];
    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *ip = buf;
    if (buf[0] == '[') {
        char *close = strchr(buf, ']');
        if (close == NULL)
            return false;
        *close = '\0';
        ip = buf + 1;
    } else {
        char *colon = strchr(buf, ':');
        if (colon != NULL && strchr(colon + 1, ':') == NULL)
            *colon = '\0'; /* IPv4 with a port */
    }
    return netaddr_canon(ip, out);
}

/* The n-th "for=" of a Forwarded value, counted from the right, into hop; false past the
 * first. Elements are comma-separated, pairs semicolon-separated. */
static bool forwarded_for(const char *fwd, size_t k, const char **hop, size_t *hlen)
{
    size_t seen = 0;
    const char *end = fwd + strlen(fwd);
    while (end > fwd) {
        const char *start = end;
        while (start > fwd && start[-1] != ',')
            start--;
        const char *p = start;
        while (p < end) {
            const char *q = p;
            while (q < end && *q != ';')
                q++;
            while (p < q && (*p == ' ' || *p == '\t'))
                p++;
            if (q - p > 4 && strncasecmp(p, "for=", 4) == 0) {
                if (seen++ == k) {
                    *hop = p + 4;
                    *hlen = (size_t)(q - p - 4);
                    return true;
                }
                break;
            }
            p = q + 1;
        }
        end = start > fwd ? start - 1 : fwd;
    }
    return false;
}

static bool xff_hop(const char *xff, size_t k, const char **hop, size_t *hlen)
{
    const char *end = xff + strlen(xff);
    size_t seen = 0;
    while (end > xff) {
        const char *start = end;
        while (start > xff && start[-1] != ',')
            start--;
        if (seen++ == k) {
            *hop = start;
            *hlen = (size_t)(end - start);
            return true;
        }
        end = start > xff ? start - 1 : xff;
    }
    return false;
}

void netaddr_client(const struct p2a_cidr *set, size_t n, const char *peer, const char *xff,
                    const char *fwd, char out[NETADDR_MAX])
{
    if (!netaddr_canon(peer, out))
        snprintf(out, NETADDR_MAX, "%s", peer);
    if (n == 0 || !netaddr_in(set, n, out))
        return;
    bool use_xff = xff != NULL && xff[0] != '\0';
    if (!use_xff && (fwd == NULL || fwd[0] == '\0'))
        return;
    char hop[NETADDR_MAX];
    const char *h;
    size_t hlen;
    for (size_t k = 0; use_xff ? xff_hop(xff, k, &h, &hlen) : forwarded_for(fwd, k, &h, &hlen);
         k++) {
        if (!hop_addr(h, hlen, hop))
            return; /* garbage from a trusted hop's point of view: the last trusted one */
        memcpy(out, hop, NETADDR_MAX);
        if (!netaddr_in(set, n, hop))
            return;
    }
    /* every hop trusted: the left-most is as far as we can see */
}
