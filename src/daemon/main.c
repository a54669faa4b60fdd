/* main.c -- pipe2-authd: read the configuration, load keys, run the server.
 *
 * Exit status: 0 after a clean shutdown, 2 for an invalid configuration or unusable keys,
 * 1 for any other start-up failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fetch.h"
#include "keys.h"
#include "log.h"
#include "server.h"
#include "svckeys.h"

int main(int argc, char **argv)
{
    struct p2a_config cfg;
    char err[512];
    config_warn_unknown(environ); /* first: a misspelt name may be why loading fails */
    p2a_err rc = config_load(&cfg, argc, argv, err, sizeof(err));
    if (rc == P2A_ERR_NOT_FOUND)
        return 0; /* --help */
    if (rc != P2A_OK) {
        log_error("startup.config_invalid", "%s", err);
        return 2;
    }
    enum log_level level = LOG_INFO;
    log_level_parse(cfg.log_level, &level);
    log_set_level(level);

    struct keyring *keys = NULL;
    struct svckeys *svckeys = NULL;
    if (keys_load(cfg.keys_dir, &keys, err, sizeof(err)) != P2A_OK ||
        svckeys_load(cfg.service_keys_file, &svckeys, err, sizeof(err)) != P2A_OK) {
        log_error("startup.keys_invalid", "%s", err);
        keys_free(keys);
        config_deinit(&cfg);
        return 2;
    }
    log_fields(LOG_INFO, "startup.config", config_json(&cfg));
    log_info("keys.loaded", "%zu signing keys, signing with kid %s; %zu service keys",
             keys_count(keys), keys_signer(keys)->kid, svckeys_count(svckeys));

    fetch_global_init();                  /* before any thread */
    rc = server_run(&cfg, keys, svckeys); /* takes the keyring */
    svckeys_free(svckeys);
    config_deinit(&cfg);
    return rc == P2A_OK ? 0 : 1;
}
