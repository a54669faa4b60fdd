/* fuzz_config.c -- command-line configuration: the input, split at NUL bytes, is argv. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int once;
    if (!once) { /* the two required settings, so the rest gets parsed */
        setenv("PIPE2_AUTH_KEYS_DIR", "/nonexistent", 1);
        setenv("PIPE2_AUTH_SERVICE_KEYS_FILE", "/nonexistent", 1);
        once = 1;
    }
    char *copy = xstrndup((const char *)data, size);
    char *argv[34] = {"pipe2-authd"};
    int argc = 1;
    for (size_t i = 0; i <= size && argc < 33;) {
        argv[argc++] = copy + i;
        i += strlen(copy + i) + 1;
    }
    for (int i = 1; i < argc; i++) /* --help prints the table: not what we fuzz */
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            argv[i] = "--log-level=info";
    struct p2a_config cfg;
    char err[512];
    if (config_load(&cfg, argc, argv, err, sizeof(err)) == P2A_OK)
        config_deinit(&cfg);
    free(copy);
    return 0;
}
