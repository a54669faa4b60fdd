/* fuzz_h2_server.c -- a whole HTTP/2 server connection: the input is the byte stream a
 * client sends, fed through a socket pair into rpc_conn exactly as the network would, so
 * frame sequences, resets, oversized headers, window games and stream floods reach our
 * callbacks (service key check, routing, framing, handlers, deadlines, answers). Calls that
 * need Redis meet a store that cannot connect and fail UNAVAILABLE, as they would. */
#include <errno.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "connguard.h"
#include "fuzz_common.h"
#include "rpc_conn.h"
#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct event_base *base;
static struct rpc_env env;

static void drain(int fd)
{
    char buf[65536];
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_world *w = fuzz_world();
    if (base == NULL) {
        base = event_base_new();
        w->svc.store = store_new(base, &w->cfg, "fuzz");
        env.base = base;
        env.svc = &w->svc;
        env.idle_timeout_s = 60;
        env.header_timeout_s = 10;
        env.request_timeout_s = 20;
        env.max_buffered = 32u << 20;
        env.guard = connguard_new("fuzz", 1u << 20, 1u << 20, NULL, 0);
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
        return 0;
    rpc_conn_accept(&env, sv[0], "unknown");
    size_t off = 0;
    for (int round = 0; round < 256; round++) {
        if (off < size) {
            ssize_t n = write(sv[1], data + off, size - off);
            if (n > 0)
                off += (size_t)n;
            if (off == size)
                shutdown(sv[1], SHUT_WR);
        }
        event_base_loop(base, EVLOOP_NONBLOCK);
        drain(sv[1]);
        if (env.nconns == 0 && off == size)
            break;
    }
    close(sv[1]);
    rpc_conn_close_all(&env);
    event_base_loop(base, EVLOOP_NONBLOCK); /* callbacks of calls that outlived their stream */
    return 0;
}
