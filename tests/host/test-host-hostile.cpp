/* Hostile and unusual input against a real zoomrtms-host on loopback (issue
 * 8): the url_validation signing oracle, deep and huge bodies, request
 * framing, log injection, the management API's access rules, fd exhaustion
 * and slow requests. Every test here failed on the host before issue 8.
 * No timed assertions: waits have generous bounds, memory is read from
 * /proc/PID/status.
 */
#include "host-test-util.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace {

using namespace hosttest;

/* VmHWM (peak resident set) of @pid in KiB, -1 if unreadable. */
gint64
peak_rss_kib (const std::string &pid)
{
  std::string st = read_file ("/proc/" + pid + "/status");
  gsize at = st.find ("VmHWM:");
  if (at == std::string::npos)
    return -1;
  return g_ascii_strtoll (st.c_str () + at + 6, nullptr, 10);
}

/* A raw TCP connection to 127.0.0.1:@port (blocking, MSG_NOSIGNAL; connect
 * and send give up after 10 s). */
class Raw {
 public:
  explicit Raw (int port)
  {
    fd_ = socket (AF_INET, SOCK_STREAM, 0);
    sockaddr_in a {};
    a.sin_family = AF_INET;
    a.sin_port = htons (static_cast<uint16_t> (port));
    a.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    /* a bound of 10 s: a host that stopped accepting leaves connect()
     * waiting for a backlog slot */
    timeval tv {10, 0};
    setsockopt (fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect (fd_, reinterpret_cast<sockaddr *> (&a), sizeof a) != 0) {
      close (fd_);
      fd_ = -1;
    }
  }
  ~Raw () { if (fd_ >= 0) close (fd_); }
  Raw (const Raw &) = delete;
  Raw &operator= (const Raw &) = delete;
  bool ok () const { return fd_ >= 0; }
  int fd () const { return fd_; }
  bool send_all (const std::string &s)
  {
    gsize off = 0;
    while (off < s.size ()) {
      ssize_t n = send (fd_, s.data () + off, s.size () - off, MSG_NOSIGNAL);
      if (n <= 0)
        return false;
      off += static_cast<gsize> (n);
    }
    return true;
  }
  /* true if readable (data or EOF) within @timeout_ms */
  bool readable (int timeout_ms)
  {
    pollfd p {fd_, POLLIN, 0};
    return poll (&p, 1, timeout_ms) > 0;
  }
  /* true if the server closed the connection (EOF or reset) within
   * @timeout_ms; data before the EOF is skipped */
  bool closed_by_peer (int timeout_ms)
  {
    gint64 end = g_get_monotonic_time () + timeout_ms * G_GINT64_CONSTANT (1000);
    char buf[4096];
    while (g_get_monotonic_time () < end) {
      int left = static_cast<int> ((end - g_get_monotonic_time ()) / 1000);
      if (!readable (MAX (left, 1)))
        return false;
      ssize_t n = recv (fd_, buf, sizeof buf, 0);
      if (n <= 0)
        return true;
    }
    return false;
  }
  /* Reads one HTTP response (headers + Content-Length body) within
   * @timeout_ms. Returns its status, 0 if none. */
  int read_status (int timeout_ms, std::string *body = nullptr)
  {
    std::string in;
    gint64 end = g_get_monotonic_time () + timeout_ms * G_GINT64_CONSTANT (1000);
    char buf[4096];
    while (g_get_monotonic_time () < end) {
      gsize hdr_end = in.find ("\r\n\r\n");
      if (hdr_end != std::string::npos) {
        g_autofree gchar *down = g_ascii_strdown (in.c_str (), static_cast<gssize> (hdr_end));
        std::string lower = down;
        gsize cl_at = lower.find ("content-length:");
        gsize want = cl_at == std::string::npos ? 0
            : static_cast<gsize> (g_ascii_strtoull (lower.c_str () + cl_at + 15, nullptr, 10));
        /* a 100 Continue is followed by the real answer */
        if (g_str_has_prefix (in.c_str (), "HTTP/1.1 100")) {
          in.erase (0, hdr_end + 4);
          continue;
        }
        if (in.size () >= hdr_end + 4 + want) {
          if (body)
            *body = in.substr (hdr_end + 4, want);
          return static_cast<int> (g_ascii_strtoll (in.c_str () + 9, nullptr, 10));
        }
      }
      int left = static_cast<int> ((end - g_get_monotonic_time ()) / 1000);
      if (!readable (MAX (left, 1)))
        break;
      ssize_t n = recv (fd_, buf, sizeof buf, 0);
      if (n <= 0)
        break;
      in.append (buf, static_cast<gsize> (n));
    }
    return 0;
  }

 private:
  int fd_ = -1;
};

/* Sends the request head @head, then a body of @total bytes (chunked if
 * @chunked) as long as the server reads it and has not answered; returns the
 * status of the answer (0: none within 60 s). */
int
stream_body (int port, const std::string &head, guint64 total, bool chunked)
{
  Raw c (port);
  EXPECT_TRUE (c.ok ());
  if (!c.ok () || !c.send_all (head))
    return 0;
  std::string piece (64 * 1024, '0');
  if (chunked)
    piece = "10000\r\n" + piece + "\r\n";
  guint64 sent = 0;
  bool done = false;
  gint64 end = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
  while (!done && g_get_monotonic_time () < end) {
    pollfd p {c.fd (), POLLIN | POLLOUT, 0};
    if (poll (&p, 1, 20000) <= 0)
      break;
    if (p.revents & (POLLIN | POLLHUP | POLLERR))
      break;                    /* the answer (or the close) is there */
    std::string chunk = piece;
    if (sent + 64 * 1024 >= total) {
      done = true;
      if (chunked)
        chunk += "0\r\n\r\n";
    }
    if (send (c.fd (), chunk.data (), chunk.size (), MSG_NOSIGNAL) <= 0)
      break;
    sent += 64 * 1024;
  }
  return c.read_status (60000);
}

std::string
signed_headers (const std::string &body, const std::string &token = kSecretToken)
{
  std::string ts = std::to_string (g_get_real_time () / G_USEC_PER_SEC);
  return "x-zm-request-timestamp: " + ts + "\r\nx-zm-signature: " +
      rtms::webhook_signature (token, ts, body.data (), body.size ()) + "\r\n";
}

const char *kStopUnknown = "{\"event\":\"contact_center.voice_rtms_stopped\","
    "\"event_ts\":1738392099000,\"payload\":{\"engagement_id\":\"nobody\","
    "\"rtms_stream_id\":\"nostream\",\"stop_reason\":22}}";

std::string
write_conf (const TempDir &tmp, const std::string &name, const std::string &text)
{
  std::string path = tmp / name;
  g_file_set_contents (path.c_str (), text.c_str (), -1, nullptr);
  return path;
}

#define REQUIRE_HOST()                                                         \
  ASSERT_TRUE (g_file_test (host_bin ().c_str (), G_FILE_TEST_IS_EXECUTABLE))  \
      << "build zoomrtms-host first"

/* docs/protocol.md §2.4: an unsigned challenge answered is a signing oracle
 * (encryptedToken = HMAC(secret token, plainToken) = x-zm-signature of any
 * body when plainToken = "v0:{ts}:{body}"). */
TEST (HostHostile, UrlValidationIsNoSigningOracle)
{
  REQUIRE_HOST ();
  TempDir tmp;
  Host h (tmp);
  ASSERT_GT (h.port (), 0) << h.proc ().log ();

  std::string forged = "{\"event\":\"contact_center.voice_rtms_started\",\"event_ts\":1,"
      "\"payload\":{\"engagement_id\":\"FORGED\",\"rtms_stream_id\":\"forged\","
      "\"server_urls\":\"ws://127.0.0.1:9/signaling\"}}";
  std::string ts = std::to_string (g_get_real_time () / G_USEC_PER_SEC);
  std::string plain = "v0:" + ts + ":" + forged;
  g_autofree gchar *plain_json = g_strescape (plain.c_str (), nullptr);
  std::string challenge = std::string ("{\"event\":\"endpoint.url_validation\","
      "\"event_ts\":1,\"payload\":{\"plainToken\":\"") + plain_json + "\"}}";
  std::string would_be = rtms::webhook_signature (kSecretToken, ts, forged.data (),
      forged.size ()).substr (3);

  Resp unsigned_r = http ("POST", h.url ("/webhook"), challenge);
  EXPECT_EQ (unsigned_r.status, 401u) << unsigned_r.body;
  EXPECT_EQ (unsigned_r.body.find (would_be), std::string::npos);
  Resp wrong = post_webhook (h, challenge, 0, "not_the_secret_token");
  EXPECT_EQ (wrong.status, 401u) << wrong.body;
  EXPECT_EQ (wrong.body.find (would_be), std::string::npos);
  Resp stale = post_webhook (h, challenge, g_get_real_time () / G_USEC_PER_SEC - 3600);
  EXPECT_EQ (stale.status, 401u);
  EXPECT_EQ (stale.body.find (would_be), std::string::npos);

  /* the forged start was never obtainable, and a signed challenge still works
   * (docs/protocol.md §9.3 vector 2) */
  std::string val = "{\"event\":\"endpoint.url_validation\",\"event_ts\":1654503849680,"
      "\"payload\":{\"plainToken\":\"qgg8vlvZRS6UYooatFL8Aw\"}}";
  Resp ok = post_webhook (h, val);
  EXPECT_EQ (ok.status, 200u);
  JsonDoc d (ok.body);
  ASSERT_NE (d.obj (), nullptr) << ok.body;
  EXPECT_STREQ (json_object_get_string_member (d.obj (), "encryptedToken"),
      "4efea922935c335d972476de138d2208a0d46ab28c79ee592d497a1b216419b8");

  g_usleep (200000);
  EXPECT_TRUE (list_dir (h.out ()).empty ());
  expect_clean_exit (h.proc ());
  EXPECT_EQ (h.proc ().log ().find (kSecretToken), std::string::npos);
}

/* A 100 KB unsigned body nested 50,000 deep with max-body-bytes 1 MiB:
 * refused (401) without parsing it deeply; the host stays up. A signed one
 * is refused as malformed (400). */
TEST (HostHostile, DeepBodyRefusedHostStaysUp)
{
  REQUIRE_HOST ();
  TempDir tmp;
  std::string conf = write_conf (tmp, "big.conf", "[limits]\nmax-body-bytes=1048576\n");
  Host h (tmp, {"--config", conf});
  ASSERT_GT (h.port (), 0) << h.proc ().log ();
  std::string deep = "{\"event\":\"contact_center.voice_rtms_started\",\"x\":" +
      std::string (50000, '[') + std::string (50000, ']') + "}";
  ASSERT_GE (deep.size (), 100000u);
  Resp r = post_webhook (h, deep, 0, "wrong_token");
  EXPECT_EQ (r.status, 401u);
  Resp nosig = http ("POST", h.url ("/webhook"), deep);
  EXPECT_EQ (nosig.status, 401u);
  Resp s = post_webhook (h, deep);
  EXPECT_EQ (s.status, 400u) << s.body;
  EXPECT_EQ (http ("GET", h.url ("/health")).status, 200u);
  EXPECT_EQ (post_webhook (h, kStopUnknown).status, 200u);
  EXPECT_FALSE (h.proc ().exited ()) << h.proc ().log ();
  expect_clean_exit (h.proc ());
}

/* A 100 MB body is refused (413) while it arrives, never buffered: the
 * host's peak RSS grows by less than 20 MB. Content-Length and chunked. */
TEST (HostHostile, HugeBodiesRefusedWithoutBuffering)
{
  REQUIRE_HOST ();
  TempDir tmp;
  std::string conf = write_conf (tmp, "big.conf", "[limits]\nmax-body-bytes=1048576\n");
  Host h (tmp, {"--config", conf});
  ASSERT_GT (h.port (), 0) << h.proc ().log ();
  /* warm up the request path before the baseline */
  EXPECT_EQ (post_webhook (h, kStopUnknown).status, 200u);
  gint64 before = peak_rss_kib (h.proc ().pid ());
  ASSERT_GT (before, 0);

  const guint64 total = 100ull * 1024 * 1024;
  std::string body_sig = "x-zm-request-timestamp: 1\r\nx-zm-signature: v0=00\r\n";
  int cl = stream_body (h.port (), "POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\n"
      "Content-Type: application/json\r\n" + body_sig +
      "Content-Length: " + std::to_string (total) + "\r\n\r\n", total, false);
  EXPECT_EQ (cl, 413);
  int chunked = stream_body (h.port (), "POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\n"
      "Content-Type: application/json\r\n" + body_sig +
      "Transfer-Encoding: chunked\r\n\r\n", total, true);
  EXPECT_EQ (chunked, 413);
  /* and on a path with no handler for bodies */
  int other = stream_body (h.port (), "POST /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
      "Content-Length: " + std::to_string (total) + "\r\n\r\n", total, false);
  EXPECT_EQ (other, 413);

  gint64 after = peak_rss_kib (h.proc ().pid ());
  EXPECT_LT (after - before, 20 * 1024) << "VmHWM " << before << " → " << after << " KiB";
  EXPECT_EQ (post_webhook (h, kStopUnknown).status, 200u);
  expect_clean_exit (h.proc ());
}

/* RFC 9112 §6.3: two different Content-Length values, or Content-Length with
 * Transfer-Encoding (request smuggling behind a proxy) → 400. */
TEST (HostHostile, AmbiguousFramingRefused)
{
  REQUIRE_HOST ();
  TempDir tmp;
  Host h (tmp);
  ASSERT_GT (h.port (), 0) << h.proc ().log ();
  std::string body = kStopUnknown;
  std::string head = "POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\n"
      "Content-Type: application/json\r\n" + signed_headers (body);
  struct Case { const char *name; std::string framing; std::string payload; };
  g_autofree gchar *size_line = g_strdup_printf ("%zx\r\n", body.size ());
  std::string chunked = size_line + body + "\r\n0\r\n\r\n";
  std::vector<Case> cases = {
    {"two Content-Length", "Content-Length: " + std::to_string (body.size ()) +
        "\r\nContent-Length: " + std::to_string (body.size () + 1) + "\r\n", body},
    {"Content-Length list", "Content-Length: " + std::to_string (body.size ()) + ", " +
        std::to_string (body.size () - 1) + "\r\n", body},
    {"Content-Length + chunked", "Content-Length: " + std::to_string (body.size ()) +
        "\r\nTransfer-Encoding: chunked\r\n", chunked},
    {"Content-Length not decimal", "Content-Length: +" + std::to_string (body.size ()) +
        "\r\n", body},
  };
  for (const auto &c : cases) {
    Raw r (h.port ());
    ASSERT_TRUE (r.ok ());
    r.send_all (head + c.framing + "\r\n" + c.payload);
    EXPECT_EQ (r.read_status (20000), 400) << c.name;
  }
  /* the same request, framed once, is fine */
  Raw good (h.port ());
  good.send_all (head + "Content-Length: " + std::to_string (body.size ()) + "\r\n\r\n" + body);
  EXPECT_EQ (good.read_status (20000), 200);
  expect_clean_exit (h.proc ());
}

/* A `\n` in an event never makes a line of its own in the host's log:
 * unsigned (nothing of it is logged) or signed (logged escaped). */
TEST (HostHostile, NoLogInjection)
{
  REQUIRE_HOST ();
  TempDir tmp;
  Host h (tmp);
  ASSERT_GT (h.port (), 0) << h.proc ().log ();
  std::string unsigned_body = "{\"event\":\"x\\nINJECTED-UNSIGNED line\\r\\u001b[31m\","
      "\"payload\":{}}";
  EXPECT_EQ (http ("POST", h.url ("/webhook"), unsigned_body).status, 401u);
  EXPECT_EQ (post_webhook (h, unsigned_body, 0, "wrong_token").status, 401u);
  std::string signed_body = "{\"event\":\"evil\\nINJECTED-SIGNED.rtms_stopped\","
      "\"event_ts\":1,\"payload\":{\"rtms_stream_id\":\"nostream\"}}";
  EXPECT_EQ (post_webhook (h, signed_body).status, 200u);
  /* processed (and logged) from an idle source after the answer */
  EXPECT_TRUE (spin_until ([&h] {
        return h.proc ().log ().find ("unknown stream") != std::string::npos;
      }, 20000)) << h.proc ().log ();
  expect_clean_exit (h.proc ());
  std::string log = h.proc ().log ();
  g_auto (GStrv) lines = g_strsplit (log.c_str (), "\n", -1);
  for (gchar **l = lines; *l; l++) {
    EXPECT_FALSE (g_str_has_prefix (*l, "INJECTED")) << log;
    EXPECT_EQ (strchr (*l, '\x1b'), nullptr) << log;
  }
  EXPECT_EQ (log.find ("INJECTED-UNSIGNED"), std::string::npos) << log;
  EXPECT_NE (log.find ("evil\\nINJECTED-SIGNED"), std::string::npos) << log;
}

/* The management API: loopback only without a token (a request a local
 * proxy forwarded counts as remote), Bearer token with one; /health lists
 * engagement ids only to the same callers. */
TEST (HostHostile, ManagementApiNeedsTokenOrLoopback)
{
  REQUIRE_HOST ();
  TempDir tmp;
  {
    Host h (tmp, {}, "open");
    ASSERT_GT (h.port (), 0) << h.proc ().log ();
    EXPECT_EQ (http ("GET", h.url ("/engagements")).status, 200u);
    Resp fwd = http ("GET", h.url ("/engagements"), "", {{"X-Forwarded-For", "203.0.113.9"}});
    EXPECT_EQ (fwd.status, 403u);
    EXPECT_EQ (http ("DELETE", h.url ("/engagements/x"), "",
        {{"Forwarded", "for=203.0.113.9"}}).status, 403u);
    Resp hl = http ("GET", h.url ("/health"));
    EXPECT_NE (hl.body.find ("\"engagements\""), std::string::npos) << hl.body;
    Resp hf = http ("GET", h.url ("/health"), "", {{"X-Real-IP", "203.0.113.9"}});
    EXPECT_EQ (hf.status, 200u);
    EXPECT_EQ (hf.body.find ("\"engagements\""), std::string::npos) << hf.body;
    expect_clean_exit (h.proc ());
  }
  /* a peer that is not loopback (if this machine has such an address) */
  std::string lan;
  struct ifaddrs *ifs = nullptr;
  if (getifaddrs (&ifs) == 0) {
    for (auto *i = ifs; i && lan.empty (); i = i->ifa_next)
      if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET) {
        char buf[INET_ADDRSTRLEN];
        auto *sin = reinterpret_cast<sockaddr_in *> (i->ifa_addr);
        if ((ntohl (sin->sin_addr.s_addr) >> 24) != 127 &&
            inet_ntop (AF_INET, &sin->sin_addr, buf, sizeof buf))
          lan = buf;
      }
    freeifaddrs (ifs);
  }
  if (!lan.empty ()) {
    Host h (tmp, {"--address", lan}, "lan");
    ASSERT_GT (h.port (), 0) << h.proc ().log ();
    std::string base = "http://" + lan + ":" + std::to_string (h.port ());
    EXPECT_EQ (http ("GET", base + "/engagements").status, 403u) << lan;
    Resp hl = http ("GET", base + "/health");
    EXPECT_EQ (hl.status, 200u);
    EXPECT_EQ (hl.body.find ("\"engagements\""), std::string::npos) << hl.body;
    expect_clean_exit (h.proc ());
  }
  /* a token from the environment, then from the config file */
  const std::string token = "api-Token-7Yx2-never-logged";
  std::string conf = write_conf (tmp, "token.conf", "[http]\napi-token=" + token + "\n");
  for (int from_file = 0; from_file < 2; from_file++) {
    std::vector<std::pair<std::string, std::string>> env;
    std::vector<std::string> extra;
    if (from_file)
      extra = {"--config", conf};
    else
      env = {{"ZOOMRTMS_API_TOKEN", token}};
    Host h (tmp, extra, from_file ? "tok-file" : "tok-env", env);
    ASSERT_GT (h.port (), 0) << h.proc ().log ();
    Resp none = http ("GET", h.url ("/engagements"));
    EXPECT_EQ (none.status, 401u);
    EXPECT_TRUE (g_str_has_prefix (none.www_authenticate.c_str (), "Bearer")) << none.www_authenticate;
    EXPECT_EQ (http ("GET", h.url ("/engagements"), "",
        {{"Authorization", "Bearer " + token + "x"}}).status, 401u);
    EXPECT_EQ (http ("GET", h.url ("/engagements"), "",
        {{"Authorization", "Basic " + token}}).status, 401u);
    EXPECT_EQ (http ("DELETE", h.url ("/engagements/x")).status, 401u);
    EXPECT_EQ (http ("GET", h.url ("/engagements"), "",
        {{"Authorization", "Bearer " + token}}).status, 200u);
    EXPECT_EQ (http ("DELETE", h.url ("/engagements/x"), "",
        {{"Authorization", "Bearer " + token}}).status, 404u);
    Resp hl = http ("GET", h.url ("/health"));
    EXPECT_EQ (hl.status, 200u);
    EXPECT_EQ (hl.body.find ("\"engagements\""), std::string::npos) << hl.body;
    Resp ha = http ("GET", h.url ("/health"), "", {{"Authorization", "Bearer " + token}});
    EXPECT_NE (ha.body.find ("\"engagements\""), std::string::npos) << ha.body;
    expect_clean_exit (h.proc ());
    EXPECT_EQ (h.proc ().log ().find (token), std::string::npos);
  }
}

/* Under RLIMIT_NOFILE 256, more idle connections than file descriptors: the
 * host keeps answering webhooks while they are open (the connection cap
 * closes the oldest idle ones) and after they are gone, and closes the idle
 * ones after the request timeout. (Before: EMFILE removed libsoup's accept
 * source for good.) */
TEST (HostHostile, FdExhaustionDoesNotStopTheListener)
{
  REQUIRE_HOST ();
  TempDir tmp;
  std::string conf = write_conf (tmp, "t.conf", "[http]\nrequest-timeout-s=3\n");
  Host h (tmp, {"--config", conf}, "host", {}, 256);
  ASSERT_GT (h.port (), 0) << h.proc ().log ();
  std::vector<std::unique_ptr<Raw>> idle;
  for (int i = 0; i < 300; i++) {
    idle.push_back (std::make_unique<Raw> (h.port ()));
    ASSERT_TRUE (idle.back ()->ok ()) << i;
  }
  /* while they are open */
  EXPECT_EQ (post_webhook (h, kStopUnknown).status, 200u) << h.proc ().log ();
  /* idle connections do not stay open: every one is closed by the host
   * (for room, or after request-timeout-s) */
  int closed = 0;
  for (auto &c : idle)
    closed += c->closed_by_peer (30000);
  EXPECT_EQ (closed, 300);
  idle.clear ();
  /* after they are gone */
  EXPECT_EQ (post_webhook (h, kStopUnknown).status, 200u) << h.proc ().log ();
  EXPECT_EQ (http ("GET", h.url ("/health")).status, 200u);
  EXPECT_FALSE (h.proc ().exited ());
  expect_clean_exit (h.proc ());
}

/* max-connections above the fd limit: accept() itself fails with EMFILE.
 * The accept loop logs it, frees the oldest idle connection, backs off and
 * goes on accepting: webhooks are answered while the idle connections are
 * open and after. */
TEST (HostHostile, EmfileDoesNotKillTheAcceptLoop)
{
  REQUIRE_HOST ();
  TempDir tmp;
  std::string conf = write_conf (tmp, "t.conf",
      "[http]\nrequest-timeout-s=30\nmax-connections=1000\n");
  Host h (tmp, {"--config", conf}, "host", {}, 256);
  ASSERT_GT (h.port (), 0) << h.proc ().log ();
  std::vector<std::unique_ptr<Raw>> idle;
  for (int i = 0; i < 300; i++) {
    idle.push_back (std::make_unique<Raw> (h.port ()));
    ASSERT_TRUE (idle.back ()->ok ()) << i;
  }
  EXPECT_EQ (post_webhook (h, kStopUnknown).status, 200u) << h.proc ().log ();
  idle.clear ();
  EXPECT_EQ (post_webhook (h, kStopUnknown).status, 200u) << h.proc ().log ();
  expect_clean_exit (h.proc ());
  /* it was not silent */
  EXPECT_NE (h.proc ().log ().find ("Too many open files"), std::string::npos)
      << h.proc ().log ();
}

/* Slowloris: a connection that sends nothing, or a header a byte at a time,
 * is closed after request-timeout-s; others are answered meanwhile. */
TEST (HostHostile, SlowRequestsClosed)
{
  REQUIRE_HOST ();
  TempDir tmp;
  std::string conf = write_conf (tmp, "t.conf", "[http]\nrequest-timeout-s=2\n");
  Host h (tmp, {"--config", conf});
  ASSERT_GT (h.port (), 0) << h.proc ().log ();
  Raw silent (h.port ());
  Raw trickle (h.port ());
  ASSERT_TRUE (silent.ok () && trickle.ok ());
  trickle.send_all ("POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n{");
  EXPECT_EQ (post_webhook (h, kStopUnknown).status, 200u);
  bool trickle_closed = false;
  for (int i = 0; i < 30 && !trickle_closed; i++) {
    trickle.send_all ("\"");      /* a byte a second keeps nothing alive */
    trickle_closed = trickle.readable (1000);
  }
  EXPECT_TRUE (trickle_closed);
  EXPECT_TRUE (silent.closed_by_peer (30000));
  EXPECT_EQ (post_webhook (h, kStopUnknown).status, 200u);
  expect_clean_exit (h.proc ());
  /* the cut request never reached the webhook handler */
  EXPECT_EQ (h.proc ().log ().find ("rejected (401)"), std::string::npos) << h.proc ().log ();
}

} // namespace
