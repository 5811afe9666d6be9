/* nice_punch: the reference ICE client of bench/punch_bench.py, built on libnice.
 *
 *   nice_punch NAME PEER RELAY_IP RELAY_PORT STUN_IP STUN_PORT CONTROLLING TIMEOUT_S
 *
 * Gathers candidates with libnice (host and server-reflexive from the STUN server; no
 * TURN, no UPnP, UDP only), sends its SDP to the bench's signalling relay over TCP
 * ("NAME PEER\n" then the SDP and a line "."), reads the peer's SDP the same way, and
 * runs ICE (RFC 8445, libnice's RFC 5245 mode, CONTROLLING 1 or 0). It prints
 *   SELECTED <ms since start> <local ip:port> <remote ip:port>
 * when libnice first selects a nominated pair ("new-selected-pair-full"), and
 *   READY <ms since start> <local ip:port> <remote ip:port>
 * when the component is READY (libnice waits until every pair of higher priority has
 * failed), lingers LINGER_MS (answering the peer's last checks), and exits 0. FAILED or
 * TIMEOUT exits 1. Built by the bench with: gcc nice_punch.c $(pkg-config --cflags --libs nice)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <agent.h>

enum { LINGER_MS = 500 };

static GMainLoop *loop;
static NiceAgent *agent;
static guint stream_id;
static gint64 started_us;
static int exit_code = 1;
static gboolean done;
static const char *name, *peer, *relay_ip;
static int relay_port, relay_fd = -1;

static double elapsed_ms(void) { return (g_get_monotonic_time() - started_us) / 1000.0; }

static void finish(int code, const char *what) {
  if (done) return;
  done = TRUE;
  exit_code = code;
  if (what) printf("%s %.1f\n", what, elapsed_ms());
  fflush(stdout);
  g_main_loop_quit(loop);
}

static gboolean quit_after_linger(gpointer unused) {
  (void)unused;
  finish(0, NULL);
  return G_SOURCE_REMOVE;
}

static gboolean on_timeout(gpointer unused) {
  (void)unused;
  finish(1, "TIMEOUT");
  return G_SOURCE_REMOVE;
}

static void on_recv(NiceAgent *a, guint sid, guint cid, guint len, gchar *buf, gpointer data) {
  (void)a;
  (void)sid;
  (void)cid;
  (void)len;
  (void)buf;
  (void)data;
}

static void endpoint(const NiceCandidate *c, char *out, size_t size) {
  char ip[NICE_ADDRESS_STRING_LEN];
  nice_address_to_string(&c->addr, ip);
  snprintf(out, size, "%s:%u", ip, nice_address_get_port(&c->addr));
}

static void on_state(NiceAgent *a, guint sid, guint cid, guint state, gpointer data) {
  (void)data;
  if (state == NICE_COMPONENT_STATE_FAILED) {
    finish(1, "FAILED");
    return;
  }
  if (state != NICE_COMPONENT_STATE_READY || done) return;
  NiceCandidate *local = NULL, *remote = NULL;
  if (!nice_agent_get_selected_pair(a, sid, cid, &local, &remote)) return;
  char l[80], r[80];
  endpoint(local, l, sizeof l);
  endpoint(remote, r, sizeof r);
  printf("READY %.1f %s %s\n", elapsed_ms(), l, r);
  fflush(stdout);
  g_timeout_add(LINGER_MS, quit_after_linger, NULL);
}

static void on_selected(NiceAgent *a, guint sid, guint cid, NiceCandidate *local,
                        NiceCandidate *remote, gpointer data) {
  (void)a;
  (void)sid;
  (void)cid;
  (void)data;
  static gboolean seen;
  if (seen) return;
  seen = TRUE;
  char l[80], r[80];
  endpoint(local, l, sizeof l);
  endpoint(remote, r, sizeof r);
  printf("SELECTED %.1f %s %s\n", elapsed_ms(), l, r);
  fflush(stdout);
}

/* The peer's SDP, read by the relay thread, handed to the agent in the main loop. */
static gboolean apply_remote(gpointer sdp) {
  if (nice_agent_parse_remote_sdp(agent, sdp) <= 0) finish(1, "BADSDP");
  g_free(sdp);
  return G_SOURCE_REMOVE;
}

static gpointer read_peer(gpointer unused) {
  (void)unused;
  GString *in = g_string_new(NULL);
  char buf[2048];
  for (;;) {
    ssize_t n = recv(relay_fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    g_string_append_len(in, buf, n);
    char *end = strstr(in->str, "\n.\n");
    if (end) {
      *end = '\0';
      g_idle_add(apply_remote, g_strdup(in->str));
      g_string_free(in, TRUE);
      return NULL;
    }
  }
  g_string_free(in, TRUE);
  g_idle_add((GSourceFunc)on_timeout, NULL);
  return NULL;
}

static void on_gathered(NiceAgent *a, guint sid, gpointer data) {
  (void)data;
  gchar *sdp = nice_agent_generate_local_sdp(a);
  gchar *msg = g_strdup_printf("%s %s\n%s\n.\n", name, peer, sdp);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)relay_port)};
  inet_pton(AF_INET, relay_ip, &to.sin_addr);
  relay_fd = socket(AF_INET, SOCK_STREAM, 0);
  if (relay_fd < 0 || connect(relay_fd, (struct sockaddr *)&to, sizeof to) != 0 ||
      send(relay_fd, msg, strlen(msg), 0) != (ssize_t)strlen(msg)) {
    finish(1, "NORELAY");
  } else {
    g_thread_unref(g_thread_new("relay", read_peer, NULL));
  }
  g_free(msg);
  g_free(sdp);
  (void)sid;
}

int main(int argc, char **argv) {
  if (argc != 9) {
    fprintf(stderr,
            "usage: nice_punch NAME PEER RELAY_IP RELAY_PORT STUN_IP STUN_PORT "
            "CONTROLLING TIMEOUT_S\n");
    return 2;
  }
  started_us = g_get_monotonic_time();
  name = argv[1];
  peer = argv[2];
  relay_ip = argv[3];
  relay_port = atoi(argv[4]);
  loop = g_main_loop_new(NULL, FALSE);
  agent = nice_agent_new(g_main_loop_get_context(loop), NICE_COMPATIBILITY_RFC5245);
  g_object_set(agent, "stun-server", argv[5], "stun-server-port", (guint)atoi(argv[6]),
               "controlling-mode", (gboolean)(atoi(argv[7]) != 0), "upnp", FALSE, "ice-tcp", FALSE,
               NULL);
  g_signal_connect(agent, "candidate-gathering-done", G_CALLBACK(on_gathered), NULL);
  g_signal_connect(agent, "component-state-changed", G_CALLBACK(on_state), NULL);
  g_signal_connect(agent, "new-selected-pair-full", G_CALLBACK(on_selected), NULL);
  stream_id = nice_agent_add_stream(agent, 1);
  nice_agent_attach_recv(agent, stream_id, 1, g_main_loop_get_context(loop), on_recv, NULL);
  g_timeout_add_seconds((guint)atoi(argv[8]), on_timeout, NULL);
  if (!nice_agent_gather_candidates(agent, stream_id)) {
    fprintf(stderr, "nice_punch: gathering failed\n");
    return 1;
  }
  g_main_loop_run(loop);
  if (relay_fd >= 0) close(relay_fd);
  g_object_unref(agent);
  g_main_loop_unref(loop);
  return exit_code;
}
