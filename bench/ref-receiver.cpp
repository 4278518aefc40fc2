/* ref-receiver: the fixed point bench/run.py measures zoomrtms-host against.
 *
 * A minimal single-thread epoll RTMS receiver of our own making, the kind of
 * receiver issue 12 measured at 5–6 µs of CPU per msg 14: it takes the
 * sim's webhooks, does the signaling and media handshakes
 * (docs/protocol.md §3.3–§3.7, §4.2–§4.3), answers keep-alives (§3.9), reads
 * every socket with 64 KiB reads, parses WebSocket frames (RFC 6455) and
 * msg 14 (§4.4) in place, and writes one mono WAV per `channel_id`
 * through a 64 KiB buffer, each packet placed at its timestamp (gaps as zeros,
 * packets behind the write position dropped). Nothing else: no alignment
 * across channels, no GStreamer, no reconnection, no TLS (ws:// only), no
 * webhook signature check (2 webhooks per engagement, not the per-packet
 * cost this measures). It is a measuring stick for bench/run.py, not a
 * product: never point it at Zoom.
 *
 *   ref-receiver --out DIR [--port N] [--ready-file FILE]
 *
 * Listens for webhooks on 127.0.0.1:N (0 = any free port); writes
 * {"port": N} to FILE once listening (what zoomrtms-host --ready-file
 * writes). Per engagement (rtms_stream_id S): DIR/S/<channel_id>.wav, then
 * DIR/S/done.json ({"rtms_stream_id", "packets", "channels": {channel_id:
 * {"packets", "samples"}}, "how"}) once msg 8 TERMINATED (§3.8) or the stopped
 * webhook ended it. Ids that are not [A-Za-z0-9_-]{1,64} are refused.
 * Credentials: ZOOM_APP_CLIENT_ID / ZOOM_APP_CLIENT_SECRET from the
 * environment. SIGTERM/SIGINT: finalize every open engagement and exit 0.
 */
#include <glib.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "rtms-auth.h"
#include "rtms-messages.h"

namespace {

constexpr size_t kRead = 64 * 1024;        /* bytes per read() */
constexpr size_t kWavBuf = 64 * 1024;      /* bytes buffered per WAV */
constexpr size_t kMaxMessage = 4u << 20;   /* as rtms::Client (rtms-ws.h) */
constexpr size_t kMaxHttp = 64 * 1024;     /* one webhook request */

volatile sig_atomic_t g_stop = 0;
std::string g_out, g_client_id, g_client_secret;
int g_epoll = -1;

void
on_signal (int)
{
  g_stop = 1;
}

bool
valid_id (const std::string &s)
{
  if (s.empty () || s.size () > 64)
    return false;
  for (char c : s)
    if (!g_ascii_isalnum (c) && c != '-' && c != '_')
      return false;
  return true;
}

/* ---- WAV, one per channel ---------------------------------------------- */

struct Channel {
  std::string id;
  int fd = -1;
  gint64 first_ts = -1;       /* ms */
  guint64 written = 0;        /* samples */
  guint64 packets = 0;
  std::vector<char> buf;

  void put (const char *p, size_t n)
  {
    while (n > 0) {
      size_t k = MIN (n, kWavBuf - buf.size ());
      buf.insert (buf.end (), p, p + k);
      p += k;
      n -= k;
      if (buf.size () == kWavBuf)
        flush ();
    }
  }
  void flush ()
  {
    size_t off = 0;
    while (off < buf.size ()) {
      ssize_t w = write (fd, buf.data () + off, buf.size () - off);
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0)
        break;
      off += (size_t) w;
    }
    buf.clear ();
  }
};

void
wav_header (char *h, guint32 data_bytes, guint32 rate)
{
  auto le32 = [] (char *p, guint32 v) {
    for (int i = 0; i < 4; i++)
      p[i] = (char) ((v >> (8 * i)) & 0xff);
  };
  memcpy (h, "RIFF", 4);
  le32 (h + 4, 36 + data_bytes);
  memcpy (h + 8, "WAVEfmt ", 8);
  le32 (h + 16, 16);
  h[20] = 1; h[21] = 0;       /* PCM */
  h[22] = 1; h[23] = 0;       /* mono */
  le32 (h + 24, rate);
  le32 (h + 28, rate * 2);
  h[32] = 2; h[33] = 0;       /* block align */
  h[34] = 16; h[35] = 0;      /* bits */
  memcpy (h + 36, "data", 4);
  le32 (h + 40, data_bytes);
}

/* ---- connections ------------------------------------------------------- */

struct Engagement;

struct Conn {
  enum Kind { HTTP, SIGNALING, MEDIA } kind;
  int fd = -1;
  Engagement *eng = nullptr;
  bool upgraded = false;
  std::vector<char> buf;
  size_t len = 0;
};

struct Engagement {
  rtms::Webhook wh;
  Conn *sig = nullptr, *media = nullptr;
  std::map<std::string, Channel> channels;
  guint32 rate = 16000;
  guint64 packets = 0;
  bool done = false;
};

std::map<std::string, std::unique_ptr<Engagement>> g_engagements;
std::vector<std::unique_ptr<Conn>> g_dead; /* freed after the event batch */

void
close_conn (Conn *c)
{
  if (c->fd < 0)
    return;
  epoll_ctl (g_epoll, EPOLL_CTL_DEL, c->fd, nullptr);
  close (c->fd);
  c->fd = -1;
  if (c->eng) {
    if (c->eng->sig == c)
      c->eng->sig = nullptr;
    if (c->eng->media == c)
      c->eng->media = nullptr;
  }
  g_dead.emplace_back (c);
}

bool
send_all (int fd, const char *p, size_t n)
{
  while (n > 0) {
    ssize_t w = send (fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0 && errno == EAGAIN) {
      struct pollfd pfd = { fd, POLLOUT, 0 };
      poll (&pfd, 1, 1000);
      continue;
    }
    if (w <= 0)
      return false;
    p += w;
    n -= (size_t) w;
  }
  return true;
}

/* One masked client text frame (RFC 6455 §5.2; a zero mask key). */
bool
send_text (Conn *c, const std::string &msg)
{
  if (!c || c->fd < 0)
    return false;
  std::string f;
  f.push_back ((char) 0x81);
  if (msg.size () < 126) {
    f.push_back ((char) (0x80 | msg.size ()));
  } else if (msg.size () < 65536) {
    f.push_back ((char) (0x80 | 126));
    f.push_back ((char) (msg.size () >> 8));
    f.push_back ((char) (msg.size () & 0xff));
  } else {
    f.push_back ((char) (0x80 | 127));
    for (int i = 7; i >= 0; i--)
      f.push_back ((char) ((guint64) msg.size () >> (8 * i)));
  }
  f.append (4, '\0');
  f += msg;
  return send_all (c->fd, f.data (), f.size ());
}

void
finalize (Engagement *e, const char *how)
{
  if (e->done)
    return;
  e->done = true;
  if (e->sig)
    close_conn (e->sig);
  if (e->media)
    close_conn (e->media);
  std::string json = "{\"rtms_stream_id\":\"" + e->wh.rtms_stream_id +
      "\",\"packets\":" + std::to_string (e->packets) + ",\"how\":\"" + how +
      "\",\"channels\":{";
  bool first = true;
  for (auto &kv : e->channels) {
    Channel &ch = kv.second;
    ch.flush ();
    char h[44];
    wav_header (h, (guint32) (ch.written * 2), e->rate);
    if (pwrite (ch.fd, h, sizeof h, 0) != (ssize_t) sizeof h)
      fprintf (stderr, "ref-receiver: WAV header: %s\n", g_strerror (errno));
    close (ch.fd);
    ch.fd = -1;
    json += (first ? "" : ",") + ("\"" + ch.id + "\":{\"packets\":") +
        std::to_string (ch.packets) + ",\"samples\":" +
        std::to_string (ch.written) + "}";
    first = false;
  }
  json += "}}\n";
  g_autofree char *path = g_build_filename (g_out.c_str (),
      e->wh.rtms_stream_id.c_str (), "done.json", nullptr);
  g_file_set_contents (path, json.data (), (gssize) json.size (), nullptr);
}

/* ---- msg 14 in place ---------------------------------------------------- */

/* The value of "key" in @p..@end: a string (start/len, no escapes) or an
 * integer. Returns false if absent or of another shape. */
const char *
find_key (const char *p, const char *end, const char *key, size_t klen)
{
  const char *q = (const char *) memmem (p, (size_t) (end - p), key, klen);
  if (!q)
    return nullptr;
  q += klen;
  while (q < end && (*q == ' ' || *q == ':'))
    q++;
  return q < end ? q : nullptr;
}

int
b64v (unsigned char c)
{
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

/* Decodes padded base64 into @out; returns bytes or -1. */
ssize_t
b64_decode (const char *s, size_t n, char *out)
{
  if (n % 4)
    return -1;
  size_t o = 0;
  for (size_t i = 0; i < n; i += 4) {
    int a = b64v (s[i]), b = b64v (s[i + 1]);
    if (a < 0 || b < 0)
      return -1;
    out[o++] = (char) ((a << 2) | (b >> 4));
    if (s[i + 2] == '=')
      break;
    int c = b64v (s[i + 2]);
    if (c < 0)
      return -1;
    out[o++] = (char) (((b & 15) << 4) | (c >> 2));
    if (s[i + 3] == '=')
      break;
    int d = b64v (s[i + 3]);
    if (d < 0)
      return -1;
    out[o++] = (char) (((c & 3) << 6) | d);
  }
  return (ssize_t) o;
}

bool
on_audio (Engagement *e, const char *p, size_t n)
{
  const char *end = p + n;
  const char *ch = find_key (p, end, "\"channel_id\"", 12);
  const char *data = find_key (p, end, "\"data\"", 6);
  const char *ts = find_key (p, end, "\"timestamp\"", 11);
  if (!ch || !data || !ts || *ch != '"' || *data != '"')
    return false;
  const char *ch_end = (const char *) memchr (ch + 1, '"', (size_t) (end - ch - 1));
  const char *data_end = (const char *) memchr (data + 1, '"', (size_t) (end - data - 1));
  if (!ch_end || !data_end)
    return false;
  gint64 t = g_ascii_strtoll (ts, nullptr, 10);
  char pcm[8192];
  size_t b64n = (size_t) (data_end - data - 1);
  if (b64n / 4 * 3 > sizeof pcm)
    return false;
  ssize_t bytes = b64_decode (data + 1, b64n, pcm);
  if (bytes < 0)
    return false;
  std::string id (ch + 1, ch_end);
  auto it = e->channels.find (id);
  if (it == e->channels.end ()) {
    if (!valid_id (id))
      return false;
    Channel c;
    c.id = id;
    c.buf.reserve (kWavBuf);
    g_autofree char *path = g_strdup_printf ("%s/%s/%s.wav", g_out.c_str (),
        e->wh.rtms_stream_id.c_str (), id.c_str ());
    c.fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (c.fd < 0)
      return false;
    char h[44];
    wav_header (h, 0, e->rate);
    c.put (h, sizeof h);
    it = e->channels.emplace (id, std::move (c)).first;
  }
  Channel &c = it->second;
  if (c.first_ts < 0)
    c.first_ts = t;
  gint64 pos = (t - c.first_ts) * (gint64) e->rate / 1000;
  if (pos < (gint64) c.written)
    return true;                       /* duplicate or behind: dropped */
  static const char zeros[4096] = { 0 };
  for (guint64 gap = (guint64) pos - c.written; gap > 0;) {
    size_t k = MIN (gap * 2, sizeof zeros);
    c.put (zeros, k);
    gap -= k / 2;
  }
  c.put (pcm, (size_t) bytes & ~(size_t) 1);
  c.written = (guint64) pos + (guint64) bytes / 2;
  c.packets++;
  e->packets++;
  return true;
}

/* ---- messages ------------------------------------------------------------ */

Conn *connect_ws (Engagement *e, Conn::Kind kind, const std::string &url);

void
on_message (Conn *c, const char *p, size_t n)
{
  Engagement *e = c->eng;
  if (e->done)
    return;
  /* the hot path: msg 14, parsed in place */
  const char *mt = find_key (p, p + MIN (n, (size_t) 32), "\"msg_type\"", 10);
  if (mt && mt[0] == '1' && mt[1] == '4' && (mt[2] == ',' || mt[2] == ' ')) {
    if (on_audio (e, p, n))
      return;
  }
  rtms::Message m;
  g_autoptr (GError) err = nullptr;
  if (!rtms::parse_message (p, (gssize) n, &m, &err))
    return;
  switch (m.kind) {
    case rtms::Message::Kind::SIGNALING_HANDSHAKE_RESP: {
      if (m.sig_resp.status_code != 0) {
        finalize (e, "signaling-refused");
        return;
      }
      auto plan = rtms::plan_media_connections (m.sig_resp.media_server, true,
          false);
      if (plan.empty ()) {
        finalize (e, "no-media-url");
        return;
      }
      e->media = connect_ws (e, Conn::MEDIA, plan[0].url);
      if (!e->media)
        finalize (e, "media-connect");
      return;
    }
    case rtms::Message::Kind::DATA_HANDSHAKE_RESP: {
      if (m.status_code != 0) {
        finalize (e, "media-refused");
        return;
      }
      if (m.media_params.audio) {
        static const guint32 hz[] = { 8000, 16000, 32000, 48000 };
        int sr = m.media_params.audio->sample_rate;
        if (sr >= 0 && sr < 4)
          e->rate = hz[sr];
      }
      rtms::ClientReadyAck ack;
      ack.rtms_stream_id = e->wh.rtms_stream_id;
      send_text (e->sig, rtms::encode (ack));
      return;
    }
    case rtms::Message::Kind::KEEP_ALIVE_REQ:
      send_text (c, rtms::encode_keep_alive (13, m.keep_alive.timestamp));
      return;
    case rtms::Message::Kind::STREAM_STATE_UPDATE:
      if (m.stream_state.state == rtms::STREAM_TERMINATED)
        finalize (e, "msg8");
      return;
    case rtms::Message::Kind::AUDIO:
      /* a msg 14 the in-place reader did not take: counted as lost */
      return;
    default:
      return;
  }
}

/* Parses every complete frame in c->buf; returns false to close. */
bool
on_frames (Conn *c)
{
  size_t off = 0;
  if (!c->upgraded) {
    const char *hdr_end = (const char *) memmem (c->buf.data (), c->len,
        "\r\n\r\n", 4);
    if (!hdr_end)
      return c->len < kMaxHttp;
    if (c->len < 12 || memcmp (c->buf.data () + 9, "101", 3) != 0)
      return false;
    c->upgraded = true;
    off = (size_t) (hdr_end + 4 - c->buf.data ());
  }
  while (c->fd >= 0 && c->len - off >= 2) {
    const unsigned char *h = (const unsigned char *) c->buf.data () + off;
    size_t avail = c->len - off;
    int opcode = h[0] & 0x0f;
    bool masked = h[1] & 0x80;
    guint64 plen = h[1] & 0x7f;
    size_t hl = 2;
    if (plen == 126) {
      if (avail < 4)
        break;
      plen = ((guint64) h[2] << 8) | h[3];
      hl = 4;
    } else if (plen == 127) {
      if (avail < 10)
        break;
      plen = 0;
      for (int i = 0; i < 8; i++)
        plen = (plen << 8) | h[2 + i];
      hl = 10;
    }
    if (masked || plen > kMaxMessage || !(h[0] & 0x80))
      return false;                    /* servers do not mask; no fragments */
    if (avail < hl + plen) {
      if (c->buf.size () < hl + plen + kRead)
        c->buf.resize (hl + plen + kRead);
      break;
    }
    const char *payload = (const char *) h + hl;
    if (opcode == 0x1 || opcode == 0x2)
      on_message (c, payload, (size_t) plen);
    else if (opcode == 0x8)
      return false;
    else if (opcode == 0x9) {
      std::string pong ("\x8a\x80\0\0\0\0", 6);
      send_all (c->fd, pong.data (), pong.size ());
    }
    off += hl + (size_t) plen;
  }
  if (c->fd < 0)
    return true;
  if (off > 0) {
    memmove (c->buf.data (), c->buf.data () + off, c->len - off);
    c->len -= off;
  }
  return true;
}

Conn *
connect_ws (Engagement *e, Conn::Kind kind, const std::string &url)
{
  if (url.compare (0, 5, "ws://") != 0)
    return nullptr;
  std::string rest = url.substr (5);
  size_t slash = rest.find ('/');
  std::string hostport = rest.substr (0, slash);
  std::string path = slash == std::string::npos ? "/" : rest.substr (slash);
  size_t colon = hostport.rfind (':');
  std::string host = hostport.substr (0, colon);
  std::string port = colon == std::string::npos ? "80" : hostport.substr (colon + 1);
  struct addrinfo hints = {}, *ai = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo (host.c_str (), port.c_str (), &hints, &ai) != 0 || !ai)
    return nullptr;
  int fd = socket (ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect (fd, ai->ai_addr, ai->ai_addrlen) != 0) {
    freeaddrinfo (ai);
    if (fd >= 0)
      close (fd);
    return nullptr;
  }
  freeaddrinfo (ai);
  int one = 1;
  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + hostport +
      "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
      "Sec-WebSocket-Version: 13\r\n\r\n";
  rtms::HandshakeIdentity id;
  id.id_key = e->wh.id_key;
  id.id_value = e->wh.id_value;
  id.rtms_stream_id = e->wh.rtms_stream_id;
  id.signature = rtms::handshake_signature (g_client_id, g_client_secret,
      e->wh.id_value, e->wh.rtms_stream_id);
  std::string first;
  if (kind == Conn::SIGNALING) {
    rtms::SignalingHandshakeReq r;
    r.id = id;
    first = rtms::encode (r);
  } else {
    rtms::MediaParams mp;
    mp.audio = rtms::AudioParams ();
    first = rtms::encode_data_handshake_req (id, rtms::MEDIA_AUDIO, false, mp);
  }
  auto c = new Conn ();
  c->kind = kind;
  c->fd = fd;
  c->eng = e;
  c->buf.resize (2 * kRead);
  /* the upgrade request and the first message in one write: the server
   * reads the message after its 101 */
  if (!send_all (fd, req.data (), req.size ()) || !send_text (c, first)) {
    close (fd);
    delete c;
    return nullptr;
  }
  fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) | O_NONBLOCK);
  struct epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.ptr = c;
  epoll_ctl (g_epoll, EPOLL_CTL_ADD, fd, &ev);
  return c;
}

/* ---- webhooks ------------------------------------------------------------ */

void
on_webhook (const char *body, size_t n)
{
  rtms::Webhook wh;
  g_autoptr (GError) err = nullptr;
  if (!rtms::parse_webhook (body, n, &wh, &err))
    return;
  if (wh.kind == rtms::Webhook::Kind::STOPPED) {
    auto it = g_engagements.find (wh.rtms_stream_id);
    if (it != g_engagements.end ())
      finalize (it->second.get (), "stopped-webhook");
    return;
  }
  if (wh.kind != rtms::Webhook::Kind::STARTED || !valid_id (wh.rtms_stream_id)
      || g_engagements.count (wh.rtms_stream_id))
    return;
  auto e = std::make_unique<Engagement> ();
  e->wh = wh;
  g_autofree char *dir = g_build_filename (g_out.c_str (),
      wh.rtms_stream_id.c_str (), nullptr);
  g_mkdir_with_parents (dir, 0755);
  Engagement *ep = e.get ();
  g_engagements.emplace (wh.rtms_stream_id, std::move (e));
  ep->sig = connect_ws (ep, Conn::SIGNALING, wh.signaling_url);
  if (!ep->sig)
    finalize (ep, "signaling-connect");
}

/* Returns false when the request is answered (close). */
bool
on_http (Conn *c)
{
  const char *b = c->buf.data ();
  const char *hdr_end = (const char *) memmem (b, c->len, "\r\n\r\n", 4);
  if (!hdr_end)
    return c->len < kMaxHttp;
  size_t hl = (size_t) (hdr_end + 4 - b);
  size_t clen = 0;
  for (const char *p = b; p < hdr_end; p++) {
    if ((p == b || p[-1] == '\n') && g_ascii_strncasecmp (p, "content-length:", 15) == 0)
      clen = (size_t) g_ascii_strtoull (p + 15, nullptr, 10);
  }
  if (clen > kMaxHttp)
    return false;
  if (c->len < hl + clen)
    return true;
  on_webhook (b + hl, clen);
  static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
      "Connection: close\r\n\r\n";
  send_all (c->fd, ok, sizeof ok - 1);
  return false;
}

} // namespace

int
main (int argc, char **argv)
{
  int port = 0;
  std::string ready;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--out" && i + 1 < argc)
      g_out = argv[++i];
    else if (a == "--port" && i + 1 < argc)
      port = atoi (argv[++i]);
    else if (a == "--ready-file" && i + 1 < argc)
      ready = argv[++i];
    else {
      fprintf (stderr, "usage: ref-receiver --out DIR [--port N] [--ready-file FILE]\n");
      return 2;
    }
  }
  const char *cid = g_getenv ("ZOOM_APP_CLIENT_ID");
  const char *cs = g_getenv ("ZOOM_APP_CLIENT_SECRET");
  if (g_out.empty () || !cid || !cs) {
    fprintf (stderr, "ref-receiver: --out and ZOOM_APP_CLIENT_ID/_SECRET are needed\n");
    return 2;
  }
  g_client_id = cid;
  g_client_secret = cs;
  g_mkdir_with_parents (g_out.c_str (), 0755);
  signal (SIGTERM, on_signal);
  signal (SIGINT, on_signal);
  signal (SIGPIPE, SIG_IGN);

  int lfd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt (lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa = {};
  sa.sin_family = AF_INET;
  sa.sin_port = htons ((guint16) port);
  sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  socklen_t sl = sizeof sa;
  if (bind (lfd, (struct sockaddr *) &sa, sizeof sa) != 0 || listen (lfd, SOMAXCONN) != 0
      || getsockname (lfd, (struct sockaddr *) &sa, &sl) != 0) {
    fprintf (stderr, "ref-receiver: listen: %s\n", g_strerror (errno));
    return 2;
  }
  g_epoll = epoll_create1 (EPOLL_CLOEXEC);
  struct epoll_event lev = {};
  lev.events = EPOLLIN;
  lev.data.ptr = nullptr;
  epoll_ctl (g_epoll, EPOLL_CTL_ADD, lfd, &lev);
  if (!ready.empty ()) {
    std::string j = "{\"port\": " + std::to_string (ntohs (sa.sin_port)) + "}\n";
    g_file_set_contents (ready.c_str (), j.data (), (gssize) j.size (), nullptr);
  }

  struct epoll_event evs[256];
  while (!g_stop) {
    int n = epoll_wait (g_epoll, evs, 256, 200);
    for (int i = 0; i < n; i++) {
      Conn *c = (Conn *) evs[i].data.ptr;
      if (!c) {
        for (;;) {
          int fd = accept4 (lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0)
            break;
          auto h = new Conn ();
          h->kind = Conn::HTTP;
          h->fd = fd;
          h->buf.resize (kMaxHttp + 1);
          struct epoll_event ev = {};
          ev.events = EPOLLIN;
          ev.data.ptr = h;
          epoll_ctl (g_epoll, EPOLL_CTL_ADD, fd, &ev);
        }
        continue;
      }
      if (c->fd < 0)
        continue;                      /* closed earlier in this batch */
      size_t room = c->buf.size () - c->len;
      if (c->kind != Conn::HTTP && room < kRead) {
        c->buf.resize (c->len + kRead);
        room = kRead;
      }
      ssize_t r = read (c->fd, c->buf.data () + c->len,
          c->kind == Conn::HTTP ? room : MIN (room, kRead));
      if (r < 0 && (errno == EAGAIN || errno == EINTR))
        continue;
      if (r <= 0) {
        close_conn (c);
        continue;
      }
      c->len += (size_t) r;
      bool keep = c->kind == Conn::HTTP ? on_http (c) : on_frames (c);
      if (!keep && c->fd >= 0)
        close_conn (c);
    }
    g_dead.clear ();
  }
  for (auto &kv : g_engagements)
    finalize (kv.second.get (), "sigterm");
  g_dead.clear ();
  return 0;
}
