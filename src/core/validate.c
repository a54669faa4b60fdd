/* validate.c -- field checks for RPC and HTTP inputs (see validate.h). Pure. */
#include "validate.h"

#include <string.h>

#include "codec.h"
#include "jtitab.h"

static bool has_control(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return true;
    return false;
}

const char *validate_user_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0)
        return "user_id is required";
    if (n > VALIDATE_USER_ID_MAX)
        return "user_id must be at most 200 bytes";
    if (codec_utf8_chars(s, n) < 0 || has_control(s))
        return "user_id must be valid UTF-8 without control characters";
    return NULL;
}

const char *validate_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0)
        return "name is required";
    long chars = codec_utf8_chars(s, n);
    if (chars < 0)
        return "name must be valid UTF-8";
    if (chars > VALIDATE_NAME_MAX_CHARS)
        return "name must be at most 100 characters";
    if (has_control(s))
        return "name must not contain control characters";
    return NULL;
}

bool validate_jti(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > JTI_MAX_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}
