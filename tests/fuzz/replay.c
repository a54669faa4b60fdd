/* replay.c -- a libFuzzer target's main without libFuzzer: runs LLVMFuzzerTestOneInput once
 * on every file of the folders given (in name order), so that the committed corpus of each
 * target is a regression test of the ordinary build (ctest: fuzz_corpus.<target>, under
 * ASan + UBSan and ThreadSanitizer like everything else). A crash or a sanitizer report
 * fails it; it prints how many inputs ran. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    size_t got;
    while (buf != NULL && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            uint8_t *bigger = realloc(buf, cap * 2);
            if (bigger == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf == NULL)
        return -1;
    /* a copy of exactly size bytes: an overread is caught as it would be by libFuzzer */
    uint8_t *exact = malloc(n ? n : 1);
    if (exact == NULL) {
        free(buf);
        return -1;
    }
    memcpy(exact, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    return 0;
}

int main(int argc, char **argv)
{
    size_t ran = 0;
    for (int a = 1; a < argc; a++) {
        DIR *d = opendir(argv[a]);
        if (d == NULL) {
            fprintf(stderr, "replay: cannot open %s\n", argv[a]);
            return 2;
        }
        char **names = NULL;
        size_t n = 0;
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (de->d_name[0] == '.')
                continue;
            char **more = realloc(names, (n + 1) * sizeof(*names));
            if (more == NULL)
                return 2;
            names = more;
            names[n++] = strdup(de->d_name);
        }
        closedir(d);
        qsort(names, n, sizeof(*names), by_name);
        for (size_t i = 0; i < n; i++) {
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", argv[a], names[i]);
            if (run_file(path) != 0) {
                fprintf(stderr, "replay: cannot read %s\n", path);
                return 2;
            }
            ran++;
            free(names[i]);
        }
        free(names);
    }
    printf("replay: %zu inputs ran, none failed\n", ran);
    return ran > 0 ? 0 : 1;
}
