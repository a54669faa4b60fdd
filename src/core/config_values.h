/* config_values.h -- readers of the settings whose values have a grammar (config_values.c),
 * for config.c: each fills the fields derived from its setting, or returns
 * P2A_ERR_INVALID with *why a constant sentence. */
#ifndef P2A_CONFIG_VALUES_H
#define P2A_CONFIG_VALUES_H

#include "config.h"

/* redis://[[user]:password@]host[:port][/db] into redis_user/password/host/port/db. */
p2a_err config_parse_redis_url(struct p2a_config *cfg, const char **why);
/* The comma-separated PIPE2_AUTH_RESOURCE into resources[]. */
p2a_err config_parse_resources(struct p2a_config *cfg, const char **why);
/* "host/path-prefix=resource, ..." into routes[] (each resource one that is configured);
 * without the setting, each resource is its own route. */
p2a_err config_parse_routes(struct p2a_config *cfg, const char **why);
/* An identity provider's issuer URL: NULL when it is http(s), at most 512 bytes, with no
 * query or fragment, https or else on a loopback host; else why not. */
const char *config_issuer_url_check(const char *url);
/* The comma-separated PIPE2_AUTH_ID_JAG_ISSUERS into id_jag_issuers[] (none: the grant is
 * off), each kept exactly as written (an ID-JAG's iss must equal it). */
p2a_err config_parse_id_jag_issuers(struct p2a_config *cfg, const char **why);
/* "host:port, host:port" into sentinels[]. */
p2a_err config_parse_sentinels(struct p2a_config *cfg, const char **why);

#endif
