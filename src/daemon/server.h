/* server.h -- the daemon: the workers, the revocation view's and the facade's threads, and
 * the main loop that owns process-wide duties (signals, start-up and shutdown) and the side
 * jobs (flusher.c: last-used marks; keywatch.c: key rotation). See server.c. */
#ifndef P2A_SERVER_H
#define P2A_SERVER_H

#include "err.h"

struct p2a_config;
struct keyring;
struct svckeys;

/* Runs until SIGTERM or SIGINT. Returns P2A_OK after a clean shutdown; a start-up failure
 * is logged and returned. Takes ownership of keys (the keyring is reloaded from
 * PIPE2_AUTH_KEYS_DIR when its files change); borrows the rest. */
p2a_err server_run(const struct p2a_config *cfg, struct keyring *keys,
                   const struct svckeys *svckeys);

#endif
