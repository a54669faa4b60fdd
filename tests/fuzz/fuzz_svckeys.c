/* fuzz_svckeys.c -- the service keys file, then a key check against what it loaded. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "svckeys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    if (path[0] == '\0')
        snprintf(path, sizeof(path), "/tmp/p2a-fuzz-svckeys-%d", (int)getpid());
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    struct svckeys *k;
    char err[512];
    if (svckeys_load(path, &k, err, sizeof(err)) == P2A_OK) {
        (void)svckeys_check(k, (const char *)data, size > 64 ? 64 : size, NULL);
        svckeys_free(k);
    }
    return 0;
}
