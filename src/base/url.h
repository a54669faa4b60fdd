/* url.h -- URLs, once: splitting, the shapes we accept, paths, well-known locations,
 * query parameters.
 *
 * Issuer, resources (configured, or named by a caller), redirect URIs and the metadata
 * locations of RFC 8414 / RFC 9728 are all read through here. Pure.
 */
#ifndef P2A_URL_H
#define P2A_URL_H

#include <stdbool.h>
#include <stddef.h>

struct mbuf;

struct url_parts {
    const char *scheme;
    size_t scheme_len;
    const char *host; /* with its brackets for IPv6 */
    size_t host_len;
    const char *rest; /* what follows the authority: path, query, fragment */
    bool has_authority;
};

/* Splits scheme://authority/rest (or scheme:rest); false when s has no scheme, or an
 * authority with userinfo, an unclosed IPv6 bracket or a port that is not digits. */
bool url_split(const char *s, struct url_parts *u);
/* Case-insensitive scheme and host comparisons. */
bool url_scheme_is(const struct url_parts *u, const char *scheme);
bool url_host_is_loopback(const struct url_parts *u);
/* An http or https URL with a host, and no byte a header or a log line would choke on:
 * nothing at or below space, nothing above 0x7e, no '"', '\\' or '#'. */
bool url_is_http(const char *s);
/* Length of the scheme://authority prefix, 0 when there is none. */
size_t url_authority_end(const char *s);
/* The path and query after the authority ("" for "https://host" and "https://host/"). */
const char *url_path(const char *s);
/* RFC 8615 (RFC 8414 3.1, RFC 9728 3.1): "<scheme://authority>/.well-known/<name><path>"
 * for url into out (truncated to outlen). */
void url_well_known(const char *url, const char *name, char *out, size_t outlen);
/* Appends "?k=v" or "&k=v" to the URL in u, v percent-encoded (RFC 3986 unreserved kept). */
void url_add_param(struct mbuf *u, const char *k, const char *v);
/* Appends v percent-encoded as above (also what application/x-www-form-urlencoded takes). */
void url_encode(struct mbuf *u, const char *v);

/* A request target ("/path?query") as a route is chosen on it: the path with its dot
 * segments removed (RFC 3986 5.2.4), the query after it as it came. Refused (false, *why a
 * constant sentence) where a gateway and we could read the path differently: no leading '/',
 * an empty segment ("//", which nginx merges and others keep), a '..' above the root, a
 * backslash, a '#', a control byte, and '%2F', '%2E', '%5C' (encoded '/', '.', '\') or a
 * '%' not followed by two hex digits. An escaped unreserved character in the path is
 * decoded (RFC 3986 6.2.2.2: "/%6Dcp/%61dmin" is "/mcp/admin", as a gateway routes it; kept
 * escaped, it would miss the longer route and fall to a shorter or catch-all one); other
 * percent-escapes, and the query, are kept as they are. out has cap bytes; a result
 * that does not fit is refused. Writes nothing but out: no allocation. */
bool url_path_normalize(const char *target, char *out, size_t cap, const char **why);

#endif
