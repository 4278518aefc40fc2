/* ws-compare: the receive cost of libsoup's SoupWebsocketConnection against
 * rtms::WsConnection (src/rtms/rtms-ws.h) on one GMainContext thread.
 * Driven by bench/ws-compare.py (medians, ratio, strace); results in
 * docs/websocket.md. Not a test: it prints figures.
 *
 *   ws-compare sender --connections N --messages M [--rate R] [--bytes B]
 *       Listens on 127.0.0.1 (port printed on stdout as "PORT <n>"), accepts
 *       N WebSocket upgrades, then sends M text frames of about B bytes
 *       (default 1024: an RTMS msg 14, docs/protocol.md §4.4) on each: with
 *       --rate R, one frame per connection every 1000/R ms (R = 50: the RTMS
 *       20 ms packet clock); with R = 0, as fast as the receiver takes them
 *       (8 frames per write, round robin). Then waits for the receiver to
 *       close and exits.
 *   ws-compare receive --impl soup|ws|ws-epoll --port P --connections N
 *       --messages M
 *       Opens N connections on the main thread's GMainContext (ws: one
 *       GSource per connection; ws-epoll: all through one rtms::WsPoller;
 *       soup: SoupSession + SoupWebsocketConnection) and counts
 *       messages until N*M arrived. Prints one JSON line: CPU µs per message
 *       (getrusage RUSAGE_SELF user+sys, from the moment all N are open to
 *       the last message), wall time, context switches per message.
 */
#include <gio/gio.h>
#include <glib.h>
#include <libsoup/soup.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "rtms-ws.h"

namespace {

struct Opts {
  std::string mode, impl = "ws";
  int connections = 200, messages = 1000, rate = 0, bytes = 1024, port = 0;
};

[[noreturn]] void
die (const char *what)
{
  fprintf (stderr, "ws-compare: %s: %s\n", what, g_strerror (errno));
  exit (2);
}

/* ---- sender ------------------------------------------------------------- */

std::string
frame_for (int bytes)
{
  /* an msg 14 shaped text message of about @bytes bytes */
  std::string data;
  while ((int) data.size () < bytes - 200)
    data += "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v";
  data.resize (std::max (0, bytes - 200));
  std::string json = "{\"msg_type\":14,\"content\":{\"user_id\":0,"
      "\"user_name\":\"Customer\",\"data\":\"" + data + "\",\"timestamp\":"
      "1764500000000,\"channel_id\":\"ch-customer-0000000000\"}}";
  std::string f;
  f += (char) 0x81;
  if (json.size () <= 125) {
    f += (char) json.size ();
  } else {
    f += (char) 126;
    f += (char) (json.size () >> 8);
    f += (char) json.size ();
  }
  return f + json;
}

void
write_all (int fd, const char *p, size_t n)
{
  while (n) {
    ssize_t w = send (fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      die ("send");
    }
    p += w;
    n -= (size_t) w;
  }
}

int
run_sender (const Opts &o)
{
  int lfd = socket (AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt (lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  if (bind (lfd, (sockaddr *) &a, sizeof a) < 0 || listen (lfd, 1024) < 0)
    die ("listen");
  socklen_t l = sizeof a;
  getsockname (lfd, (sockaddr *) &a, &l);
  printf ("PORT %d\n", ntohs (a.sin_port));
  fflush (stdout);

  std::vector<int> fds;
  for (int i = 0; i < o.connections; i++) {
    int fd = accept (lfd, nullptr, nullptr);
    if (fd < 0)
      die ("accept");
    setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::string req;
    char buf[4096];
    while (req.find ("\r\n\r\n") == std::string::npos) {
      ssize_t n = recv (fd, buf, sizeof buf, 0);
      if (n <= 0)
        die ("upgrade request");
      req.append (buf, n);
    }
    size_t k = req.find ("Sec-WebSocket-Key: ");
    if (k == std::string::npos)
      k = req.find ("sec-websocket-key: ");
    if (k == std::string::npos) {
      fprintf (stderr, "ws-compare: no key in request\n");
      return 2;
    }
    std::string key = req.substr (k + 19, req.find ("\r\n", k) - k - 19);
    std::string resp = "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
        rtms::ws_accept_key (key.c_str ()) + "\r\n\r\n";
    write_all (fd, resp.data (), resp.size ());
    fds.push_back (fd);
  }
  /* let the receiver see every connection open and take its baseline */
  g_usleep (300 * 1000);

  std::string f = frame_for (o.bytes);
  if (o.rate > 0) {
    gint64 period_us = 1000000 / o.rate;
    gint64 next = g_get_monotonic_time ();
    for (int m = 0; m < o.messages; m++) {
      for (int fd : fds)
        write_all (fd, f.data (), f.size ());
      next += period_us;
      gint64 now = g_get_monotonic_time ();
      if (next > now)
        g_usleep (next - now);
    }
  } else {
    const int batch = 8;
    std::string b;
    for (int i = 0; i < batch; i++)
      b += f;
    int sent = 0;
    while (sent < o.messages) {
      int k = std::min (batch, o.messages - sent);
      for (int fd : fds)
        write_all (fd, b.data (), f.size () * k);
      sent += k;
    }
  }
  /* wait for the receiver to hang up */
  for (int fd : fds) {
    char buf[4096];
    while (recv (fd, buf, sizeof buf, 0) > 0) {}
    close (fd);
  }
  close (lfd);
  return 0;
}

/* ---- receiver ----------------------------------------------------------- */

struct Rx {
  const Opts *o;
  int open = 0;
  int closed_early = 0;
  guint64 received = 0;
  guint64 target = 0;
  guint64 checksum = 0;
  bool measuring = false;
  rusage ru0{};
  gint64 t0 = 0;
};

double
tv_us (const timeval &t)
{
  return t.tv_sec * 1e6 + t.tv_usec;
}

void
on_all_open (Rx *rx)
{
  getrusage (RUSAGE_SELF, &rx->ru0);
  rx->t0 = g_get_monotonic_time ();
  rx->measuring = true;
}

/* the work both receivers do per message: look at it */
inline void
consume (Rx *rx, const char *p, gsize n)
{
  rx->received++;
  rx->checksum += n + (guchar) p[n / 2];
}

int
run_receiver (const Opts &o)
{
  GMainContext *ctx = g_main_context_default ();
  Rx rx;
  rx.o = &o;
  rx.target = (guint64) o.connections * o.messages;
  std::string url = "ws://127.0.0.1:" + std::to_string (o.port) + "/";

  std::vector<SoupWebsocketConnection *> soup_conns;
  std::vector<std::unique_ptr<rtms::WsConnection>> ws_conns;
  SoupSession *session = nullptr;

  if (o.impl == "soup") {
    session = soup_session_new_with_options ("max-conns", o.connections + 10,
        "max-conns-per-host", o.connections + 10, nullptr);
    for (int i = 0; i < o.connections; i++) {
      SoupMessage *msg = soup_message_new ("GET", url.c_str ());
      soup_session_websocket_connect_async (session, msg, nullptr, nullptr,
          G_PRIORITY_DEFAULT, nullptr, [](GObject *src, GAsyncResult *res,
              gpointer d) {
            auto *r = static_cast<Rx *> (d);
            GError *e = nullptr;
            SoupWebsocketConnection *c = soup_session_websocket_connect_finish (
                SOUP_SESSION (src), res, &e);
            if (!c) {
              fprintf (stderr, "ws-compare: soup connect: %s\n", e->message);
              exit (2);
            }
            soup_websocket_connection_set_max_incoming_payload_size (c,
                4 * 1024 * 1024);
            g_signal_connect (c, "message", G_CALLBACK (+[](
                    SoupWebsocketConnection *, gint, GBytes *b, gpointer dd) {
                  gsize n = 0;
                  const char *p = (const char *) g_bytes_get_data (b, &n);
                  consume (static_cast<Rx *> (dd), p, n);
                }), r);
            if (++r->open == r->o->connections)
              on_all_open (r);
          }, &rx);
      g_object_unref (msg);
    }
  } else {
    std::shared_ptr<rtms::WsPoller> poller;
    if (o.impl == "ws-epoll")
      poller = std::make_shared<rtms::WsPoller> (ctx);
    for (int i = 0; i < o.connections; i++) {
      rtms::WsConfig cfg;
      cfg.url = url;
      cfg.poller = poller;
      rtms::WsCallbacks cb;
      cb.on_open = [&rx] {
        if (++rx.open == rx.o->connections)
          on_all_open (&rx);
      };
      cb.on_message = [&rx] (bool, const char *p, gsize n) {
        consume (&rx, p, n);
      };
      cb.on_closed = [&rx] (const rtms::WsCloseInfo &info) {
        if (rx.received < rx.target) {
          fprintf (stderr, "ws-compare: closed: %s\n",
              info.error_message.c_str ());
          exit (2);
        }
      };
      ws_conns.push_back (std::make_unique<rtms::WsConnection> (ctx, cfg, cb));
      ws_conns.back ()->connect ();
    }
  }

  gint64 deadline = g_get_monotonic_time () + 600 * G_USEC_PER_SEC;
  while (rx.received < rx.target && g_get_monotonic_time () < deadline)
    g_main_context_iteration (ctx, TRUE);
  rusage ru1;
  getrusage (RUSAGE_SELF, &ru1);
  gint64 t1 = g_get_monotonic_time ();
  if (rx.received < rx.target || !rx.measuring) {
    fprintf (stderr, "ws-compare: received %" G_GUINT64_FORMAT " of %"
        G_GUINT64_FORMAT "\n", rx.received, rx.target);
    return 1;
  }
  double cpu = tv_us (ru1.ru_utime) - tv_us (rx.ru0.ru_utime) +
      tv_us (ru1.ru_stime) - tv_us (rx.ru0.ru_stime);
  double usr = tv_us (ru1.ru_utime) - tv_us (rx.ru0.ru_utime);
  double csw = (ru1.ru_nvcsw - rx.ru0.ru_nvcsw) +
      (ru1.ru_nivcsw - rx.ru0.ru_nivcsw);
  printf ("{\"impl\":\"%s\",\"connections\":%d,\"messages\":%" G_GUINT64_FORMAT
      ",\"rate\":%d,\"cpu_us_per_msg\":%.3f,\"user_us_per_msg\":%.3f,"
      "\"sys_us_per_msg\":%.3f,\"csw_per_msg\":%.4f,\"wall_s\":%.3f,"
      "\"maxrss_kb\":%ld,\"checksum\":%" G_GUINT64_FORMAT "}\n",
      o.impl.c_str (), o.connections, rx.received, o.rate,
      cpu / rx.received, usr / rx.received, (cpu - usr) / rx.received,
      csw / rx.received, (t1 - rx.t0) / 1e6, ru1.ru_maxrss, rx.checksum);
  fflush (stdout);

  /* hang up so the sender exits */
  ws_conns.clear ();
  if (session) {
    soup_session_abort (session);
    g_object_unref (session);
  }
  return 0;
}

} // namespace

int
main (int argc, char **argv)
{
  Opts o;
  if (argc < 2) {
    fprintf (stderr, "usage: ws-compare sender|receive [options]\n");
    return 2;
  }
  o.mode = argv[1];
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    const char *v = argv[i + 1];
    if (k == "--connections") o.connections = atoi (v);
    else if (k == "--messages") o.messages = atoi (v);
    else if (k == "--rate") o.rate = atoi (v);
    else if (k == "--bytes") o.bytes = atoi (v);
    else if (k == "--port") o.port = atoi (v);
    else if (k == "--impl") o.impl = v;
    else {
      fprintf (stderr, "ws-compare: unknown option %s\n", k.c_str ());
      return 2;
    }
  }
  if (o.mode == "sender")
    return run_sender (o);
  if (o.mode == "receive" && (o.impl == "soup" || o.impl == "ws" ||
          o.impl == "ws-epoll"))
    return run_receiver (o);
  fprintf (stderr, "ws-compare: bad mode or --impl\n");
  return 2;
}
