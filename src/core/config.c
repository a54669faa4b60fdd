/* config.c -- the table of settings, their parsing and their bounds.
 *
 * One row per setting (pgbouncer's and redis's habit): name, kind, default, bounds, meaning.
 * The same table drives parsing, --help and the start-up print, so they cannot drift.
 * Runs once, on the main thread, before any worker exists.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>

#include "config_values.h"
#include "log.h"
#include "netaddr.h"
#include "scope.h"
#include "strlist.h"
#include "token.h"
#include "url.h"
#include "xalloc.h"

enum kind { K_STR, K_INT, K_BOOL }; /* K_BOOL: on/off (1/0, true/false) into an int */

struct row {
    const char *name; /* RESOURCE -> PIPE2_AUTH_RESOURCE, --resource */
    enum kind kind;
    size_t offset;
    const char *def; /* NULL: required (strings) or "number of cores" (workers) */
    long min, max;
    bool secret; /* printed redacted */
    bool optional;
    const char *meaning;
};

#define S(field) offsetof(struct p2a_config, field)

static const struct row rows[] = {
    {"ISSUER", K_STR, S(issuer), "http://127.0.0.1:8080", 0, 0, false, false,
     "issuer URL put in iss and checked on verify"},
    {"RESOURCE", K_STR, S(resource_list), "http://127.0.0.1:3000/mcp", 0, 0, false, false,
     "canonical URL(s) of the MCP server(s) PATs are for (aud), comma-separated"},
    {"RPC_LISTEN", K_STR, S(rpc_listen), "127.0.0.1:50051", 0, 0, false, false,
     "host:port of the gRPC listener"},
    {"HTTP_LISTEN", K_STR, S(http_listen), "127.0.0.1:8080", 0, 0, false, false,
     "host:port of the HTTP facade (OAuth endpoints, login pages, health, metrics)"},
    {"REDIS_URL", K_STR, S(redis_url), "redis://127.0.0.1:6379/0", 0, 0, true, false,
     "redis://[user:password@]host:port/db"},
    {"FORWARD_AUTH_LISTEN", K_STR, S(forward_auth_listen), NULL, 0, 0, false, true,
     "host:port of the internal HTTP/1.1 listener the workers serve: /forward-auth for "
     "gateways (nginx auth_request, Traefik, Caddy, Envoy HTTP ext_authz) and RFC 7662 "
     "/introspect (unset: none)"},
    {"FORWARD_AUTH_MAX_CONNECTIONS", K_INT, S(fwd_max_conns), "0", 0, 1000000, false, false,
     "open connections on the forward-auth listener, about 60 KiB each (0: an eighth of the "
     "descriptor limit, at most 1024)"},
    {"FORWARD_AUTH_MAX_CONNECTIONS_PER_ADDRESS", K_INT, S(fwd_max_conns_per_addr), "0", 0, 1000000,
     false, false, "open forward-auth connections from one address (0: half of the total)"},
    {"FORWARD_AUTH_ALLOW_OPTIONS", K_BOOL, S(fwd_allow_options), "off", 0, 1, false, false,
     "let a gateway's original OPTIONS request (a CORS preflight, which carries no token) "
     "through forward-auth and Envoy Check without a token, for MCP servers that answer "
     "browsers' preflights themselves (off: it needs a token like any other)"},
    {"FORWARD_AUTH_RESOURCES", K_STR, S(forward_auth_resources), NULL, 0, 0, false, true,
     "which resource a gateway's request is for: host/path-prefix=resource pairs, "
     "comma-separated (default: the resource whose host and path match, or the only one)"},
    {"REDIS_SENTINELS", K_STR, S(redis_sentinel_list), NULL, 0, 0, false, true,
     "host:port of Redis Sentinels, comma-separated: Sentinel mode (the primary is asked of "
     "them, and followed on failover); REDIS_URL then gives only the password, user and db"},
    {"REDIS_SENTINEL_MASTER", K_STR, S(redis_sentinel_master), "mymaster", 0, 0, false, false,
     "the name the sentinels know the primary by"},
    {"REDIS_WAIT_REPLICAS", K_INT, S(redis_wait_replicas), "-1", -1, 16, false, false,
     "replicas a revocation must reach (WAIT) before it is acknowledged; -1: 1 in Sentinel "
     "mode, 0 otherwise"},
    {"REDIS_WAIT_TIMEOUT_MS", K_INT, S(redis_wait_timeout_ms), "1000", 10, 60000, false, false,
     "how long a revocation waits for its replicas before answering UNAVAILABLE"},
    {"KEYS_DIR", K_STR, S(keys_dir), NULL, 0, 0, false, false,
     "folder of EC P-256 signing keys <kid>.pem; the newest signs, all verify"},
    {"SERVICE_KEYS_FILE", K_STR, S(service_keys_file), NULL, 0, 0, false, false,
     "caller keys: '<role> <sha256 hex of key> [label]' per line"},
    {"TLS_CERT", K_STR, S(tls_cert), NULL, 0, 0, false, true,
     "PEM certificate chain; with TLS_KEY the RPC port speaks TLS (ALPN h2)"},
    {"TLS_KEY", K_STR, S(tls_key), NULL, 0, 0, false, true, "PEM private key for TLS_CERT"},
    {"WORKERS", K_INT, S(workers), NULL, 1, 256, false, false,
     "worker threads (default: number of cores)"},
    {"LAST_USED_FLUSH_INTERVAL", K_INT, S(last_used_flush_s), "30", 1, 3600, false, false,
     "seconds between batched writes of last-used marks"},
    {"AUDIT", K_BOOL, S(audit), "on", 0, 1, false, false,
     "keep the audit trail (Redis, ListAuditEvents, the account page's security log, the "
     "CloudEvents lines on stdout)"},
    {"AUDIT_RETENTION_DAYS", K_INT, S(audit_retention_days), "90", 1, 3650, false, false,
     "days an audit event is kept in Redis"},
    {"AUDIT_MAX_EVENTS", K_INT, S(audit_max_events), "1000000", 1000, 100000000, false, false,
     "audit events kept in Redis at most (the oldest go first; anonymous ones have a tenth "
     "of it of their own)"},
    {"REDIS_TIMEOUT_MS", K_INT, S(redis_timeout_ms), "2000", 50, 60000, false, false,
     "a Redis command unanswered this long fails with UNAVAILABLE"},
    {"REDIS_RESERVE_MB", K_INT, S(redis_reserve_mb), "64", 0, 1048576, false, false,
     "MiB of Redis's maxmemory kept for what must never fail (revocations, issuance, refresh): "
     "anonymous requests that would write are refused once less is free; 0: none kept"},
    {"IDLE_TIMEOUT", K_INT, S(idle_timeout_s), "60", 1, 86400, false, false,
     "seconds before a connection with no call in flight is closed"},
    {"CLOCK_SKEW", K_INT, S(clock_skew_s), "60", 0, 300, false, false,
     "seconds of allowance for iat/nbf in the future"},
    {"MAX_TOKEN_LIFETIME", K_INT, S(max_token_lifetime_s), "31536000", 60, 31536000, false, false,
     "longest PAT lifetime in seconds, and the default (365 days)"},
    {"CACHE_ENTRIES", K_INT, S(cache_entries), "65536", 0, 16777216, false, false,
     "verified tokens cached per worker (0: no cache, every call verifies)"},
    {"CACHE_MB", K_INT, S(cache_mb), "64", 1, 65536, false, false,
     "MiB of claims data the cache of each worker may hold"},
    {"REVOCATION_POLL_INTERVAL", K_INT, S(revocation_poll_s), "5", 1, 28, false, false,
     "seconds between polls of Redis for revocations the subscriber missed"},
    {"REVOCATION_STALENESS", K_INT, S(revocation_staleness_s), "20", 2, 29, false, false,
     "seconds without a successful poll before Introspect answers UNAVAILABLE (under 30)"},
    {"SWEEP_INTERVAL", K_INT, S(sweep_interval_s), "60", 1, 3600, false, false,
     "seconds between sweeps of revocations of expired tokens"},
    {"KEYS_RELOAD_INTERVAL", K_INT, S(keys_reload_s), "10", 1, 3600, false, false,
     "seconds between checks of PIPE2_AUTH_KEYS_DIR for added, changed or removed keys"},
    {"SHUTDOWN_GRACE", K_INT, S(shutdown_grace_s), "25", 1, 3600, false, false,
     "seconds SIGTERM waits for calls in flight before closing what is left"},
    {"LOG_LEVEL", K_STR, S(log_level), "info", 0, 0, false, false, "debug, info, warn or error"},
    {"SCOPES", K_STR, S(scopes), "mcp offline_access", 0, 0, false, false,
     "scopes the authorization server offers, space-separated (its scopes_supported)"},
    {"RESOURCE_SCOPES", K_STR, S(resource_scopes), "mcp", 0, 0, false, false,
     "scopes the resources advertise and challenge with (PRM, WWW-Authenticate), a subset of "
     "SCOPES without offline_access; what a PAT or an OAuth grant asking for none gets"},
    {"ACCESS_TOKEN_LIFETIME", K_INT, S(access_token_lifetime_s), "3600", 5, 86400, false, false,
     "seconds an OAuth access token lives"},
    {"REFRESH_TOKEN_LIFETIME", K_INT, S(refresh_token_lifetime_s), "2592000", 60, 31536000, false,
     false, "seconds a refresh token lives (each refresh issues a new one)"},
    {"REFRESH_GRACE", K_INT, S(refresh_grace_s), "10", 0, 300, false, false,
     "seconds a just-rotated refresh token is still accepted (a lost response)"},
    {"REMEMBER_CONSENT", K_INT, S(remember_consent), "1", 0, 1, false, false,
     "1: an application a person approved is not asked about again until the grant is revoked "
     "or asks for more scopes or resources; 0: ask every time"},
    {"SESSION_LIFETIME", K_INT, S(session_lifetime_s), "43200", 60, 2592000, false, false,
     "seconds a browser login lasts"},
    {"REGISTER_RATE_LIMIT", K_INT, S(register_rate_limit), "400", 1, 1000000, false, false,
     "client registrations per client address per hour (hosted clients register a client per "
     "user, from a few addresses)"},
    {"REGISTER_GLOBAL_RATE_LIMIT", K_INT, S(register_global_rate_limit), "5000", 1, 10000000, false,
     false, "client registrations per hour from all addresses together"},
    {"ASSERTION_RATE_LIMIT", K_INT, S(assertion_rate_limit), "600", 1, 1000000, false, false,
     "client assertions (private_key_jwt) per client address per 5 minutes, and as many ID-JAGs "
     "per address and per client: each leaves its jti in Redis until it expires"},
    {"ASSERTION_GLOBAL_RATE_LIMIT", K_INT, S(assertion_global_rate_limit), "60000", 1, 100000000,
     false, false, "client assertions per 5 minutes from all addresses together"},
    {"CLIENT_CREDENTIALS_RATE_LIMIT", K_INT, S(cc_rate_limit), "600", 1, 1000000, false, false,
     "client_credentials tokens one client may get from one client address per 5 minutes"},
    {"CLIENT_CREDENTIALS_CLIENT_RATE_LIMIT", K_INT, S(cc_client_rate_limit), "6000", 1, 100000000,
     false, false, "client_credentials tokens one client may get per 5 minutes from all addresses"},
    {"TOKEN_EXCHANGE_RATE_LIMIT", K_INT, S(tx_rate_limit), "600", 1, 1000000, false, false,
     "token exchanges one client may make from one client address per 5 minutes"},
    {"TOKEN_EXCHANGE_CLIENT_RATE_LIMIT", K_INT, S(tx_client_rate_limit), "6000", 1, 100000000,
     false, false, "token exchanges one client may make per 5 minutes from all addresses"},
    {"CLIENT_UNUSED_EXPIRY", K_INT, S(client_unused_expiry_s), "600", 60, 31536000, false, false,
     "seconds a self-registered client lasts before its first use (an anonymous registration "
     "is kept this long)"},
    {"CLIENT_IDLE_EXPIRY", K_INT, S(client_idle_expiry_s), "7776000", 60, 315360000, false, false,
     "seconds a self-registered client lasts after its last use (90 days)"},
    {"LOGIN_RATE_LIMIT", K_INT, S(login_rate_limit), "5", 1, 1000000, false, false,
     "sign-in attempts at one account from one address per 15 min, unless one succeeds"},
    {"LOGIN_THROTTLE_AFTER", K_INT, S(login_throttle_after), "20", 1, 1000000, false, false,
     "failed sign-ins at one account (any address) per 15 min before attempts are spaced "
     "out (1 s, doubling, at most 60 s); the right password is never refused for good"},
    {"LOGIN_DEVICE_FAILURES", K_INT, S(login_device_failures), "10", 1, 1000, false, false,
     "failed sign-ins a browser that signed in to the account before (its device cookie) may "
     "make without the account's throttle; past them it is throttled like any other until it "
     "signs in"},
    {"HASH_THREADS", K_INT, S(hash_threads), "2", 1, 64, false, false,
     "threads that check passwords (scrypt), off every event loop"},
    {"HASH_QUEUE", K_INT, S(hash_queue), "32", 1, 100000, false, false,
     "sign-ins waiting for a hashing thread; beyond, sign-in answers 503 with Retry-After"},
    {"TRUSTED_PROXIES", K_STR, S(trusted_proxies), NULL, 0, 0, false, true,
     "CIDRs of proxies whose X-Forwarded-For / Forwarded name the client (comma-separated)"},
    {"METRICS_LISTEN", K_STR, S(metrics_listen), "127.0.0.1:9090", 0, 0, false, false,
     "host:port serving /metrics (and /healthz, /readyz), apart from the public facade"},
    {"HTTP_MAX_CONNECTIONS", K_INT, S(http_max_conns), "0", 0, 1000000, false, false,
     "open connections on the facade (0: a quarter of the descriptor limit)"},
    {"RPC_MAX_CONNECTIONS", K_INT, S(rpc_max_conns), "0", 0, 1000000, false, false,
     "open connections on the RPC port (0: 3/8 of the descriptor limit)"},
    {"HTTP_MAX_CONNECTIONS_PER_ADDRESS", K_INT, S(http_max_conns_per_addr), "64", 1, 1000000, false,
     false, "open facade connections from one client address (trusted proxies exempt)"},
    {"RPC_MAX_CONNECTIONS_PER_ADDRESS", K_INT, S(rpc_max_conns_per_addr), "0", 0, 1000000, false,
     false, "open RPC connections from one client address (0: a quarter of the total)"},
    {"HEADER_TIMEOUT", K_INT, S(header_timeout_s), "10", 1, 3600, false, false,
     "seconds a client has to send a request's headers (and an HTTP/2 preface)"},
    {"REQUEST_TIMEOUT", K_INT, S(request_timeout_s), "20", 1, 3600, false, false,
     "seconds a client has to send a request's body once its headers have come"},
    {"FETCH_TIMEOUT_MS", K_INT, S(fetch_timeout_ms), "5000", 500, 30000, false, false,
     "longest fetch of a client's metadata document or keys (connecting: at most 2 s)"},
    {"DOC_CACHE_MIN", K_INT, S(doc_cache_min_s), "60", 0, 86400, false, false,
     "seconds a fetched client document is kept at least, whatever its Cache-Control says"},
    {"DOC_CACHE_MAX", K_INT, S(doc_cache_max_s), "86400", 60, 604800, false, false,
     "seconds a fetched client document is kept at most"},
    {"FETCH_CA_FILE", K_STR, S(fetch_ca_file), NULL, 0, 0, false, true,
     "UNSAFE, for tests: a CA file trusted for fetched documents instead of the system's"},
    {"FETCH_ALLOW_LOOPBACK", K_INT, S(fetch_allow_loopback), "0", 0, 1, false, false,
     "UNSAFE, for tests: 1 lets fetches of client documents reach loopback addresses"},
    {"INSECURE_HTTP_ISSUER", K_INT, S(insecure_http_issuer), "0", 0, 1, false, false,
     "1: accept an http:// issuer on a host other than loopback (UNSAFE: codes, tokens and "
     "passwords would cross the network in clear; for tests behind a TLS proxy only)"},
    {"LOCAL_ACCOUNTS", K_BOOL, S(local_accounts), "on", 0, 1, false, false,
     "on: the login page signs in the accounts CreateUser made (username and password); off: "
     "people sign in only through PIPE2_AUTH_UPSTREAM_ISSUER"},
    {"ACCOUNT_PAGES", K_BOOL, S(account_pages), "off", 0, 1, false, false,
     "on: /account/ lets a signed-in person create, see and revoke their PATs and disconnect "
     "the MCP clients they approved (for deployments without a dashboard of their own)"},
    {"ACCOUNT_PAT_RATE_LIMIT", K_INT, S(account_pat_rate_limit), "20", 1, 10000, false, false,
     "PATs a person may make on the account page per hour (each revoked one is kept in every "
     "replica's revocation set until it expires)"},
    {"UPSTREAM_ISSUER", K_STR, S(upstream_issuer), NULL, 0, 0, false, true,
     "an OpenID Connect provider people sign in with (its issuer URL; https, or http on "
     "loopback); its redirect URI for us is <PIPE2_AUTH_ISSUER>/callback/upstream"},
    {"UPSTREAM_CLIENT_ID", K_STR, S(upstream_client_id), NULL, 0, 0, false, true,
     "our client id at the upstream provider"},
    {"UPSTREAM_CLIENT_SECRET", K_STR, S(upstream_client_secret), NULL, 0, 0, true, true,
     "our client secret at the upstream provider (client_secret_basic); unset: private_key_jwt "
     "with our signing keys, published at <PIPE2_AUTH_ISSUER>/jwks.json for the provider"},
    {"UPSTREAM_SCOPES", K_STR, S(upstream_scopes), "openid email profile", 0, 0, false, false,
     "scopes asked of the upstream provider (openid among them)"},
    {"UPSTREAM_NAME_CLAIM", K_STR, S(upstream_name_claim), "name", 0, 0, false, false,
     "the ID token claim shown as a person's name (then name, email, preferred_username, sub)"},
    {"UPSTREAM_SUBJECT_PREFIX", K_STR, S(upstream_subject_prefix), NULL, 0, 0, false, true,
     "put before the provider's sub to make a person's user id (the sub of their tokens)"},
    {"UPSTREAM_ALLOWED_DOMAINS", K_STR, S(upstream_allowed_domains), NULL, 0, 0, false, true,
     "email domains admitted, comma-separated (a verified email in one of them is required)"},
    {"UPSTREAM_REQUIRED_CLAIM", K_STR, S(upstream_required_claim), NULL, 0, 0, false, true,
     "name=value: the ID token must carry the claim with that value (or an array holding it), "
     "e.g. groups=mcp-users"},
    {"ID_JAG_ISSUERS", K_STR, S(id_jag_issuer_list), NULL, 0, 0, false, true,
     "identity providers whose Identity Assertion JWT Authorization Grants (ID-JAG, "
     "Enterprise-Managed Authorization) /token redeems: their issuer URLs exactly as their iss "
     "says (https, or http on loopback), comma-separated, at most 8; unset: the grant is off"},
};

#define NROWS (sizeof(rows) / sizeof(rows[0]))

static void env_name(const struct row *r, char *out, size_t n)
{
    snprintf(out, n, "PIPE2_AUTH_%s", r->name);
}

static void flag_name(const struct row *r, char *out, size_t n)
{
    size_t i = 0;
    for (const char *p = r->name; *p && i + 1 < n; p++, i++)
        out[i] = (char)(*p == '_' ? '-' : tolower((unsigned char)*p));
    out[i] = '\0';
}

void config_usage(FILE *out)
{
    fprintf(out, "usage: pipe2-authd [--name=value ...]\n\n"
                 "Each setting is a flag or an environment variable; the flag wins.\n\n");
    for (size_t i = 0; i < NROWS; i++) {
        char env[64], flag[64];
        env_name(&rows[i], env, sizeof(env));
        flag_name(&rows[i], flag, sizeof(flag));
        fprintf(out, "  --%-26s %-36s %s (default: %s)\n", flag, env, rows[i].meaning,
                rows[i].def ? rows[i].def
                            : (rows[i].kind == K_INT ? "cores"
                                                     : (rows[i].optional ? "unset" : "required")));
    }
}

/* redis://[[user]:password@]host[:port][/db] */

static p2a_err set_value(struct p2a_config *cfg, const struct row *r, const char *v,
                         const char **why)
{
    char *base = (char *)cfg;
    if (r->kind == K_STR) {
        char **slot = (char **)(void *)(base + r->offset);
        if (strlen(v) > 4096) {
            *why = "value too long";
            return P2A_ERR_INVALID;
        }
        free(*slot);
        *slot = xstrdup(v);
        return P2A_OK;
    }
    if (r->kind == K_BOOL) {
        bool on = strcasecmp(v, "on") == 0 || strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0;
        bool off = strcasecmp(v, "off") == 0 || strcmp(v, "0") == 0 || strcasecmp(v, "false") == 0;
        if (!on && !off) {
            *why = "must be on or off";
            return P2A_ERR_INVALID;
        }
        *(int *)(void *)(base + r->offset) = on;
        return P2A_OK;
    }
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end != '\0') {
        *why = "not a whole number";
        return P2A_ERR_INVALID;
    }
    if (n < r->min || n > r->max) {
        *why = "out of range";
        return P2A_ERR_INVALID;
    }
    *(int *)(void *)(base + r->offset) = (int)n;
    return P2A_OK;
}

static p2a_err fail(struct p2a_config *cfg, char *err, size_t errlen, const char *setting,
                    const char *why)
{
    snprintf(err, errlen, "invalid configuration: %s: %s", setting, why);
    config_deinit(cfg);
    return P2A_ERR_INVALID;
}

/* https, or http on a loopback host. */
static bool issuer_secure(const struct p2a_config *cfg)
{
    struct url_parts u;
    return url_split(cfg->issuer, &u) && (url_scheme_is(&u, "https") || url_host_is_loopback(&u));
}

static bool set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/* The upstream provider's settings, checked together: NULL when they hold (or none is set:
 * the issuer is then NULL, never ""), else why, with *which the setting to blame. */
static const char *upstream_check(struct p2a_config *cfg, const char **which)
{
    *which = "PIPE2_AUTH_UPSTREAM_ISSUER";
    if (!set(cfg->upstream_issuer)) {
        free(cfg->upstream_issuer);
        cfg->upstream_issuer = NULL;
    }
    if (cfg->upstream_issuer == NULL)
        return cfg->local_accounts ? NULL
                                   : "required when PIPE2_AUTH_LOCAL_ACCOUNTS is off (nobody "
                                     "could sign in)";
    size_t n = strlen(cfg->upstream_issuer);
    while (n > 0 && cfg->upstream_issuer[n - 1] == '/')
        cfg->upstream_issuer[--n] = '\0';
    const char *bad = config_issuer_url_check(cfg->upstream_issuer);
    if (bad != NULL)
        return bad;
    *which = "PIPE2_AUTH_UPSTREAM_CLIENT_ID";
    if (!set(cfg->upstream_client_id) || strlen(cfg->upstream_client_id) > 255)
        return "required with PIPE2_AUTH_UPSTREAM_ISSUER (at most 255 bytes)";
    *which = "PIPE2_AUTH_UPSTREAM_CLIENT_SECRET";
    if (set(cfg->upstream_client_secret) && strlen(cfg->upstream_client_secret) > 512)
        return "at most 512 bytes";
    *which = "PIPE2_AUTH_UPSTREAM_SCOPES";
    if (scope_check(cfg->upstream_scopes) != NULL || !scope_has(cfg->upstream_scopes, "openid", 6))
        return "must be scope tokens separated by single spaces, openid among them";
    *which = "PIPE2_AUTH_UPSTREAM_REQUIRED_CLAIM";
    const char *eq =
        set(cfg->upstream_required_claim) ? strchr(cfg->upstream_required_claim, '=') : NULL;
    if (set(cfg->upstream_required_claim) &&
        (eq == NULL || eq == cfg->upstream_required_claim || eq[1] == '\0' ||
         eq - cfg->upstream_required_claim >= 128))
        return "expected name=value, e.g. groups=mcp-users";
    *which = "PIPE2_AUTH_UPSTREAM_SUBJECT_PREFIX";
    if (set(cfg->upstream_subject_prefix) && strlen(cfg->upstream_subject_prefix) > 32)
        return "at most 32 bytes";
    return NULL;
}

/* NULL when every resource scope is one the authorization server offers and none is
 * offline_access (a grant's property, never a resource's: SEP-2207). */
static const char *resource_scopes_check(const struct p2a_config *cfg)
{
    if (cfg->resource_scopes[0] == '\0' || scope_check(cfg->resource_scopes) != NULL)
        return "must be one or more scope tokens separated by single spaces";
    const char *t;
    size_t n;
    for (const char *p = cfg->resource_scopes; scope_next(&p, &t, &n);) {
        if (!scope_has(cfg->scopes, t, n))
            return "every scope must be one of PIPE2_AUTH_SCOPES";
        if (n == strlen(SCOPE_OFFLINE_ACCESS) && strncmp(t, SCOPE_OFFLINE_ACCESS, n) == 0)
            return "offline_access is the authorization server's, never a resource's";
    }
    return NULL;
}

/* Long on purpose: the table fills the fields, then one check per setting that depends on
 * another (or on a parse), each a line or two, in the order of the table. */
p2a_err config_load(struct p2a_config *cfg, int argc, char **argv, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof(*cfg));
    const char *why = NULL;
    char env[64], flag[64];

    /* defaults, then the environment, then flags: each later source overwrites */
    for (size_t i = 0; i < NROWS; i++) {
        const struct row *r = &rows[i];
        env_name(r, env, sizeof(env));
        if (r->def != NULL && set_value(cfg, r, r->def, &why) != P2A_OK)
            return fail(cfg, err, errlen, env, why);
        const char *v = getenv(env);
        if (v != NULL && v[0] != '\0' && set_value(cfg, r, v, &why) != P2A_OK)
            return fail(cfg, err, errlen, env, why);
    }
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            config_usage(stdout);
            config_deinit(cfg);
            return P2A_ERR_NOT_FOUND;
        }
        if (strncmp(arg, "--", 2) != 0)
            return fail(cfg, err, errlen, arg, "expected --name=value");
        const char *eq = strchr(arg, '=');
        const char *value;
        size_t nlen;
        if (eq != NULL) {
            nlen = (size_t)(eq - arg - 2);
            value = eq + 1;
        } else {
            nlen = strlen(arg + 2);
            if (a + 1 >= argc)
                return fail(cfg, err, errlen, arg, "missing value");
            value = argv[++a];
        }
        const struct row *found = NULL;
        for (size_t i = 0; i < NROWS && found == NULL; i++) {
            flag_name(&rows[i], flag, sizeof(flag));
            if (strlen(flag) == nlen && strncmp(flag, arg + 2, nlen) == 0)
                found = &rows[i];
        }
        if (found == NULL)
            return fail(cfg, err, errlen, arg, "unknown setting (see --help)");
        flag_name(found, flag, sizeof(flag));
        if (set_value(cfg, found, value, &why) != P2A_OK) {
            char name[80];
            snprintf(name, sizeof(name), "--%s", flag);
            return fail(cfg, err, errlen, name, why);
        }
    }

    if (cfg->workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->workers = n < 1 ? 1 : (n > 256 ? 256 : (int)n);
    }
    for (size_t i = 0; i < NROWS; i++) {
        const struct row *r = &rows[i];
        char **slot = (char **)(void *)((char *)cfg + r->offset);
        if (r->kind == K_STR && !r->optional && (*slot == NULL || (*slot)[0] == '\0')) {
            env_name(r, env, sizeof(env));
            return fail(cfg, err, errlen, env, "required");
        }
    }
    size_t ilen = strlen(cfg->issuer);
    while (ilen > 0 && cfg->issuer[ilen - 1] == '/')
        cfg->issuer[--ilen] = '\0';
    if (!url_is_http(cfg->issuer) || strchr(cfg->issuer, '?') != NULL)
        return fail(cfg, err, errlen, "PIPE2_AUTH_ISSUER",
                    "must be an http(s) URL with no query or fragment");
    if (!issuer_secure(cfg) && !cfg->insecure_http_issuer)
        return fail(cfg, err, errlen, "PIPE2_AUTH_ISSUER",
                    "an http:// issuer is accepted only on a loopback host (localhost, "
                    "127.0.0.1, [::1]); use https, or PIPE2_AUTH_INSECURE_HTTP_ISSUER=1 for "
                    "a test");
    if (config_parse_resources(cfg, &why) != P2A_OK)
        return fail(cfg, err, errlen, "PIPE2_AUTH_RESOURCE", why);
    if (config_parse_hostport(cfg->rpc_listen, &cfg->rpc_host, &cfg->rpc_port, &why) != P2A_OK)
        return fail(cfg, err, errlen, "PIPE2_AUTH_RPC_LISTEN", why);
    if (config_parse_hostport(cfg->http_listen, &cfg->http_host, &cfg->http_port, &why) != P2A_OK)
        return fail(cfg, err, errlen, "PIPE2_AUTH_HTTP_LISTEN", why);
    if (config_parse_hostport(cfg->metrics_listen, &cfg->metrics_host, &cfg->metrics_port, &why) !=
        P2A_OK)
        return fail(cfg, err, errlen, "PIPE2_AUTH_METRICS_LISTEN", why);
    if (cfg->forward_auth_listen != NULL && cfg->forward_auth_listen[0] != '\0') {
        if (config_parse_hostport(cfg->forward_auth_listen, &cfg->fwd_host, &cfg->fwd_port, &why) !=
            P2A_OK)
            return fail(cfg, err, errlen, "PIPE2_AUTH_FORWARD_AUTH_LISTEN", why);
        if (cfg->fwd_port == cfg->rpc_port || cfg->fwd_port == cfg->http_port ||
            cfg->fwd_port == cfg->metrics_port)
            return fail(cfg, err, errlen, "PIPE2_AUTH_FORWARD_AUTH_LISTEN",
                        "needs a port of its own (not the RPC, HTTP or metrics port)");
    }
    if (netaddr_cidr_list_parse(cfg->trusted_proxies, CONFIG_MAX_PROXIES, &cfg->proxies,
                                &cfg->nproxies, &why) != P2A_OK)
        return fail(cfg, err, errlen, "PIPE2_AUTH_TRUSTED_PROXIES", why);
    if (config_parse_redis_url(cfg, &why) != P2A_OK)
        return fail(cfg, err, errlen, "PIPE2_AUTH_REDIS_URL", why);
    if (config_parse_routes(cfg, &why) != P2A_OK)
        return fail(cfg, err, errlen, "PIPE2_AUTH_FORWARD_AUTH_RESOURCES", why);
    if (config_parse_sentinels(cfg, &why) != P2A_OK)
        return fail(cfg, err, errlen, "PIPE2_AUTH_REDIS_SENTINELS", why);
    if (cfg->redis_wait_replicas < 0)
        cfg->redis_wait_replicas = cfg->nsentinels > 0 ? 1 : 0;
    if (cfg->redis_wait_replicas > 0 && cfg->redis_wait_timeout_ms >= cfg->redis_timeout_ms)
        return fail(cfg, err, errlen, "PIPE2_AUTH_REDIS_WAIT_TIMEOUT_MS",
                    "must be below PIPE2_AUTH_REDIS_TIMEOUT_MS");
    if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL))
        return fail(cfg, err, errlen, "PIPE2_AUTH_TLS_CERT",
                    "TLS_CERT and TLS_KEY must be set together");
    if (cfg->revocation_staleness_s <= cfg->revocation_poll_s)
        return fail(cfg, err, errlen, "PIPE2_AUTH_REVOCATION_STALENESS",
                    "must be above PIPE2_AUTH_REVOCATION_POLL_INTERVAL (and under 30)");
    if (cfg->scopes[0] == '\0' || scope_check(cfg->scopes) != NULL)
        return fail(cfg, err, errlen, "PIPE2_AUTH_SCOPES",
                    "must be one or more scope tokens separated by single spaces");
    if (cfg->doc_cache_min_s > cfg->doc_cache_max_s)
        return fail(cfg, err, errlen, "PIPE2_AUTH_DOC_CACHE_MIN",
                    "must not be above PIPE2_AUTH_DOC_CACHE_MAX");
    if ((why = resource_scopes_check(cfg)) != NULL)
        return fail(cfg, err, errlen, "PIPE2_AUTH_RESOURCE_SCOPES", why);
    const char *which;
    if ((why = upstream_check(cfg, &which)) != NULL)
        return fail(cfg, err, errlen, which, why);
    if (config_parse_id_jag_issuers(cfg, &why) != P2A_OK)
        return fail(cfg, err, errlen, "PIPE2_AUTH_ID_JAG_ISSUERS", why);
    enum log_level lvl;
    if (log_level_parse(cfg->log_level, &lvl) != P2A_OK)
        return fail(cfg, err, errlen, "PIPE2_AUTH_LOG_LEVEL",
                    "expected debug, info, warn or error");
    return P2A_OK;
}

void config_deinit(struct p2a_config *cfg)
{
    for (size_t i = 0; i < NROWS; i++) {
        if (rows[i].kind == K_STR) {
            char **slot = (char **)(void *)((char *)cfg + rows[i].offset);
            free(*slot);
        }
    }
    for (size_t i = 0; i < cfg->nresources; i++)
        free(cfg->resources[i]);
    for (size_t i = 0; i < cfg->nid_jag_issuers; i++)
        free(cfg->id_jag_issuers[i]);
    free(cfg->rpc_host);
    free(cfg->fwd_host);
    free(cfg->http_host);
    free(cfg->metrics_host);
    free(cfg->proxies);
    free(cfg->redis_host);
    for (size_t i = 0; i < cfg->nsentinels; i++)
        free(cfg->sentinels[i].host);
    for (size_t i = 0; i < cfg->nroutes; i++) {
        free(cfg->routes[i].host);
        free(cfg->routes[i].prefix);
    }
    free(cfg->redis_user);
    if (cfg->redis_password != NULL) {
        memset(cfg->redis_password, 0, strlen(cfg->redis_password));
        free(cfg->redis_password);
    }
    memset(cfg, 0, sizeof(*cfg));
}

/* Levenshtein distance of a[0..an) and b[0..bn), both at most 63 bytes. */
static size_t distance(const char *a, size_t an, const char *b, size_t bn)
{
    size_t row[64];
    for (size_t j = 0; j <= bn; j++)
        row[j] = j;
    for (size_t i = 1; i <= an; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= bn; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[bn];
}

const char *config_closest(const char *name, size_t len)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    for (size_t i = 0; i < NROWS && len < 64; i++) {
        size_t rl = strlen(rows[i].name);
        size_t d = rl < 64 ? distance(name, len, rows[i].name, rl) : SIZE_MAX;
        if (d < best_d)
            best = rows[i].name, best_d = d;
    }
    /* a guess further than a third of the name is no guess */
    return best != NULL && best_d * 3 <= len ? best : NULL;
}

size_t config_warn_unknown(char *const *env)
{
    static const char prefix[] = "PIPE2_AUTH_";
    size_t warned = 0;
    for (size_t e = 0; env != NULL && env[e] != NULL; e++) {
        const char *v = env[e];
        if (strncmp(v, prefix, sizeof(prefix) - 1) != 0)
            continue;
        const char *name = v + sizeof(prefix) - 1;
        size_t len = strcspn(name, "=");
        bool known = false;
        for (size_t i = 0; i < NROWS && !known; i++)
            known = strlen(rows[i].name) == len && strncmp(rows[i].name, name, len) == 0;
        if (known)
            continue;
        const char *near = config_closest(name, len);
        int shown = len > 64 ? 64 : (int)len;
        if (near != NULL)
            log_warn("startup.unknown_setting",
                     "PIPE2_AUTH_%.*s is not a setting and is ignored; did you mean "
                     "PIPE2_AUTH_%s?",
                     shown, name, near);
        else
            log_warn("startup.unknown_setting",
                     "PIPE2_AUTH_%.*s is not a setting and is ignored (see --help)", shown, name);
        warned++;
    }
    return warned;
}

void *config_json(const struct p2a_config *cfg)
{
    json_t *o = json_object();
    for (size_t i = 0; i < NROWS; i++) {
        const struct row *r = &rows[i];
        char env[64], redis[512];
        env_name(r, env, sizeof(env));
        const char *base = (const char *)cfg;
        if (r->kind == K_BOOL) {
            json_object_set_new(
                o, env, json_string(*(const int *)(const void *)(base + r->offset) ? "on" : "off"));
        } else if (r->kind == K_INT) {
            json_object_set_new(o, env,
                                json_integer(*(const int *)(const void *)(base + r->offset)));
        } else if (r->offset == S(redis_url)) {
            snprintf(redis, sizeof(redis), "redis://%s%s%s%s:%d/%d",
                     cfg->redis_user ? cfg->redis_user : "", cfg->redis_password ? ":***" : "",
                     cfg->redis_password || cfg->redis_user ? "@" : "", cfg->redis_host,
                     cfg->redis_port, cfg->redis_db);
            json_object_set_new(o, env, json_string(redis));
        } else {
            const char *v = *(char *const *)(const void *)(base + r->offset);
            json_object_set_new(o, env, v ? json_string(r->secret ? "***" : v) : json_null());
        }
    }
    return o;
}
