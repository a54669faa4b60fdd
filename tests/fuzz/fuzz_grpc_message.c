/* fuzz_grpc_message.c -- a request's DATA as the transport hands it over: gRPC framing,
 * then the message decoded and checked by the same functions production calls. The first
 * byte picks the method. */
#include "fuzz_common.h"
#include "clock.h"
#include "pipe2/auth/v1/token_service.pb-c.h"
#include "rpc_frame.h"
#include "slab.h"
#include "scope.h"
#include "validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void complete(struct service_call *call, int status, const char *msg, uint8_t *body,
                     size_t len)
{
    (void)call, (void)status, (void)msg, (void)len;
    slab_free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_world *w = fuzz_world();
    if (size < 1)
        return 0;
    uint8_t pick = data[0];
    const uint8_t *msg;
    size_t mlen;
    if (rpc_frame_decode(data + 1, size - 1, RPC_MAX_MSG_LEN, &msg, &mlen) != RPC_FRAME_OK)
        return 0;
    struct service_call call = {.complete = complete, .now = clock_now()};
    switch (pick % 5) {
    case 0: /* Introspect answers inline: the whole handler runs */
        service_call_method(&w->svc,
                            service_method_find("/pipe2.auth.v1.TokenService/Introspect", 38), msg,
                            mlen, &call);
        break;
    case 1:
        service_call_method(&w->svc, service_method_find("/grpc.health.v1.Health/Check", 28), msg,
                            mlen, &call);
        break;
    case 2: { /* IssueToken waits on Redis: its decoding and checks */
        Pipe2__Auth__V1__IssueTokenRequest *r =
            pipe2__auth__v1__issue_token_request__unpack(NULL, mlen, msg);
        if (r != NULL) {
            (void)validate_user_id(r->user_id);
            (void)validate_name(r->name);
            (void)scope_check(r->scope);
            pipe2__auth__v1__issue_token_request__free_unpacked(r, NULL);
        }
        break;
    }
    case 3: {
        Pipe2__Auth__V1__RevokeTokenRequest *r =
            pipe2__auth__v1__revoke_token_request__unpack(NULL, mlen, msg);
        if (r != NULL) {
            (void)validate_jti(r->jti);
            (void)validate_user_id(r->user_id);
            pipe2__auth__v1__revoke_token_request__free_unpacked(r, NULL);
        }
        break;
    }
    default: {
        Pipe2__Auth__V1__ListTokensRequest *r =
            pipe2__auth__v1__list_tokens_request__unpack(NULL, mlen, msg);
        if (r != NULL) {
            (void)validate_user_id(r->user_id);
            pipe2__auth__v1__list_tokens_request__free_unpacked(r, NULL);
        }
    }
    }
    return 0;
}
