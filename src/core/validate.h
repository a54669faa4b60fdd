/* validate.h -- bounds and shapes of the fields callers send. Each returns NULL when the
 * value is acceptable, else a constant sentence naming the field, for the error message. */
#ifndef P2A_VALIDATE_H
#define P2A_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VALIDATE_NAME_MAX_CHARS 100
#define VALIDATE_USER_ID_MAX 200

const char *validate_user_id(const char *s);
const char *validate_name(const char *s);
/* A jti as we mint them: 1 to 31 base64url characters. */
bool validate_jti(const char *s);

#endif
