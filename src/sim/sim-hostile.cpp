/* zoomrtms-sim — hostile WebSocket frames (see sim-hostile.h). */
#include "sim-hostile.h"

#include <cstring>

namespace sim {

namespace {

/* A message-shaped frame around @content_members (msg @type, "content"). */
std::string
message (int type, const std::string &content_members)
{
  return "{\"msg_type\":" + std::to_string (type) + ",\"content\":{" +
      content_members + "}}";
}

std::string
stamp_member (gint64 stamp)
{
  return ",\"timestamp\":" + std::to_string (stamp);
}

} // namespace

const char *
hostile_frame_kinds ()
{
  return
      "  deep        300,000 unclosed '[' (the crash report's frame)\n"
      "  deep-msg    a msg 14 with a member nested 300,000 deep (balanced)\n"
      "  bad-utf8    a msg 14 whose channel_id holds invalid UTF-8 bytes, as "
      "a binary frame\n"
      "  escape-377  a msg 14 whose channel_id is \"\\377\\376\" (invalid JSON "
      "escapes)\n"
      "  surrogate   a msg 17 whose text holds lone UTF-16 surrogate escapes "
      "(\\ud800, \\udc00)\n"
      "  nul         a msg 17 whose text holds \\u0000\n"
      "  nul-raw     a msg 17 whose text holds a raw NUL byte (text frame)\n"
      "  oversize    a msg 15 (video) of BYTES bytes (default 8 MiB)\n"
      "  binary      4096 bytes of binary junk\n";
}

bool
parse_hostile_frame (const char *spec, HostileFrame *out)
{
  HostileFrame h;
  std::string s = spec;
  if (s.rfind ("signaling:", 0) == 0) {
    h.signaling = true;
    s = s.substr (strlen ("signaling:"));
  }
  size_t at = s.rfind ('@');
  if (at == std::string::npos || at == 0 || at + 1 >= s.size ())
    return false;
  char *end = nullptr;
  const char *ms = s.c_str () + at + 1;
  gint64 at_ms = g_ascii_strtoll (ms, &end, 10);
  if (end == ms || *end != '\0' || at_ms < 0)
    return false;
  h.at_ms = at_ms;
  std::string kind = s.substr (0, at);
  size_t colon = kind.find (':');
  if (colon != std::string::npos) {
    std::string n = kind.substr (colon + 1);
    kind = kind.substr (0, colon);
    if (kind != "oversize" || n.empty ())
      return false;
    guint64 bytes = g_ascii_strtoull (n.c_str (), &end, 10);
    if (*end != '\0' || bytes < 64 || bytes > 1024ull * 1024 * 1024)
      return false;
    h.bytes = (gsize) bytes;
  } else if (kind == "oversize") {
    h.bytes = HOSTILE_OVERSIZE_DEFAULT;
  }
  static const char *kinds[] = { "deep", "deep-msg", "bad-utf8",
    "escape-377", "surrogate", "nul", "nul-raw", "oversize", "binary" };
  bool known = false;
  for (const char *k : kinds)
    known = known || kind == k;
  if (!known)
    return false;
  h.kind = kind;
  *out = h;
  return true;
}

std::string
build_hostile_frame (const HostileFrame &h, gint64 stamp, bool *binary)
{
  *binary = false;
  const std::string ts = stamp_member (stamp);
  if (h.kind == "deep")
    return std::string (HOSTILE_DEPTH, '[');
  if (h.kind == "deep-msg")
    return message (14, "\"channel_id\":\"hostile\",\"data\":\"AAAA\"" + ts +
        ",\"x\":" + std::string (HOSTILE_DEPTH, '[') +
        std::string (HOSTILE_DEPTH, ']'));
  if (h.kind == "bad-utf8") {
    *binary = true;
    return message (14, "\"channel_id\":\"\xff\xfe\xc0\x80\xed\xa0\x80\","
        "\"data\":\"AAAA\"" + ts);
  }
  if (h.kind == "escape-377")
    return message (14, "\"channel_id\":\"\\377\\376\",\"data\":\"AAAA\"" + ts);
  if (h.kind == "surrogate")
    return message (17, "\"channel_id\":\"hostile\",\"data\":\"lone \\ud800 "
        "and \\udc00\"" + ts);
  if (h.kind == "nul")
    return message (17, "\"channel_id\":\"hostile\",\"data\":\"a\\u0000b\"" +
        ts);
  if (h.kind == "nul-raw") {
    std::string text = "a";
    text += '\0';
    text += "b";
    return message (17, "\"channel_id\":\"hostile\",\"data\":\"" + text +
        "\"" + ts);
  }
  if (h.kind == "oversize") {
    std::string head = "{\"msg_type\":15,\"content\":{\"user_id\":0,"
        "\"data\":\"";
    std::string tail = "\"" + ts + "}}";
    gsize pad = h.bytes > head.size () + tail.size () ?
        h.bytes - head.size () - tail.size () : 0;
    return head + std::string (pad, 'A') + tail;
  }
  /* binary: fixed seed, the same junk every run */
  *binary = true;
  GRand *r = g_rand_new_with_seed (8);
  std::string junk (4096, '\0');
  for (auto &c : junk)
    c = (char) g_rand_int_range (r, 0, 256);
  g_rand_free (r);
  return junk;
}

} // namespace sim
