/* rtms::WsConnection (src/rtms/rtms-ws.h, docs/websocket.md) against
 *  - libsoup's SoupServer WebSocket handler (a well-kept peer), plain and TLS
 *    with a self-signed certificate made here by OpenSSL (src/sim/sim-tls.cpp);
 *  - a raw-socket server on a thread that writes hand-made frames, for
 *    malformed and edge framing (RFC 6455 §5, §7).
 * Each test runs its own GMainContext on the test thread. */
#include <gtest/gtest.h>

#include <glib/gstdio.h>
#include <libsoup/soup.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "rtms-ws.h"
#include "sim-tls.h"

using rtms::WsCloseInfo;
using rtms::WsConfig;
using rtms::WsConnection;
using rtms::WsSendResult;
using rtms::WsState;

namespace {

/* ---- a client with everything it saw recorded ------------------------- */

struct Seen {
  bool opened = false;
  bool closed = false;
  WsCloseInfo info;
  std::vector<std::pair<bool, std::string>> messages;  /* (is_text, bytes) */
  std::vector<guint64> oversize;
  std::vector<std::string> pongs;
  int closed_calls = 0;
};

class Ctx
{
public:
  Ctx () : ctx_ (g_main_context_new ()) { g_main_context_push_thread_default (ctx_); }
  ~Ctx ()
  {
    while (g_main_context_iteration (ctx_, FALSE)) {}
    g_main_context_pop_thread_default (ctx_);
    g_main_context_unref (ctx_);
  }
  GMainContext *get () const { return ctx_; }
  /* Iterates until @pred or @ms elapse. */
  bool
  spin (const std::function<bool ()> &pred, int ms = 10000)
  {
    gint64 end = g_get_monotonic_time () + (gint64) ms * 1000;
    while (!pred ()) {
      if (g_get_monotonic_time () > end)
        return false;
      /* never block for long: the raw server is on another thread */
      if (!g_main_context_iteration (ctx_, FALSE))
        g_usleep (500);
    }
    return true;
  }
  void
  spin_for (int ms)
  {
    spin ([] { return false; }, ms);
  }

private:
  GMainContext *ctx_;
};

std::unique_ptr<WsConnection>
make_client (Ctx &c, WsConfig cfg, Seen *seen)
{
  rtms::WsCallbacks cb;
  cb.on_open = [seen] { seen->opened = true; };
  cb.on_message = [seen] (bool text, const char *d, gsize n) {
    seen->messages.emplace_back (text, std::string (d, n));
  };
  cb.on_oversize = [seen] (guint64 n) { seen->oversize.push_back (n); };
  cb.on_pong = [seen] (const char *d, gsize n) {
    seen->pongs.emplace_back (d, n);
  };
  cb.on_closed = [seen] (const WsCloseInfo &i) {
    seen->closed = true;
    seen->closed_calls++;
    seen->info = i;
  };
  return std::make_unique<WsConnection> (c.get (), std::move (cfg), cb);
}

/* ---- libsoup server peer ----------------------------------------------- */

struct SoupPeer {
  SoupServer *server = nullptr;
  std::vector<SoupWebsocketConnection *> conns;
  std::vector<std::string> received;       /* text messages from the client */
  std::vector<std::string> request_lines;  /* path?query of each upgrade */
  int pongs = 0;
  gushort closed_code = 0;
  int port = 0;
  bool echo = true;

  explicit SoupPeer (GTlsCertificate *cert = nullptr)
  {
    server = cert ? soup_server_new ("tls-certificate", cert, nullptr)
                  : soup_server_new (nullptr, nullptr);
    soup_server_add_websocket_handler (server, "/ws", nullptr, nullptr,
        [](SoupServer *, SoupServerMessage *msg, const char *path,
            SoupWebsocketConnection *conn, gpointer d) {
          auto *self = static_cast<SoupPeer *> (d);
          GUri *u = soup_server_message_get_uri (msg);
          self->request_lines.push_back (std::string (path) + "?" +
              (g_uri_get_query (u) ? g_uri_get_query (u) : ""));
          soup_websocket_connection_set_max_incoming_payload_size (conn,
              16 * 1024 * 1024);
          self->conns.push_back (SOUP_WEBSOCKET_CONNECTION (g_object_ref (conn)));
          g_signal_connect (conn, "message", G_CALLBACK (+[](
                  SoupWebsocketConnection *c, gint type, GBytes *b,
                  gpointer dd) {
                auto *s = static_cast<SoupPeer *> (dd);
                gsize n = 0;
                const char *p = (const char *) g_bytes_get_data (b, &n);
                s->received.emplace_back (p, n);
                if (s->echo && type == SOUP_WEBSOCKET_DATA_TEXT)
                  soup_websocket_connection_send_text (c,
                      std::string (p, n).c_str ());
              }), self);
          g_signal_connect (conn, "pong", G_CALLBACK (+[](
                  SoupWebsocketConnection *, GBytes *, gpointer dd) {
                static_cast<SoupPeer *> (dd)->pongs++;
              }), self);
          g_signal_connect (conn, "closed", G_CALLBACK (+[](
                  SoupWebsocketConnection *c, gpointer dd) {
                static_cast<SoupPeer *> (dd)->closed_code =
                    soup_websocket_connection_get_close_code (c);
              }), self);
        }, this, nullptr);
    GError *err = nullptr;
    gboolean ok = soup_server_listen_local (server, 0, (SoupServerListenOptions)
        (SOUP_SERVER_LISTEN_IPV4_ONLY |
         (cert ? SOUP_SERVER_LISTEN_HTTPS : 0)), &err);
    EXPECT_TRUE (ok) << (err ? err->message : "");
    g_clear_error (&err);
    GSList *uris = soup_server_get_uris (server);
    port = g_uri_get_port ((GUri *) uris->data);
    g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
  }
  ~SoupPeer ()
  {
    for (auto *c : conns) {
      g_signal_handlers_disconnect_by_data (c, this);
      if (soup_websocket_connection_get_state (c) == SOUP_WEBSOCKET_STATE_OPEN)
        soup_websocket_connection_close (c, 1001, nullptr);
      g_object_unref (c);
    }
    soup_server_disconnect (server);
    g_object_unref (server);
  }
  std::string
  url (const char *scheme = "ws", const char *host = "127.0.0.1",
      const char *rest = "/ws") const
  {
    return std::string (scheme) + "://" + host + ":" + std::to_string (port) +
        rest;
  }
};

struct TlsFiles {
  std::string dir, ca, other_ca;
  GTlsCertificate *cert = nullptr;
  TlsFiles ()
  {
    char *tmp = g_dir_make_tmp ("zoomrtms-ws-XXXXXX", nullptr);
    dir = tmp;
    g_free (tmp);
    std::string cert_pem, key_pem, other_cert, other_key;
    GError *err = nullptr;
    EXPECT_TRUE (sim::generate_self_signed (&cert_pem, &key_pem, &err));
    EXPECT_TRUE (sim::generate_self_signed (&other_cert, &other_key, &err));
    ca = dir + "/ca.pem";
    other_ca = dir + "/other.pem";
    g_file_set_contents (ca.c_str (), cert_pem.c_str (), -1, nullptr);
    g_file_set_contents (other_ca.c_str (), other_cert.c_str (), -1, nullptr);
    std::string both = cert_pem + key_pem;
    cert = g_tls_certificate_new_from_pem (both.c_str (), -1, &err);
    EXPECT_TRUE (cert) << (err ? err->message : "");
    g_clear_error (&err);
  }
  ~TlsFiles ()
  {
    g_clear_object (&cert);
    g_unlink (ca.c_str ());
    g_unlink (other_ca.c_str ());
    g_rmdir (dir.c_str ());
  }
};

/* ---- raw-socket server peer ---------------------------------------------
 * One connection. Reads the upgrade request, answers it (or not, per the
 * script), then runs the script with blocking I/O on its own thread. */

std::string
server_frame (bool fin, guint8 opcode, const std::string &payload,
    int len_bytes = 0 /* 0 = minimal, 2, 8 */, bool mask = false,
    guint8 rsv = 0, guint64 declared = G_MAXUINT64)
{
  guint64 len = declared != G_MAXUINT64 ? declared : payload.size ();
  std::string f;
  f += (char) ((fin ? 0x80 : 0) | rsv | opcode);
  guint8 m = mask ? 0x80 : 0;
  if (len_bytes == 0)
    len_bytes = len <= 125 ? 0 : len <= 0xffff ? 2 : 8;
  if (len_bytes == 0) {
    f += (char) (m | len);
  } else if (len_bytes == 2) {
    f += (char) (m | 126);
    f += (char) (len >> 8);
    f += (char) len;
  } else {
    f += (char) (m | 127);
    for (int i = 7; i >= 0; i--)
      f += (char) (len >> (8 * i));
  }
  std::string p = payload;
  if (mask) {
    const char key[4] = { 0x11, 0x22, 0x33, 0x44 };
    f.append (key, 4);
    for (size_t i = 0; i < p.size (); i++)
      p[i] ^= key[i & 3];
  }
  return f + p;
}

struct ClientFrame {
  bool ok = false;
  bool fin = false, masked = false;
  guint8 opcode = 0;
  std::string payload;
  gushort close_code () const
  {
    return payload.size () >= 2 ? (gushort) (((guint8) payload[0] << 8) |
        (guint8) payload[1]) : 0;
  }
};

class RawServer
{
public:
  using Script = std::function<void (RawServer &)>;

  /* @answer: how to answer the upgrade: "ok", or a whole custom response
   * head (with "%ACCEPT%" replaced by the right accept key). */
  explicit RawServer (Script script, std::string answer = "ok",
      std::string extra_after_head = "")
    : script_ (std::move (script)), answer_ (std::move (answer)),
      extra_ (std::move (extra_after_head))
  {
    lfd_ = socket (AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt (lfd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    bind (lfd_, (sockaddr *) &a, sizeof a);
    listen (lfd_, 4);
    socklen_t l = sizeof a;
    getsockname (lfd_, (sockaddr *) &a, &l);
    port_ = ntohs (a.sin_port);
    thread_ = std::thread ([this] { run (); });
  }
  ~RawServer ()
  {
    stop_ = true;
    ::shutdown (lfd_, SHUT_RDWR);
    if (fd_ >= 0)
      ::shutdown (fd_, SHUT_RDWR);
    thread_.join ();
    if (fd_ >= 0)
      ::close (fd_);
    ::close (lfd_);
  }
  std::string url (const std::string &rest = "/media") const
  {
    return "ws://127.0.0.1:" + std::to_string (port_) + rest;
  }
  bool done () const { return done_; }
  const std::string &request () const { return request_; }

  /* ---- for scripts ---- */
  void
  write (const std::string &bytes)
  {
    size_t off = 0;
    while (off < bytes.size ()) {
      ssize_t w = ::send (fd_, bytes.data () + off, bytes.size () - off,
          MSG_NOSIGNAL);
      if (w <= 0)
        return;
      off += (size_t) w;
    }
  }
  /* Writes @bytes in pieces of @piece bytes with a pause between, so the
   * client sees partial headers and payloads. */
  void
  trickle (const std::string &bytes, size_t piece, int pause_ms = 2)
  {
    for (size_t off = 0; off < bytes.size (); off += piece) {
      write (bytes.substr (off, piece));
      g_usleep (pause_ms * 1000);
    }
  }
  /* Reads one client frame (RFC 6455 §5.2), unmasking it; waits ≤ @ms. */
  ClientFrame
  read_frame (int ms = 5000)
  {
    ClientFrame f;
    guint8 h[2];
    if (!read_exact (h, 2, ms))
      return f;
    f.fin = h[0] & 0x80;
    f.opcode = h[0] & 0x0f;
    f.masked = h[1] & 0x80;
    guint64 len = h[1] & 0x7f;
    if (len == 126) {
      guint8 e[2];
      if (!read_exact (e, 2, ms))
        return f;
      len = (e[0] << 8) | e[1];
    } else if (len == 127) {
      guint8 e[8];
      if (!read_exact (e, 8, ms))
        return f;
      len = 0;
      for (int i = 0; i < 8; i++)
        len = (len << 8) | e[i];
    }
    guint8 key[4] = { 0, 0, 0, 0 };
    if (f.masked && !read_exact (key, 4, ms))
      return f;
    f.payload.resize (len);
    if (len && !read_exact ((guint8 *) &f.payload[0], len, ms))
      return f;
    for (size_t i = 0; i < len; i++)
      f.payload[i] ^= key[i & 3];
    f.ok = true;
    return f;
  }
  /* true if the client closed TCP within @ms (read returns 0) */
  bool
  wait_eof (int ms = 5000)
  {
    guint8 b[4096];
    gint64 end = g_get_monotonic_time () + ms * 1000;
    while (g_get_monotonic_time () < end) {
      pollfd p{ fd_, POLLIN, 0 };
      if (poll (&p, 1, 50) <= 0)
        continue;
      ssize_t n = recv (fd_, b, sizeof b, 0);
      if (n == 0 || (n < 0 && errno == ECONNRESET))
        return true;
    }
    return false;
  }
  void close_socket () { ::shutdown (fd_, SHUT_RDWR); }
  int fd () const { return fd_; }
  std::atomic<bool> stop_{ false };

private:
  bool
  read_exact (guint8 *p, size_t n, int ms)
  {
    size_t got = 0;
    gint64 end = g_get_monotonic_time () + (gint64) ms * 1000;
    while (got < n) {
      pollfd pf{ fd_, POLLIN, 0 };
      int left = (int) ((end - g_get_monotonic_time ()) / 1000);
      if (left <= 0 || poll (&pf, 1, left) <= 0)
        return false;
      ssize_t r = recv (fd_, p + got, n - got, 0);
      if (r <= 0)
        return false;
      got += (size_t) r;
    }
    return true;
  }

  void
  run ()
  {
    pollfd p{ lfd_, POLLIN, 0 };
    if (poll (&p, 1, 10000) <= 0 || stop_) {
      done_ = true;
      return;
    }
    fd_ = accept (lfd_, nullptr, nullptr);
    if (fd_ < 0) {
      done_ = true;
      return;
    }
    int one = 1;
    setsockopt (fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char buf[4096];
    while (request_.find ("\r\n\r\n") == std::string::npos) {
      ssize_t n = recv (fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        done_ = true;
        return;
      }
      request_.append (buf, n);
    }
    std::string key;
    size_t k = request_.find ("Sec-WebSocket-Key: ");
    if (k != std::string::npos)
      key = request_.substr (k + 19, request_.find ("\r\n", k) - k - 19);
    std::string accept = rtms::ws_accept_key (key.c_str ());
    std::string head = answer_ == "ok" ?
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Accept: %ACCEPT%\r\n\r\n" :
        answer_;
    size_t a = head.find ("%ACCEPT%");
    if (a != std::string::npos)
      head.replace (a, 8, accept);
    write (head + extra_);
    script_ (*this);
    done_ = true;
  }

  Script script_;
  std::string answer_, extra_;
  int lfd_ = -1, fd_ = -1, port_ = 0;
  std::thread thread_;
  std::atomic<bool> done_{ false };
  std::string request_;
};

WsConfig
cfg_for (const std::string &url)
{
  WsConfig c;
  c.url = url;
  c.connect_timeout_ms = 5000;
  return c;
}

std::string
text_of (const Seen &s, size_t i)
{
  return i < s.messages.size () ? s.messages[i].second : std::string ("<none>");
}

} // namespace

/* ---- pure helpers ------------------------------------------------------- */

TEST (WsFraming, AcceptKeyRfcExample)
{
  /* RFC 6455 §1.3 */
  EXPECT_EQ (rtms::ws_accept_key ("dGhlIHNhbXBsZSBub25jZQ=="),
      "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST (WsFraming, ClientHeaderLengths)
{
  guint8 h[14];
  struct { guint64 len; gsize hl; } cases[] = {
    { 0, 6 }, { 125, 6 }, { 126, 8 }, { 65535, 8 }, { 65536, 14 },
    { G_GUINT64_CONSTANT (1) << 40, 14 } };
  for (auto c : cases) {
    gsize n = rtms::ws_write_client_header (h, 1, c.len, 0xa1b2c3d4);
    EXPECT_EQ (n, c.hl) << c.len;
    EXPECT_EQ (h[0], 0x81);
    EXPECT_TRUE (h[1] & 0x80) << "client frames are masked (RFC 6455 §5.3)";
    guint64 len = h[1] & 0x7f;
    if (len == 126)
      len = (h[2] << 8) | h[3];
    else if (len == 127) {
      len = 0;
      for (int i = 0; i < 8; i++)
        len = (len << 8) | h[2 + i];
    }
    EXPECT_EQ (len, c.len);
    guint32 key;
    memcpy (&key, h + n - 4, 4);
    EXPECT_EQ (key, 0xa1b2c3d4u);
  }
}

TEST (WsFraming, MaskMatchesBytewiseAtAnyOffset)
{
  std::string data;
  for (int i = 0; i < 37; i++)
    data += (char) (i * 7 + 3);
  guint32 key = 0x5a3c96f0;
  guint8 kb[4];
  memcpy (kb, &key, 4);
  for (gsize off = 0; off < 4; off++) {
    std::string m = data;
    rtms::ws_apply_mask ((guint8 *) &m[0], m.size (), key, off);
    for (size_t i = 0; i < m.size (); i++)
      ASSERT_EQ ((guint8) m[i], (guint8) (data[i] ^ kb[(off + i) & 3]))
          << "offset " << off << " byte " << i;
  }
}

/* ---- against libsoup's server ------------------------------------------ */

TEST (WsSoupPeer, TextBothWaysBigAndBinary)
{
  Ctx c;
  SoupPeer peer;
  Seen seen;
  auto ws = make_client (c, cfg_for (peer.url ("ws", "127.0.0.1",
          "/ws?engagement=E1&x=%2F")), &seen);
  ws->connect ();
  ASSERT_TRUE (c.spin ([&] { return seen.opened || seen.closed; }));
  ASSERT_TRUE (seen.opened) << seen.info.error_message;
  EXPECT_EQ (ws->state (), WsState::OPEN);
  ASSERT_TRUE (c.spin ([&] { return !peer.conns.empty (); }));
  ASSERT_EQ (peer.request_lines.size (), 1u);
  EXPECT_EQ (peer.request_lines[0], "/ws?engagement=E1&x=%2F");

  /* client → server → echo → client, 100 messages in order */
  for (int i = 0; i < 100; i++) {
    std::string m = "{\"msg_type\":14,\"seq\":" + std::to_string (i) + "}";
    ASSERT_EQ (ws->send_text (m.data (), m.size ()), WsSendResult::OK);
  }
  ASSERT_TRUE (c.spin ([&] { return seen.messages.size () >= 100; }));
  ASSERT_EQ (peer.received.size (), 100u);
  for (int i = 0; i < 100; i++) {
    std::string m = "{\"msg_type\":14,\"seq\":" + std::to_string (i) + "}";
    EXPECT_EQ (peer.received[i], m);
    EXPECT_EQ (text_of (seen, i), m);
    EXPECT_TRUE (seen.messages[i].first);
  }
  /* a message bigger than the 64 KiB read buffer: 300 KiB of UTF-8 */
  peer.echo = false;
  std::string big;
  while (big.size () < 300 * 1024)
    big += "h\xc3\xa9llo w\xc3\xb6rld ";
  soup_websocket_connection_send_text (peer.conns[0], big.c_str ());
  guint8 bin[] = { 0, 1, 2, 0xff, 0xfe };
  soup_websocket_connection_send_binary (peer.conns[0], bin, sizeof bin);
  ASSERT_TRUE (c.spin ([&] { return seen.messages.size () >= 102; }));
  EXPECT_EQ (text_of (seen, 100), big);
  EXPECT_FALSE (seen.messages[101].first);
  EXPECT_EQ (seen.messages[101].second, std::string ((char *) bin, sizeof bin));
  EXPECT_EQ (ws->counters ().messages, 102u);
  EXPECT_EQ (seen.closed_calls, 0);
}

TEST (WsSoupPeer, KeepalivePingsAnsweredAndOurPingPonged)
{
  Ctx c;
  SoupPeer peer;
  Seen seen;
  auto ws = make_client (c, cfg_for (peer.url ()), &seen);
  ws->connect ();
  ASSERT_TRUE (c.spin ([&] { return !peer.conns.empty () && seen.opened; }));
  /* libsoup's keep-alive pings us every second and counts our pongs: they
   * must be correctly masked pongs with its payload */
  soup_websocket_connection_set_keepalive_interval (peer.conns[0], 1);
  ASSERT_TRUE (c.spin ([&] { return peer.pongs >= 2; }, 5000));
  EXPECT_GE (ws->counters ().pings, 2u);
  const char p[] = "are you there";
  ASSERT_EQ (ws->send_ping (p, strlen (p)), WsSendResult::OK);
  ASSERT_TRUE (c.spin ([&] { return !seen.pongs.empty (); }));
  EXPECT_EQ (seen.pongs[0], p);
  std::string too_long (126, 'x');
  EXPECT_EQ (ws->send_ping (too_long.data (), too_long.size ()),
      WsSendResult::TOO_BIG);
  EXPECT_EQ (ws->state (), WsState::OPEN);
}

TEST (WsSoupPeer, ClientCloseHandshake)
{
  Ctx c;
  SoupPeer peer;
  Seen seen;
  auto ws = make_client (c, cfg_for (peer.url ()), &seen);
  ws->connect ();
  ASSERT_TRUE (c.spin ([&] { return !peer.conns.empty () && seen.opened; }));
  ws->close (rtms::WS_CLOSE_NORMAL, "bye");
  EXPECT_EQ (ws->state (), WsState::CLOSING);
  EXPECT_EQ (ws->send_text ("x", 1), WsSendResult::NOT_OPEN);
  ASSERT_TRUE (c.spin ([&] { return seen.closed; }));
  EXPECT_TRUE (seen.info.clean);
  EXPECT_EQ (seen.info.code, 1000);
  EXPECT_EQ (seen.info.error_domain, 0u) << seen.info.error_message;
  ASSERT_TRUE (c.spin ([&] { return peer.closed_code != 0; }));
  EXPECT_EQ (peer.closed_code, 1000);
  EXPECT_EQ (ws->state (), WsState::CLOSED);
  c.spin_for (50);
  EXPECT_EQ (seen.closed_calls, 1);
}

TEST (WsSoupPeer, ServerCloseWithCodeAndReason)
{
  Ctx c;
  SoupPeer peer;
  Seen seen;
  auto ws = make_client (c, cfg_for (peer.url ()), &seen);
  ws->connect ();
  ASSERT_TRUE (c.spin ([&] { return !peer.conns.empty () && seen.opened; }));
  soup_websocket_connection_send_text (peer.conns[0], "last");
  soup_websocket_connection_close (peer.conns[0], 4001, "stream ended");
  ASSERT_TRUE (c.spin ([&] { return seen.closed; }));
  EXPECT_EQ (text_of (seen, 0), "last");
  EXPECT_TRUE (seen.info.clean);
  EXPECT_EQ (seen.info.code, 4001);
  EXPECT_EQ (seen.info.reason, "stream ended");
  EXPECT_EQ (seen.info.error_domain, 0u) << seen.info.error_message;
  /* libsoup saw our echo (its close code is the one it sent) */
  ASSERT_TRUE (c.spin ([&] { return peer.closed_code != 0; }));
  EXPECT_EQ (peer.closed_code, 4001);
}

TEST (WsSoupPeer, EightMiBMessageSkippedConnectionStays)
{
  Ctx c;
  SoupPeer peer;
  Seen seen;
  auto ws = make_client (c, cfg_for (peer.url ()), &seen);  /* 4 MiB limit */
  ws->connect ();
  ASSERT_TRUE (c.spin ([&] { return !peer.conns.empty () && seen.opened; }));
  std::string huge (8 * 1024 * 1024, 'a');
  soup_websocket_connection_send_text (peer.conns[0], "before");
  soup_websocket_connection_send_text (peer.conns[0], huge.c_str ());
  soup_websocket_connection_send_text (peer.conns[0], "after");
  ASSERT_TRUE (c.spin ([&] { return seen.messages.size () >= 2 || seen.closed; }));
  EXPECT_FALSE (seen.closed) << seen.info.error_message;
  ASSERT_EQ (seen.messages.size (), 2u);
  EXPECT_EQ (text_of (seen, 0), "before");
  EXPECT_EQ (text_of (seen, 1), "after");
  ASSERT_EQ (seen.oversize.size (), 1u);
  EXPECT_EQ (seen.oversize[0], huge.size ());
  EXPECT_EQ (ws->counters ().oversize, 1u);
  EXPECT_EQ (ws->counters ().skipped_bytes, huge.size ());
  EXPECT_EQ (ws->state (), WsState::OPEN);
  /* still usable both ways */
  ASSERT_EQ (ws->send_text ("ping?", 5), WsSendResult::OK);
  ASSERT_TRUE (c.spin ([&] { return seen.messages.size () >= 3; }));
  EXPECT_EQ (text_of (seen, 2), "ping?");
}

TEST (WsSoupPeer, TlsVerifiedAgainstCaFile)
{
  TlsFiles tls;
  ASSERT_TRUE (tls.cert);
  Ctx c;
  SoupPeer peer (tls.cert);
  {
    Seen seen;
    WsConfig cfg = cfg_for (peer.url ("wss", "localhost"));
    cfg.ca_file = tls.ca;
    auto ws = make_client (c, cfg, &seen);
    ws->connect ();
    ASSERT_TRUE (c.spin ([&] { return seen.opened || seen.closed; }));
    ASSERT_TRUE (seen.opened) << seen.info.error_message;
    ASSERT_EQ (ws->send_text ("{\"msg_type\":1}", 14), WsSendResult::OK);
    ASSERT_TRUE (c.spin ([&] { return !seen.messages.empty (); }));
    EXPECT_EQ (text_of (seen, 0), "{\"msg_type\":1}");
    /* a TLS bulk read across records: 200 KiB */
    peer.echo = false;
    std::string big (200 * 1024, 'z');
    soup_websocket_connection_send_text (peer.conns[0], big.c_str ());
    ASSERT_TRUE (c.spin ([&] { return seen.messages.size () >= 2; }));
    EXPECT_EQ (text_of (seen, 1), big);
    ws->close ();
    ASSERT_TRUE (c.spin ([&] { return seen.closed; }));
    EXPECT_TRUE (seen.info.clean);
  }
  /* the same server is refused with the system store and with another CA:
   * verification is on and the CA file is what is trusted */
  for (const std::string &ca : { std::string (), tls.other_ca }) {
    Seen seen;
    WsConfig cfg = cfg_for (peer.url ("wss", "localhost"));
    cfg.ca_file = ca;
    auto ws = make_client (c, cfg, &seen);
    ws->connect ();
    ASSERT_TRUE (c.spin ([&] { return seen.closed; }));
    EXPECT_FALSE (seen.opened);
    EXPECT_EQ (seen.info.error_domain, G_TLS_ERROR) << seen.info.error_message;
    EXPECT_EQ (seen.info.error_code, G_TLS_ERROR_BAD_CERTIFICATE);
  }
}

TEST (WsSoupPeer, HandshakeRefusedNoSecretsInError)
{
  Ctx c;
  SoupPeer peer;
  Seen seen;
  auto ws = make_client (c, cfg_for (peer.url ("ws", "127.0.0.1",
          "/nothing-here?token=SECRET123")), &seen);
  ws->connect ();
  ASSERT_TRUE (c.spin ([&] { return seen.closed; }));
  EXPECT_FALSE (seen.opened);
  EXPECT_EQ (seen.info.error_domain, SOUP_WEBSOCKET_ERROR);
  EXPECT_EQ (seen.info.error_code, SOUP_WEBSOCKET_ERROR_NOT_WEBSOCKET);
  EXPECT_NE (seen.info.error_message.find ("HTTP 404"), std::string::npos)
      << seen.info.error_message;
  EXPECT_EQ (seen.info.error_message.find ("SECRET123"), std::string::npos);
  EXPECT_EQ (seen.info.error_message.find ("nothing-here"), std::string::npos);
}

TEST (WsSoupPeer, SharedPollerManyConnectionsAndTls)
{
  TlsFiles tls;
  ASSERT_TRUE (tls.cert);
  Ctx c;
  auto poller = std::make_shared<rtms::WsPoller> (c.get ());
  SoupPeer peer;
  SoupPeer tls_peer (tls.cert);
  const int N = 20;
  std::vector<Seen> seen (N + 1);
  std::vector<std::unique_ptr<WsConnection>> ws;
  for (int i = 0; i < N; i++) {
    WsConfig cfg = cfg_for (peer.url ());
    cfg.poller = poller;
    ws.push_back (make_client (c, cfg, &seen[i]));
    ws.back ()->connect ();
  }
  WsConfig tcfg = cfg_for (tls_peer.url ("wss", "localhost"));
  tcfg.ca_file = tls.ca;
  tcfg.poller = poller;
  tcfg.read_buffer_bytes = 4096;   /* TLS records larger than one read */
  ws.push_back (make_client (c, tcfg, &seen[N]));
  ws.back ()->connect ();
  ASSERT_TRUE (c.spin ([&] {
        for (auto &s : seen)
          if (!s.opened && !s.closed)
            return false;
        return true;
      }));
  for (auto &s : seen)
    ASSERT_TRUE (s.opened) << s.info.error_message;
  for (int m = 0; m < 50; m++)
    for (int i = 0; i < N; i++) {
      std::string t = std::to_string (i) + "/" + std::to_string (m);
      ASSERT_EQ (ws[i]->send_text (t.data (), t.size ()), WsSendResult::OK);
    }
  ASSERT_TRUE (c.spin ([&] {
        for (int i = 0; i < N; i++)
          if (seen[i].messages.size () < 50)
            return false;
        return true;
      }));
  for (int i = 0; i < N; i++)
    for (int m = 0; m < 50; m++)
      ASSERT_EQ (text_of (seen[i], m),
          std::to_string (i) + "/" + std::to_string (m));
  ASSERT_TRUE (c.spin ([&] { return !tls_peer.conns.empty (); }));
  tls_peer.echo = false;
  std::string big (300 * 1024, 'T');
  for (int k = 0; k < 3; k++)
    soup_websocket_connection_send_text (tls_peer.conns[0], big.c_str ());
  ASSERT_TRUE (c.spin ([&] { return seen[N].messages.size () >= 3; }));
  for (int k = 0; k < 3; k++)
    EXPECT_EQ (text_of (seen[N], k), big);
  /* one connection ends; the others keep working through the poller */
  ws[0]->close ();
  ASSERT_TRUE (c.spin ([&] { return seen[0].closed; }));
  EXPECT_TRUE (seen[0].info.clean);
  ws[0].reset ();
  ASSERT_EQ (ws[1]->send_text ("still", 5), WsSendResult::OK);
  ASSERT_TRUE (c.spin ([&] { return seen[1].messages.size () >= 51; }));
  EXPECT_EQ (text_of (seen[1], 50), "still");
  ws.clear ();
}

/* WsConnection::receive_time_us (): inside on_message, the monotonic time
 * of the wake-up that read the message (one clock read per dispatch), with
 * a WsPoller and with a GSource of the connection's own: never 0, never
 * after the callback's own clock reading, never before the message was
 * sent, and not decreasing. */
TEST (WsSoupPeer, ReceiveTimeIsTheWakeUpsClock)
{
  for (bool polled : { true, false }) {
    SCOPED_TRACE (polled ? "WsPoller" : "own GSource");
    Ctx c;
    SoupPeer peer;
    WsConfig cfg = cfg_for (peer.url ());
    if (polled)
      cfg.poller = std::make_shared<rtms::WsPoller> (c.get ());
    struct Got {
      gint64 rx, now;
    };
    std::vector<Got> got;
    bool opened = false;
    WsConnection *self = nullptr;
    rtms::WsCallbacks cb;
    cb.on_open = [&] { opened = true; };
    cb.on_message = [&] (bool, const char *, gsize) {
      got.push_back ({ self->receive_time_us (), g_get_monotonic_time () });
    };
    WsConnection ws (c.get (), cfg, cb);
    self = &ws;
    ws.connect ();
    ASSERT_TRUE (c.spin ([&] { return opened; }));
    gint64 sent = g_get_monotonic_time ();
    for (int i = 0; i < 20; i++)
      ASSERT_EQ (ws.send_text ("x", 1), WsSendResult::OK);
    ASSERT_TRUE (c.spin ([&] { return got.size () >= 20; }));
    for (size_t i = 0; i < got.size (); i++) {
      EXPECT_GE (got[i].rx, sent) << i;
      EXPECT_LE (got[i].rx, got[i].now) << i;
      if (i > 0) {
        EXPECT_GE (got[i].rx, got[i - 1].rx) << i;
      }
    }
  }
}

/* A TLS server of another stack (OpenSSL) that records the SNI name the
 * client sent, answers the upgrade and sends one frame split across two
 * TLS records. */
TEST (WsTls, SniSentAndFramesAcrossRecords)
{
  std::string cert_pem, key_pem;
  ASSERT_TRUE (sim::generate_self_signed (&cert_pem, &key_pem, nullptr));
  char *tmp = g_dir_make_tmp ("zoomrtms-ws-sni-XXXXXX", nullptr);
  std::string ca = std::string (tmp) + "/ca.pem";
  g_file_set_contents (ca.c_str (), cert_pem.c_str (), -1, nullptr);

  SSL_CTX *sctx = SSL_CTX_new (TLS_server_method ());
  BIO *cb = BIO_new_mem_buf (cert_pem.data (), (int) cert_pem.size ());
  BIO *kb = BIO_new_mem_buf (key_pem.data (), (int) key_pem.size ());
  X509 *x = PEM_read_bio_X509 (cb, nullptr, nullptr, nullptr);
  EVP_PKEY *k = PEM_read_bio_PrivateKey (kb, nullptr, nullptr, nullptr);
  ASSERT_EQ (SSL_CTX_use_certificate (sctx, x), 1);
  ASSERT_EQ (SSL_CTX_use_PrivateKey (sctx, k), 1);
  X509_free (x);
  EVP_PKEY_free (k);
  BIO_free (cb);
  BIO_free (kb);

  int lfd = socket (AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  bind (lfd, (sockaddr *) &a, sizeof a);
  listen (lfd, 1);
  socklen_t l = sizeof a;
  getsockname (lfd, (sockaddr *) &a, &l);
  int port = ntohs (a.sin_port);
  std::string sni, request;
  std::atomic<bool> served{ false };
  std::thread th ([&] {
        pollfd pf{ lfd, POLLIN, 0 };
        if (poll (&pf, 1, 10000) <= 0)
          return;
        int fd = accept (lfd, nullptr, nullptr);
        SSL *ssl = SSL_new (sctx);
        SSL_set_fd (ssl, fd);
        if (SSL_accept (ssl) == 1) {
          const char *name = SSL_get_servername (ssl,
              TLSEXT_NAMETYPE_host_name);
          sni = name ? name : "";
          char buf[4096];
          while (request.find ("\r\n\r\n") == std::string::npos) {
            int n = SSL_read (ssl, buf, sizeof buf);
            if (n <= 0)
              break;
            request.append (buf, n);
          }
          size_t p = request.find ("Sec-WebSocket-Key: ");
          std::string key = p == std::string::npos ? "" :
              request.substr (p + 19, request.find ("\r\n", p) - p - 19);
          std::string resp = "HTTP/1.1 101 Switching Protocols\r\n"
              "Upgrade: websocket\r\nConnection: Upgrade\r\n"
              "Sec-WebSocket-Accept: " + rtms::ws_accept_key (key.c_str ()) +
              "\r\n\r\n";
          SSL_write (ssl, resp.data (), (int) resp.size ());
          std::string f = server_frame (true, 1, std::string (3000, 'S'));
          SSL_write (ssl, f.data (), 7);                 /* header + 3 B */
          g_usleep (20000);
          SSL_write (ssl, f.data () + 7, (int) f.size () - 7);
          SSL_read (ssl, buf, sizeof buf);               /* the close frame */
          served = true;
        }
        SSL_free (ssl);
        close (fd);
      });

  Ctx c;
  Seen seen;
  WsConfig cfg = cfg_for ("wss://localhost:" + std::to_string (port) + "/m");
  cfg.ca_file = ca;
  auto ws = make_client (c, cfg, &seen);
  ws->connect ();
  ASSERT_TRUE (c.spin ([&] { return !seen.messages.empty () || seen.closed; }));
  EXPECT_FALSE (seen.closed) << seen.info.error_message;
  EXPECT_EQ (text_of (seen, 0), std::string (3000, 'S'));
  EXPECT_EQ (sni, "localhost");
  EXPECT_EQ (request.rfind ("GET /m HTTP/1.1\r\nHost: localhost:", 0), 0u);
  ws->close ();
  c.spin ([&] { return served.load (); }, 5000);
  th.join ();
  EXPECT_TRUE (served);
  close (lfd);
  SSL_CTX_free (sctx);
  g_unlink (ca.c_str ());
  g_rmdir (tmp);
  g_free (tmp);
}

TEST (WsConnect, RefusedBadUrlAndTimeout)
{
  Ctx c;
  {
    /* a port nobody listens on: bound, never listening, so that no test
     * running beside this one can take it meanwhile */
    int s = socket (AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    ASSERT_EQ (bind (s, (sockaddr *) &a, sizeof a), 0);
    socklen_t l = sizeof a;
    getsockname (s, (sockaddr *) &a, &l);
    Seen seen;
    auto ws = make_client (c, cfg_for ("ws://127.0.0.1:" +
            std::to_string (ntohs (a.sin_port)) + "/"), &seen);
    ws->connect ();
    ASSERT_TRUE (c.spin ([&] { return seen.closed; }));
    ::close (s);
    EXPECT_EQ (seen.info.error_domain, G_IO_ERROR);
    EXPECT_EQ (seen.info.error_code, G_IO_ERROR_CONNECTION_REFUSED);
  }
  for (const char *bad : { "http://127.0.0.1/", "ws:///nohost", "nonsense" }) {
    Seen seen;
    auto ws = make_client (c, cfg_for (bad), &seen);
    ws->connect ();
    EXPECT_FALSE (seen.closed) << "on_closed must not fire inside connect()";
    ASSERT_TRUE (c.spin ([&] { return seen.closed; }));
    EXPECT_EQ (seen.info.error_code, G_IO_ERROR_INVALID_ARGUMENT) << bad;
  }
  {
    /* a server that accepts and never answers the upgrade */
    RawServer srv ([](RawServer &s) {
          while (!s.stop_)
            g_usleep (10000);
        }, "");
    Seen seen;
    WsConfig cfg = cfg_for (srv.url ());
    cfg.connect_timeout_ms = 300;
    auto ws = make_client (c, cfg, &seen);
    ws->connect ();
    ASSERT_TRUE (c.spin ([&] { return seen.closed; }));
    EXPECT_EQ (seen.info.error_code, G_IO_ERROR_TIMED_OUT);
    EXPECT_EQ (seen.closed_calls, 1);
  }
}

/* ---- raw server: edge and malformed framing ------------------------------ */

TEST (WsRaw, UpgradeRequestAndFirstFrameWithTheResponse)
{
  Ctx c;
  RawServer srv ([](RawServer &s) { s.read_frame (); },
      "ok", server_frame (true, 1, "{\"msg_type\":2}"));
  Seen seen;
  auto ws = make_client (c, cfg_for (srv.url ("/media?a=1%20b")), &seen);
  ws->connect ();
  ASSERT_TRUE (c.spin ([&] { return !seen.messages.empty () || seen.closed; }));
  EXPECT_EQ (text_of (seen, 0), "{\"msg_type\":2}");
  const std::string &r = srv.request ();
  EXPECT_EQ (r.rfind ("GET /media?a=1%20b HTTP/1.1\r\n", 0), 0u) << r;
  EXPECT_NE (r.find ("Host: 127.0.0.1:"), std::string::npos);
  EXPECT_NE (r.find ("Upgrade: websocket\r\n"), std::string::npos);
  EXPECT_NE (r.find ("Sec-WebSocket-Version: 13\r\n"), std::string::npos);
  EXPECT_EQ (r.find ("Sec-WebSocket-Protocol"), std::string::npos);
  EXPECT_EQ (r.find ("Sec-WebSocket-Extensions"), std::string::npos);
}

TEST (WsRaw, BadUpgradeResponses)
{
  const char *answers[] = {
    /* wrong accept key */
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n",
    /* an extension we did not offer */
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Accept: %ACCEPT%\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
    /* no Upgrade header */
    "HTTP/1.1 101 Switching Protocols\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Accept: %ACCEPT%\r\n\r\n",
  };
  for (const char *a : answers) {
    Ctx c;
    RawServer srv ([](RawServer &s) { s.wait_eof (2000); }, a);
    Seen seen;
    auto ws = make_client (c, cfg_for (srv.url ()), &seen);
    ws->connect ();
    ASSERT_TRUE (c.spin ([&] { return seen.closed; }));
    EXPECT_FALSE (seen.opened) << a;
    EXPECT_EQ (seen.info.error_domain, SOUP_WEBSOCKET_ERROR) << a;
    EXPECT_EQ (seen.info.error_code, SOUP_WEBSOCKET_ERROR_BAD_HANDSHAKE) << a;
  }
}

TEST (WsRaw, FragmentedWithPingInsideTrickled)
{
  Ctx c;
  ClientFrame pong;
  RawServer srv ([&](RawServer &s) {
        std::string all =
            server_frame (false, 1, "Hel") +
            server_frame (false, 0, "lo, ") +
            server_frame (true, 9, "p1") +          /* ping inside */
            server_frame (false, 0, "w\xc3") +      /* é split across frames */
            server_frame (true, 0, "\xa9rld") +
            server_frame (true, 1, std::string (300, 'x'));  /* 16-bit len */
        s.trickle (all, 3);                          /* 3 bytes at a time */
        pong = s.read_frame ();
        s.read_frame ();
      });
  Seen seen;
  auto ws = make_client (c, cfg_for (srv.url ()), &seen);
  ws->connect ();
  ASSERT_TRUE (c.spin ([&] { return seen.messages.size () >= 2 || seen.closed; }));
  EXPECT_FALSE (seen.closed) << seen.info.error_message;
  ASSERT_EQ (seen.messages.size (), 2u);
  EXPECT_EQ (text_of (seen, 0), "Hello, w\xc3\xa9rld");
  EXPECT_EQ (text_of (seen, 1), std::string (300, 'x'));
  ASSERT_TRUE (c.spin ([&] { return srv.done () || pong.ok; }));
  c.spin ([&] { return pong.ok; }, 2000);
  ASSERT_TRUE (pong.ok);
  EXPECT_EQ (pong.opcode, 0xA);
  EXPECT_TRUE (pong.masked);
  EXPECT_EQ (pong.payload, "p1");
  EXPECT_EQ (ws->counters ().frames, 6u);
  ws->close ();
}

TEST (WsRaw, RandomFragmentationAndReadBoundaries)
{
  /* 300 messages of 0..70,000 bytes (7-, 16- and 64-bit lengths), some
   * fragmented in random pieces with pings between fragments, written in
   * random chunk sizes: every message must arrive whole, in order, whatever
   * the read boundaries. A 4 KiB read buffer forces the grow/compact paths. */
  GRand *rnd = g_rand_new_with_seed (12);
  std::vector<std::string> expected;
  std::string wire;
  int pings = 0;
  for (int i = 0; i < 300; i++) {
    int kind = g_rand_int_range (rnd, 0, 4);
    gsize len = kind == 0 ? g_rand_int_range (rnd, 0, 126) :
        kind == 1 ? g_rand_int_range (rnd, 126, 65536) :
        kind == 2 ? g_rand_int_range (rnd, 65536, 70001) :
        g_rand_int_range (rnd, 0, 3000);
    std::string m = std::to_string (i) + ":";
    while (m.size () < len)
      m += (char) ('a' + g_rand_int_range (rnd, 0, 26));
    m.resize (std::max (len, std::to_string (i).size () + 1));
    expected.push_back (m);
    if (g_rand_boolean (rnd)) {
      wire += server_frame (true, 1, m);
      continue;
    }
    size_t off = 0;
    bool first = true;
    while (true) {
      size_t piece = g_rand_int_range (rnd, 0, (gint32) m.size () + 1);
      bool last = off + piece >= m.size ();
      if (last)
        piece = m.size () - off;
      wire += server_frame (last, first ? 1 : 0, m.substr (off, piece));
      off += piece;
      first = false;
      if (last)
        break;
      if (g_rand_int_range (rnd, 0, 3) == 0) {
        wire += server_frame (true, 9, "p" + std::to_string (pings++));
      }
    }
  }
  std::vector<std::pair<size_t, size_t>> chunks;
  for (size_t off = 0; off < wire.size ();) {
    size_t n = std::min<size_t> (wire.size () - off,
        g_rand_int_range (rnd, 1, 9000));
    chunks.emplace_back (off, n);
    off += n;
  }
  g_rand_free (rnd);
  Ctx c;
  std::vector<std::string> pongs;
  RawServer srv ([&](RawServer &s) {
        for (size_t k = 0; k < chunks.size (); k++) {
          s.write (wire.substr (chunks[k].first, chunks[k].second));
          if (k % 50 == 0)
            g_usleep (1000);   /* let some reads end mid-frame */
        }
        for (int i = 0; i < pings; i++) {
          ClientFrame f = s.read_frame ();
          if (!f.ok)
            break;
          pongs.push_back (f.payload);
        }
      });
  Seen seen;
  WsConfig cfg = cfg_for (srv.url ());
  cfg.read_buffer_bytes = 4096;
  auto ws = make_client (c, cfg, &seen);
  ws->connect ();
  ASSERT_TRUE (c.spin ([&] {
        return seen.messages.size () >= expected.size () || seen.closed;
      }, 30000));
  EXPECT_FALSE (seen.closed) << seen.info.error_message;
  ASSERT_EQ (seen.messages.size (), expected.size ());
  for (size_t i = 0; i < expected.size (); i++)
    ASSERT_EQ (seen.messages[i].second, expected[i]) << "message " << i;
  ASSERT_TRUE (c.spin ([&] { return srv.done (); }));
  ASSERT_EQ ((int) pongs.size (), pings);
  for (int i = 0; i < pings; i++)
    EXPECT_EQ (pongs[i], "p" + std::to_string (i));
  EXPECT_EQ (ws->counters ().messages, expected.size ());
  EXPECT_GT (ws->counters ().reads, 100u);
  ws->close ();
}

TEST (WsRaw, MaskedServerFrameIsProtocolError)
{
  Ctx c;
  ClientFrame close_frame;
  RawServer srv ([&](RawServer &s) {
        s.write (server_frame (true, 1, "ok"));
        s.write (server_frame (true, 1, "masked", 0, true));
        close_frame = s.read_frame ();
        s.wait_eof ();
      });
  Seen seen;
  auto ws = make_client (c, cfg_for (srv.url ()), &seen);
  ws->connect ();
  ASSERT_TRUE (c.spin ([&] { return seen.closed; }));
  ASSERT_EQ (seen.messages.size (), 1u);
  EXPECT_EQ (seen.info.error_domain, SOUP_WEBSOCKET_ERROR);
  EXPECT_EQ (seen.info.sent_code, 1002);
  EXPECT_FALSE (seen.info.clean);
  EXPECT_NE (seen.info.error_message.find ("masked"), std::string::npos);
  ASSERT_TRUE (c.spin ([&] { return srv.done (); }));
  ASSERT_TRUE (close_frame.ok);
  EXPECT_EQ (close_frame.opcode, 0x8);
  EXPECT_TRUE (close_frame.masked);
  EXPECT_EQ (close_frame.close_code (), 1002);
}

TEST (WsRaw, MalformedFramesEachFail1002)
{
  struct Case {
    const char *what;
    std::string bytes;
  } cases[] = {
    { "RSV1 without extension", server_frame (true, 1, "x", 0, false, 0x40) },
    { "reserved opcode 3", server_frame (true, 3, "x") },
    { "reserved control opcode 0xB", server_frame (true, 0xB, "") },
    { "fragmented ping", server_frame (false, 9, "x") },
    { "ping of 126 bytes", server_frame (true, 9, std::string (126, 'p')) },
    { "continuation first", server_frame (true, 0, "x") },
    { "text inside a fragmented text",
      server_frame (false, 1, "a") + server_frame (true, 1, "b") },
    { "non-minimal 16-bit length", server_frame (true, 1, "short", 2) },
    { "non-minimal 64-bit length", server_frame (true, 1, "short", 8) },
    { "64-bit length with top bit", server_frame (true, 1, "", 8, false, 0,
        G_GUINT64_CONSTANT (0x8000000000000001)) },
    { "1-byte close payload", server_frame (true, 8, "\x03") },
    { "close code 1005 on the wire", server_frame (true, 8, "\x03\xed") },
  };
  for (auto &k : cases) {
    Ctx c;
    ClientFrame cf;
    RawServer srv ([&](RawServer &s) {
          s.write (k.bytes);
          cf = s.read_frame ();
          s.wait_eof ();
        });
    Seen seen;
    auto ws = make_client (c, cfg_for (srv.url ()), &seen);
    ws->connect ();
    ASSERT_TRUE (c.spin ([&] { return seen.closed; })) << k.what;
    EXPECT_TRUE (seen.messages.empty ()) << k.what;
    EXPECT_EQ (seen.info.sent_code, 1002) << k.what << ": "
        << seen.info.error_message;
    ASSERT_TRUE (c.spin ([&] { return srv.done (); })) << k.what;
    EXPECT_TRUE (cf.ok) << k.what;
    EXPECT_EQ (cf.close_code (), 1002) << k.what;
  }
}

TEST (WsRaw, InvalidUtf8TextFails1007BinaryDoesNot)
{
  Ctx c;
  ClientFrame cf;
  RawServer srv ([&](RawServer &s) {
        s.write (server_frame (true, 2, "\xff\xfe"));   /* binary: any bytes */
        s.write (server_frame (false, 1, "valid start "));
        s.write (server_frame (true, 0, "then \xc3\x28 bad"));
        cf = s.read_frame ();
        s.wait_eof ();
      });
  Seen seen;
  auto ws = make_client (c, cfg_for (srv.url ()), &seen);
  ws->connect ();
  ASSERT_TRUE (c.spin ([&] { return seen.closed; }));
  ASSERT_EQ (seen.messages.size (), 1u);
  EXPECT_FALSE (seen.messages[0].first);
  EXPECT_EQ (seen.info.sent_code, 1007);
  EXPECT_NE (seen.info.error_message.find ("UTF-8"), std::string::npos);
  ASSERT_TRUE (c.spin ([&] { return srv.done (); }));
  EXPECT_EQ (cf.close_code (), 1007);
}

TEST (WsRaw, OversizeSkippedNextMessageReceived)
{
  Ctx c;
  RawServer srv ([&](RawServer &s) {
        s.write (server_frame (true, 1, "one"));
        /* 64-bit length (minimal: > 65535) over the 1000-byte limit,
         * trickled in pieces so the skip spans many reads */
        s.trickle (server_frame (true, 1, std::string (70000, 'A')), 7000, 1);
        s.write (server_frame (true, 1, "two"));
        /* fragmented: 600 + ping + 600 crosses the limit on the 2nd part */
        s.write (server_frame (false, 1, std::string (600, 'B')) +
                 server_frame (true, 9, "mid") +
                 server_frame (false, 0, std::string (600, 'C')) +
                 server_frame (true, 0, std::string (600, 'D')));
        s.write (server_frame (true, 1, "three"));
        /* 16-bit length over the limit, exactly at a read boundary */
        s.write (server_frame (true, 2, std::string (1001, 'E')));
        s.write (server_frame (true, 1, std::string (1000, 'F')));  /* = limit */
        s.read_frame ();   /* the pong */
        s.read_frame ();   /* the close */
      });
  Seen seen;
  WsConfig cfg = cfg_for (srv.url ());
  cfg.max_message_bytes = 1000;
  auto ws = make_client (c, cfg, &seen);
  ws->connect ();
  ASSERT_TRUE (c.spin ([&] { return seen.messages.size () >= 4 || seen.closed; }));
  EXPECT_FALSE (seen.closed) << seen.info.error_message;
  ASSERT_EQ (seen.messages.size (), 4u);
  EXPECT_EQ (text_of (seen, 0), "one");
  EXPECT_EQ (text_of (seen, 1), "two");
  EXPECT_EQ (text_of (seen, 2), "three");
  EXPECT_EQ (text_of (seen, 3), std::string (1000, 'F'));
  ASSERT_EQ (seen.oversize.size (), 3u);
  EXPECT_EQ (seen.oversize[0], 70000u);
  EXPECT_EQ (seen.oversize[1], 1200u);   /* known when detected */
  EXPECT_EQ (seen.oversize[2], 1001u);
  EXPECT_EQ (ws->counters ().oversize, 3u);
  EXPECT_EQ (ws->counters ().skipped_bytes, 70000u + 1800u + 1001u);
  EXPECT_EQ (ws->counters ().pings, 1u);
  EXPECT_EQ (ws->state (), WsState::OPEN);
  ws->close ();
}

TEST (WsRaw, HugeDeclaredLengthSkippedWithoutBuffering)
{
  /* 2^40 bytes declared: the client must neither allocate it nor close;
   * it discards what arrives. The peer then dies mid-frame. */
  Ctx c;
  RawServer srv ([&](RawServer &s) {
        s.write (server_frame (true, 1, "", 8, false, 0,
            G_GUINT64_CONSTANT (1) << 40));
        std::string chunk (1 << 20, 'q');
        for (int i = 0; i < 16; i++)
          s.write (chunk);
        g_usleep (100000);
        s.close_socket ();
      });
  Seen seen;
  auto ws = make_client (c, cfg_for (srv.url ()), &seen);
  ws->connect ();
  ASSERT_TRUE (c.spin ([&] { return seen.closed; }));
  ASSERT_EQ (seen.oversize.size (), 1u);
  EXPECT_EQ (seen.oversize[0], G_GUINT64_CONSTANT (1) << 40);
  EXPECT_EQ (ws->counters ().skipped_bytes, 16u << 20);
  EXPECT_FALSE (seen.info.clean);
  EXPECT_EQ (seen.info.code, rtms::WS_CLOSE_ABNORMAL);
}

TEST (WsRaw, PeerClosesMidFrame)
{
  Ctx c;
  RawServer srv ([&](RawServer &s) {
        s.write (server_frame (true, 1, "whole"));
        std::string f = server_frame (true, 1, std::string (100, 'x'));
        s.write (f.substr (0, 12));   /* header + 10 of 100 bytes */
        g_usleep (50000);
        s.close_socket ();
      });
  Seen seen;
  auto ws = make_client (c, cfg_for (srv.url ()), &seen);
  ws->connect ();
  ASSERT_TRUE (c.spin ([&] { return seen.closed; }));
  ASSERT_EQ (seen.messages.size (), 1u);
  EXPECT_FALSE (seen.info.clean);
  EXPECT_EQ (seen.info.code, rtms::WS_CLOSE_ABNORMAL);
  EXPECT_EQ (seen.info.error_domain, G_IO_ERROR);
  EXPECT_EQ (seen.info.error_code, G_IO_ERROR_CONNECTION_CLOSED);
  EXPECT_NE (seen.info.error_message.find ("middle of a frame"),
      std::string::npos) << seen.info.error_message;
}

TEST (WsRaw, ServerInitiatedCloseEchoed)
{
  Ctx c;
  ClientFrame echo;
  RawServer srv ([&](RawServer &s) {
        s.write (server_frame (true, 1, "bye soon") +
                 server_frame (true, 8, std::string ("\x03\xe8", 2) + "done"));
        echo = s.read_frame ();
        s.close_socket ();   /* the server closes TCP first (§7.1.1) */
      });
  Seen seen;
  auto ws = make_client (c, cfg_for (srv.url ()), &seen);
  ws->connect ();
  ASSERT_TRUE (c.spin ([&] { return seen.closed; }));
  EXPECT_EQ (text_of (seen, 0), "bye soon");
  EXPECT_TRUE (seen.info.clean);
  EXPECT_EQ (seen.info.code, 1000);
  EXPECT_EQ (seen.info.reason, "done");
  EXPECT_EQ (seen.info.error_domain, 0u) << seen.info.error_message;
  ASSERT_TRUE (c.spin ([&] { return srv.done (); }));
  ASSERT_TRUE (echo.ok);
  EXPECT_EQ (echo.opcode, 8);
  EXPECT_TRUE (echo.masked);
  EXPECT_EQ (echo.close_code (), 1000);
}

TEST (WsRaw, ClientCloseUnansweredTimesOut)
{
  Ctx c;
  ClientFrame cf;
  RawServer srv ([&](RawServer &s) {
        cf = s.read_frame ();
        s.wait_eof (3000);
      });
  Seen seen;
  WsConfig cfg = cfg_for (srv.url ());
  cfg.close_timeout_ms = 200;
  auto ws = make_client (c, cfg, &seen);
  ws->connect ();
  ASSERT_TRUE (c.spin ([&] { return seen.opened; }));
  ws->close (4000, "r\xc3\xa9" "ason");
  gint64 t0 = g_get_monotonic_time ();
  ASSERT_TRUE (c.spin ([&] { return seen.closed; }));
  EXPECT_GE (g_get_monotonic_time () - t0, 150 * 1000);
  EXPECT_FALSE (seen.info.clean);
  EXPECT_EQ (seen.info.code, rtms::WS_CLOSE_ABNORMAL);
  ASSERT_TRUE (c.spin ([&] { return srv.done (); }));
  EXPECT_EQ (cf.close_code (), 4000);
  EXPECT_EQ (cf.payload.substr (2), "r\xc3\xa9" "ason");
}

TEST (WsRaw, SendQueueIsBoundedAndDeliversInOrder)
{
  Ctx c;
  std::atomic<bool> start_reading{ false };
  std::vector<std::string> got;
  RawServer srv ([&](RawServer &s) {
        while (!start_reading && !s.stop_)
          g_usleep (1000);
        for (;;) {
          ClientFrame f = s.read_frame (5000);
          if (!f.ok || f.opcode == 8)
            break;
          EXPECT_TRUE (f.masked);
          got.push_back (f.payload);
        }
      });
  Seen seen;
  WsConfig cfg = cfg_for (srv.url ());
  cfg.max_queued_bytes = 64 * 1024;
  auto ws = make_client (c, cfg, &seen);
  ws->connect ();
  ASSERT_TRUE (c.spin ([&] { return seen.opened; }));
  std::string body (1000, 'm');
  int accepted = 0;
  WsSendResult r = WsSendResult::OK;
  for (int i = 0; i < 100000 && r == WsSendResult::OK; i++) {
    std::string m = std::to_string (i) + ":" + body;
    r = ws->send_text (m.data (), m.size ());
    if (r == WsSendResult::OK)
      accepted++;
    EXPECT_LE (ws->queued_bytes (), cfg.max_queued_bytes);
  }
  EXPECT_EQ (r, WsSendResult::QUEUE_FULL);
  EXPECT_GT (ws->queued_bytes (), cfg.max_queued_bytes - 2 * 1024);
  std::string too_big (5 * 1024 * 1024, 'x');
  EXPECT_EQ (ws->send_text (too_big.data (), too_big.size ()),
      WsSendResult::TOO_BIG);
  start_reading = true;
  ASSERT_TRUE (c.spin ([&] { return ws->queued_bytes () == 0; }))
      << ws->queued_bytes () << " queued, accepted " << accepted
      << ", server got " << got.size ();
  EXPECT_EQ (ws->held_bytes (), 0u);   /* a drained queue frees its storage */
  ws->close ();
  ASSERT_TRUE (c.spin ([&] { return srv.done (); }));
  ASSERT_EQ ((int) got.size (), accepted);
  for (int i = 0; i < accepted; i++)
    ASSERT_EQ (got[i], std::to_string (i) + ":" + body) << i;
}

/* Memory (issue 12): reads go into the thread's shared buffer, and a
 * connection keeps only the bytes of an incomplete frame between reads.
 * An idle connection holds nothing; half a 1,000-byte frame holds at most
 * that frame; a 100 KiB frame (more than one 64 KiB read) is read into a
 * buffer of at most its size, given back once it is delivered. */
TEST (WsRaw, IdleConnectionHoldsNoReceiveBuffer)
{
  Ctx c;
  std::atomic<int> step{ 0 };
  const std::string mid (1000, 'm'), big (100 * 1024, 'b');
  const std::string mid_frame = server_frame (true, 1, mid);
  const std::string big_frame = server_frame (true, 2, big);
  RawServer srv ([&](RawServer &s) {
        auto wait_step = [&] (int n) {
          while (step < n && !s.stop_)
            g_usleep (1000);
        };
        s.write (server_frame (true, 1, "one"));
        wait_step (1);
        s.write (mid_frame.substr (0, 500));
        wait_step (2);
        s.write (mid_frame.substr (500));
        s.write (big_frame.substr (0, 60000));
        wait_step (3);
        s.write (big_frame.substr (60000) + server_frame (true, 1, "last"));
        s.read_frame ();
        s.close_socket ();
      });
  Seen seen;
  auto ws = make_client (c, cfg_for (srv.url ()), &seen);
  ws->connect ();
  ASSERT_TRUE (c.spin ([&] { return seen.messages.size () >= 1; }));
  EXPECT_EQ (ws->held_bytes (), 0u);
  guint64 before = ws->counters ().bytes_read;
  step = 1;
  ASSERT_TRUE (c.spin ([&] { return ws->counters ().bytes_read >= before + 500; }));
  EXPECT_EQ (seen.messages.size (), 1u);
  EXPECT_GT (ws->held_bytes (), 0u);
  EXPECT_LE (ws->held_bytes (), mid_frame.size ());
  before = ws->counters ().bytes_read;
  step = 2;
  ASSERT_TRUE (c.spin ([&] {
        return ws->counters ().bytes_read >= before + 500 + 60000; }));
  ASSERT_EQ (seen.messages.size (), 2u);
  EXPECT_EQ (text_of (seen, 1), mid);
  EXPECT_GE (ws->held_bytes (), 60000u - 10);   /* the big frame so far */
  EXPECT_LE (ws->held_bytes (), big_frame.size ());
  step = 3;
  ASSERT_TRUE (c.spin ([&] { return seen.messages.size () >= 4 || seen.closed; }));
  ASSERT_EQ (seen.messages.size (), 4u);
  EXPECT_FALSE (seen.messages[2].first);
  EXPECT_EQ (text_of (seen, 2), big);
  EXPECT_EQ (text_of (seen, 3), "last");
  EXPECT_EQ (ws->held_bytes (), 0u);
  ws->close ();
  ASSERT_TRUE (c.spin ([&] { return seen.closed; }));
}

/* The shared read buffer is lent to one read at a time: a callback that
 * iterates the context (so another connection's source dispatches and
 * reads, GSources here, no WsPoller) must not overwrite the message it is
 * looking at. */
TEST (WsRaw, NestedIterationDoesNotReuseTheSharedReadBuffer)
{
  Ctx c;
  std::atomic<bool> send_b{ false };
  const std::string a_msg (2000, 'a'), b_msg (2000, 'b');
  RawServer srv_a ([&](RawServer &s) {
        s.write (server_frame (true, 1, a_msg));
        s.read_frame ();
      });
  RawServer srv_b ([&](RawServer &s) {
        while (!send_b && !s.stop_)
          g_usleep (1000);
        s.write (server_frame (true, 1, b_msg));
        s.read_frame ();
      });
  Seen seen_b;
  auto b = make_client (c, cfg_for (srv_b.url ()), &seen_b);
  b->connect ();
  ASSERT_TRUE (c.spin ([&] { return seen_b.opened; }));
  bool a_intact = false, b_inside = false;
  int a_messages = 0;
  rtms::WsCallbacks cb;
  cb.on_message = [&] (bool, const char *d, gsize n) {
    a_messages++;
    send_b = true;
    /* B's message arrives and is read while A's is on the stack */
    gint64 end = g_get_monotonic_time () + 10 * G_TIME_SPAN_SECOND;
    while (seen_b.messages.empty () && g_get_monotonic_time () < end) {
      if (!g_main_context_iteration (c.get (), FALSE))
        g_usleep (500);
    }
    b_inside = !seen_b.messages.empty ();
    a_intact = std::string (d, n) == a_msg;
  };
  cb.on_closed = [] (const WsCloseInfo &) {};
  auto a = std::make_unique<WsConnection> (c.get (), cfg_for (srv_a.url ()),
      cb);
  a->connect ();
  ASSERT_TRUE (c.spin ([&] { return a_messages >= 1; }));
  EXPECT_TRUE (b_inside);
  EXPECT_TRUE (a_intact);
  ASSERT_EQ (seen_b.messages.size (), 1u);
  EXPECT_EQ (text_of (seen_b, 0), b_msg);
  a->close ();
  b->close ();
  c.spin_for (50);
}
