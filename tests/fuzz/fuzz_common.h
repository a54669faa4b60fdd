/* fuzz_common.h -- what the libFuzzer targets share: a keyring, a configuration and a
 * worker's service context made once per process, the way pipe2-authd makes them. */
#ifndef P2A_FUZZ_COMMON_H
#define P2A_FUZZ_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "config.h"
#include "keys.h"
#include "lastused.h"
#include "metrics.h"
#include "revoke.h"
#include "service.h"
#include "svckeys.h"
#include "tcache.h"
#include "xalloc.h"

struct fuzz_world {
    struct p2a_config cfg;
    struct keyring *keys;
    struct svckeys *svckeys;
    struct service_shared shared;
    struct service_ctx svc;
};

/* Made on first use and kept for the process (libFuzzer runs in one process). */
static inline struct fuzz_world *fuzz_world(void)
{
    static struct fuzz_world *w;
    if (w != NULL)
        return w;
    w = xcalloc(1, sizeof(*w));
    char dir[] = "/tmp/p2a-fuzz-XXXXXX";
    P2A_ASSERT(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof(path), "%s/fuzz-key.pem", dir);
    EVP_PKEY *k = EVP_EC_gen("P-256");
    FILE *f = fopen(path, "w");
    P2A_ASSERT(k != NULL && f != NULL && PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL));
    fclose(f);
    EVP_PKEY_free(k);
    snprintf(path, sizeof(path), "%s/service-keys", dir);
    f = fopen(path, "w");
    /* sha256("fuzz-admin-key"): the h2 server target sends it */
    fputs("admin 6712f9c9ac960f9c86c92a7be5a3ac97dfc1d9d3c25d16cd7955a68088401848 fuzz\n", f);
    fclose(f);
    char keys_env[300], svc_env[300], err[512];
    snprintf(keys_env, sizeof(keys_env), "PIPE2_AUTH_KEYS_DIR=%s", dir);
    snprintf(svc_env, sizeof(svc_env), "PIPE2_AUTH_SERVICE_KEYS_FILE=%s", path);
    putenv(xstrdup(keys_env));
    putenv(xstrdup(svc_env));
    putenv(xstrdup("PIPE2_AUTH_REDIS_URL=redis://127.0.0.1:1/0")); /* nothing there */
    putenv(xstrdup("PIPE2_AUTH_WORKERS=1"));
    char *argv[] = {"fuzz"};
    P2A_ASSERT(config_load(&w->cfg, 1, argv, err, sizeof(err)) == P2A_OK);
    P2A_ASSERT(keys_load(w->cfg.keys_dir, &w->keys, err, sizeof(err)) == P2A_OK);
    P2A_ASSERT(svckeys_load(w->cfg.service_keys_file, &w->svckeys, err, sizeof(err)) == P2A_OK);
    w->shared.cfg = &w->cfg;
    w->shared.keys = w->keys;
    w->shared.svckeys = w->svckeys;
    w->shared.revoked = revoke_new(20000);
    revoke_synced(w->shared.revoked, INT64_MAX / 2, 1); /* loaded and fresh */
    revoke_add(w->shared.revoked, "revoked-jti", INT64_MAX, REVOKE_PATH_STARTUP);
    w->shared.marks_inbox = lastused_inbox_new();
    w->svc.shared = &w->shared;
    w->svc.keys = w->keys;
    w->svc.cache = tcache_new(1024, 1 << 20);
    w->svc.marks = lastused_new();
    w->svc.mx = xcalloc(1, sizeof(struct metrics));
    return w;
}

#endif
