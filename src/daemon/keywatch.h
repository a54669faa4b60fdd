/* keywatch.h -- signing-key rotation, on the main thread: every
 * PIPE2_AUTH_KEYS_RELOAD_INTERVAL seconds the keys directory's *.pem files are fingerprinted; when
 * they change the ring is reloaded and handed to every thread that signs or verifies
 * (loop_thread_set_keys), which switches between two events and acknowledges; the old ring is freed
 * once all have. A ring that does not load is reported once and the old one kept. */
#ifndef P2A_KEYWATCH_H
#define P2A_KEYWATCH_H

struct event_base;
struct keyring;
struct loop_thread;
struct keywatch;

/* Watches dir every interval_s on base; owns keys (the ring loaded at start) and every ring
 * after it. */
struct keywatch *keywatch_new(struct event_base *base, const char *dir, struct keyring *keys);
/* A thread to hand new rings to; its lt->ack must call keywatch_ack(). Before start. */
void keywatch_follow(struct keywatch *kw, struct loop_thread *lt);
/* Starts watching (after every thread is added). */
void keywatch_start(struct keywatch *kw, int interval_s);
/* From any thread: the calling thread has switched to the newest ring. */
void keywatch_ack(struct keywatch *kw);
/* No more reloads (shutdown). */
void keywatch_stop(struct keywatch *kw);
/* After every thread that follows it is joined: frees the rings. */
void keywatch_free(struct keywatch *kw);

#endif
