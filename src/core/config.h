/* config.h -- the daemon's settings: one table, from flags and environment variables.
 *
 * Every setting has an environment variable PIPE2_AUTH_<NAME> and a flag --<name> (lower
 * case, dashes for underscores); a flag wins over the variable, the variable over the
 * default. A value that does not parse or is out of bounds is refused with a message that
 * names the setting. After config_load() succeeds the struct is read-only and shared by
 * every thread.
 */
#ifndef P2A_CONFIG_H
#define P2A_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>

#include "err.h"

#define CONFIG_MAX_RESOURCES 16
#define CONFIG_MAX_PROXIES 64
#define CONFIG_MAX_SENTINELS 16
#define CONFIG_MAX_ROUTES 64
#define CONFIG_MAX_ID_JAG_ISSUERS 8

/* A gateway's request for host and a path under prefix is for resource (a configured one). */
struct config_route {
    char *host;
    char *prefix;
    const char *resource; /* one of resources[] */
};

struct config_hostport {
    char *host;
    int port;
};

struct p2a_cidr;

struct p2a_config {
    char *issuer;                          /* iss of every token, no trailing slash */
    char *resource_list;                   /* as given: comma-separated URLs */
    char *resources[CONFIG_MAX_RESOURCES]; /* split resource_list: PAT audiences */
    size_t nresources;
    char *rpc_listen;  /* host:port */
    char *http_listen; /* host:port of the HTTP facade */
    char *http_host;   /* split http_listen */
    int http_port;
    char *rpc_host; /* split rpc_listen */
    int rpc_port;
    char *redis_url;  /* redis://[user:password@]host:port/db */
    char *redis_host; /* parsed from redis_url */
    int redis_port;
    int redis_db;
    char *redis_user;          /* NULL when none */
    char *redis_password;      /* NULL when none; never printed */
    char *forward_auth_listen; /* host:port; NULL or "": no such listener */
    char *fwd_host;            /* split forward_auth_listen */
    int fwd_port;
    int fwd_max_conns;          /* 0: from RLIMIT_NOFILE */
    int fwd_max_conns_per_addr; /* 0: half of the total */
    int fwd_allow_options;      /* 1: an original OPTIONS passes forward-auth and Check unjudged */
    char *forward_auth_resources; /* as given: host/path-prefix=resource,... */
    struct config_route routes[CONFIG_MAX_ROUTES];
    size_t nroutes;
    bool routes_given;         /* from the setting; else one per resource */
    char *redis_sentinel_list; /* as given; NULL: one Redis at redis_url */
    struct config_hostport sentinels[CONFIG_MAX_SENTINELS];
    size_t nsentinels;           /* 0: not Sentinel mode */
    char *redis_sentinel_master; /* the primary's name at the sentinels */
    int redis_wait_replicas;     /* WAIT after revocations (resolved: >= 0) */
    int redis_wait_timeout_ms;
    char *keys_dir;          /* signing keys, <kid>.pem */
    char *service_keys_file; /* "<role> <sha256 hex> [label]" lines */
    char *tls_cert;          /* PEM; TLS when both cert and key are set */
    char *tls_key;
    int workers;                /* worker threads */
    int last_used_flush_s;      /* how often last-used marks reach Redis */
    int audit;                  /* 1: the audit trail is kept (audit.h) */
    int audit_retention_days;   /* events older than this leave Redis */
    int audit_max_events;       /* and beyond this count */
    int redis_timeout_ms;       /* a Redis command slower than this fails */
    int redis_reserve_mb;       /* maxmemory kept free of anonymous writes (MiB) */
    int idle_timeout_s;         /* a connection with nothing in flight */
    int clock_skew_s;           /* allowance for iat/nbf in the future */
    int max_token_lifetime_s;   /* PAT lifetime cap, and the default */
    int cache_entries;          /* per-worker verified-token cache */
    int cache_mb;               /* its claims data, MiB */
    int revocation_poll_s;      /* repair poll of Redis's revocation log */
    int revocation_staleness_s; /* older view: Introspect fails closed */
    int sweep_interval_s;       /* dropping revocations of expired tokens */
    int shutdown_grace_s;       /* SIGTERM: longest wait for calls in flight */
    int keys_reload_s;          /* how often KEYS_DIR is checked for changes */
    char *log_level;
    /* OAuth (the facade) */
    char *scopes;                    /* scopes the AS offers, space-separated */
    char *resource_scopes;           /* what resources advertise and challenge */
    int access_token_lifetime_s;     /* OAuth access tokens */
    int refresh_token_lifetime_s;    /* refresh tokens, from their issue */
    int refresh_grace_s;             /* a rotated refresh token still works this long */
    int session_lifetime_s;          /* browser login sessions */
    int remember_consent;            /* 1: approved grants are not asked again */
    int register_rate_limit;         /* registrations per address per hour */
    int register_global_rate_limit;  /* ... from all addresses together */
    int client_unused_expiry_s;      /* a self-registered client never used */
    int assertion_rate_limit;        /* client assertions per address per 5 min */
    int assertion_global_rate_limit; /* ... from all addresses together */
    int client_idle_expiry_s;        /* ... after its last use */
    int cc_rate_limit;         /* client_credentials tokens per client and address per 5 min */
    int cc_client_rate_limit;  /* ... per client from all addresses */
    int tx_rate_limit;         /* token exchanges per client and address per 5 min */
    int tx_client_rate_limit;  /* ... per client from all addresses */
    int login_rate_limit;      /* attempts per account and address per 15 min */
    int login_throttle_after;  /* failures per account before spacing out */
    int login_device_failures; /* ... from a browser it signed in from before */
    int hash_threads;          /* password hashing pool */
    int hash_queue;
    char *trusted_proxies;    /* CIDRs, comma-separated; NULL: none */
    struct p2a_cidr *proxies; /* parsed trusted_proxies */
    size_t nproxies;
    char *metrics_listen; /* host:port of /metrics */
    char *metrics_host;
    int metrics_port;
    int http_max_conns; /* 0: from RLIMIT_NOFILE */
    int rpc_max_conns;
    int http_max_conns_per_addr;
    int rpc_max_conns_per_addr; /* 0: a quarter of the total */
    int header_timeout_s;
    int request_timeout_s;
    int insecure_http_issuer;             /* 1: http:// issuer off loopback (tests) */
    int fetch_timeout_ms;                 /* a client document or keys fetch */
    int doc_cache_min_s, doc_cache_max_s; /* bounds on a fetched document's max-age */
    char *fetch_ca_file;                  /* tests only: trusted instead of the system */
    int fetch_allow_loopback;             /* tests only: fetches may reach loopback */
    /* people (sign-in) */
    int local_accounts;         /* 1: the login page takes CreateUser's passwords */
    int account_pages;          /* 1: /account/ serves people their tokens and clients */
    int account_pat_rate_limit; /* PATs a person may make there per hour */
    char
        *upstream_issuer; /* an OpenID Connect provider people sign in with; NULL: none, never "" */
    char *upstream_client_id;
    char *upstream_client_secret;   /* client_secret_basic at its token endpoint */
    char *upstream_scopes;          /* asked of it; "openid" among them */
    char *upstream_name_claim;      /* the claim shown as the person's name */
    char *upstream_subject_prefix;  /* before its sub in our user ids; NULL: none */
    char *upstream_allowed_domains; /* verified email domains admitted; NULL: any */
    char *upstream_required_claim;  /* name=value the ID token must carry; NULL: none */
    /* Enterprise-Managed Authorization (ID-JAG, idjag.h) */
    char *id_jag_issuer_list; /* as given: comma-separated issuer URLs; NULL: the grant is off */
    char *id_jag_issuers[CONFIG_MAX_ID_JAG_ISSUERS]; /* split: trusted exactly as written */
    size_t nid_jag_issuers;
};

/* Fills cfg from argv and the environment. On error writes a message naming the setting to
 * err (a caller buffer of errlen bytes) and returns P2A_ERR_INVALID; cfg is then freed.
 * "--help" returns P2A_ERR_NOT_FOUND after printing the table to stdout. */
p2a_err config_load(struct p2a_config *cfg, int argc, char **argv, char *err, size_t errlen);

/* Releases every string in cfg. */
void config_deinit(struct p2a_config *cfg);

/* Every setting as a JSON object (a jansson json_t *, caller's reference), secrets
 * redacted: for the start-up log line. */
void *config_json(const struct p2a_config *cfg);

/* Prints the table of settings (flag, variable, meaning, default). */
void config_usage(FILE *out);

/* The configured resource a gateway's request for host and path (with its query, if any)
 * is for, or NULL: PIPE2_AUTH_FORWARD_AUTH_RESOURCES first (the longest prefix; a request no
 * route matches is for none), else the resource whose own host and path match, else the only
 * one configured. host or path NULL: only that last. Never anything the client says. */
const char *config_resource_at(const struct p2a_config *cfg, const char *host, const char *path);

/* Splits "host:port" or "[v6]:port". Returns P2A_ERR_INVALID with *why set when malformed.
 * host is a fresh string the caller frees. */
/* The known setting name (without PIPE2_AUTH_) closest to name[0..len) by edit distance,
 * NULL when none is near. */
const char *config_closest(const char *name, size_t len);
/* Warns (startup.unknown_setting) for every PIPE2_AUTH_* variable of env that is no
 * setting, naming the closest known one; the number warned. Settings are read by name,
 * so a misspelt one would otherwise be ignored in silence. */
size_t config_warn_unknown(char *const *env);
p2a_err config_parse_hostport(const char *s, char **host, int *port, const char **why);

#endif
