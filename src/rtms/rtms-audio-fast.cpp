/* zoomrtms — fast path for msg 14 MEDIA_DATA_AUDIO, the hot message.
 *
 * An engagement is 2 channels × 50 msg 14 per second (design.md
 * "Performance"). json-glib builds a GObject DOM per frame (≈3.4 µs for a
 * 945-byte frame on the benchmark machine); simdjson's validating DOM parser
 * with runtime CPU dispatch takes ≈0.13 µs. This file only handles the
 * well-formed case and returns false for anything it does not fully
 * understand, so parse_message() then runs the json-glib path, which gives
 * the exact same result or the error that names the field.
 */
#include <simdjson.h>

#include <charconv>
#include <cstring>
#include <vector>

#include "rtms-json-private.h"
#include "rtms-json.h"
#include "rtms-messages.h"

namespace rtms {
namespace detail {

namespace {

/* An opaque id (§11 #7): string, or integer kept as decimal text. JSON null is
 * absent. Returns false for other types (the slow path reports them). */
bool
read_id (simdjson::dom::element v, std::string *out, bool *present)
{
  switch (v.type ()) {
    case simdjson::dom::element_type::STRING:{
      std::string_view s = v.get_string ().value_unsafe ();
      out->assign (s.data (), s.size ());
      *present = true;
      return true;
    }
    case simdjson::dom::element_type::INT64:{
      char buf[24];
      auto res = std::to_chars (buf, buf + sizeof buf,
          v.get_int64 ().value_unsafe ());
      out->assign (buf, res.ptr - buf);
      *present = true;
      return true;
    }
    case simdjson::dom::element_type::NULL_VALUE:
      return true;
    default:
      return false;
  }
}

/* True if @v holds no number that json_validate() refuses (rtms-json.h):
 * simdjson keeps integers in [2^63, 2^64) as uint64, where json-glib would
 * wrap them. Nesting is at most kMessageMaxDepth (the parser's limit). */
bool
plain (simdjson::dom::element v)
{
  switch (v.type ()) {
    case simdjson::dom::element_type::UINT64:
      return false;
    case simdjson::dom::element_type::ARRAY:{
      simdjson::dom::array a;
      if (v.get_array ().get (a))
        return false;
      for (simdjson::dom::element e : a)
        if (!plain (e))
          return false;
      return true;
    }
    case simdjson::dom::element_type::OBJECT:{
      simdjson::dom::object o;
      if (v.get_object ().get (o))
        return false;
      for (auto f : o)
        if (!plain (f.value))
          return false;
      return true;
    }
    default:
      return true;
  }
}

/* True if @json holds the six characters \u0000. A msg 14 has no
 * backslash at all (base64, ids, numbers), so this is one memchr() over the
 * message: ~17x faster than memmem() on a 980-byte msg 14
 * (docs/benchmarks.md "Client per-message path"). */
bool
has_u0000 (const char *json, size_t len)
{
  const char *p = json, *end = json + len;
  while ((p = static_cast<const char *> (memchr (p, '\\',
              static_cast<size_t> (end - p))))) {
    if (end - p >= 6 && memcmp (p + 1, "u0000", 5) == 0)
      return true;
    p++;
  }
  return false;
}

struct ThreadParser {
  simdjson::dom::parser parser;
  std::vector<char> padded;    /* input + SIMDJSON_PADDING, reused */
  bool ready = false;
};

} // namespace

/* Returns true and fills out->audio, out->kind, out->msg_type if @json is a
 * valid msg 14 of the usual shape; false otherwise (caller falls back). */
bool
parse_audio_fast (const char *json, size_t len, Message *out)
{
  if (len == 0 || len > 1024 * 1024)
    return false;
  /* json_validate() (the slow path's gate, rtms-json.h) refuses \u0000 in
   * strings, which simdjson accepts: leave any input holding that escape to
   * the slow path (an escaped backslash before "u0000" only costs speed). */
  if (has_u0000 (json, len))
    return false;
  static thread_local ThreadParser tp;
  if (!tp.ready) {
    /* the same depth limit as the slow path: the two paths agree */
    if (tp.parser.allocate (64 * 1024, kMessageMaxDepth))
      return false;
    tp.ready = true;
  }
  if (tp.padded.size () < len + simdjson::SIMDJSON_PADDING)
    tp.padded.resize (len + simdjson::SIMDJSON_PADDING);
  memcpy (tp.padded.data (), json, len);

  simdjson::dom::element root;
  if (tp.parser.parse (tp.padded.data (), len, false).get (root))
    return false;
  simdjson::dom::object top;
  if (root.get_object ().get (top))
    return false;

  bool seen_type = false, seen_content = false;
  simdjson::dom::object content;
  for (auto field : top) {
    if (field.key == "msg_type") {
      int64_t t;
      if (seen_type || field.value.get_int64 ().get (t) || t != MSG_MEDIA_DATA_AUDIO)
        return false;
      seen_type = true;
    } else if (field.key == "content") {
      if (seen_content || field.value.get_object ().get (content))
        return false;
      seen_content = true;
    } else if (!plain (field.value)) {
      return false;
    }
  }
  if (!seen_type || !seen_content)
    return false;

  AudioData &a = out->audio;
  a.channel_id.clear ();
  a.user_id.clear ();
  a.has_user_id = false;
  a.user_name.clear ();
  a.length = -1;
  bool seen_data = false, seen_ts = false, seen_channel = false,
      seen_user = false, seen_name = false, seen_length = false;
  for (auto field : content) {
    const std::string_view k = field.key;
    if (k == "data") {
      std::string_view d;
      if (seen_data || field.value.get_string ().get (d))
        return false;
      a.data_base64.assign (d.data (), d.size ()); /* reuses capacity */
      seen_data = true;
    } else if (k == "timestamp") {
      int64_t ts;
      if (seen_ts || field.value.get_int64 ().get (ts) || ts < 0
          || ts > kMaxAudioTimestampMs)
        return false;
      a.timestamp = ts;
      seen_ts = true;
    } else if (k == "channel_id") {
      bool present = false;
      if (seen_channel || !read_id (field.value, &a.channel_id, &present))
        return false;
      seen_channel = true;
    } else if (k == "user_id") {
      if (seen_user || !read_id (field.value, &a.user_id, &a.has_user_id))
        return false;
      seen_user = true;
    } else if (k == "user_name") {
      if (seen_name)
        return false;
      seen_name = true;
      if (field.value.is_null ())
        continue;
      std::string_view n;
      if (field.value.get_string ().get (n))
        return false;
      a.user_name.assign (n.data (), n.size ());
    } else if (k == "length") {
      if (seen_length)
        return false;
      seen_length = true;
      if (field.value.is_null ())
        continue;
      int64_t l;
      if (field.value.get_int64 ().get (l) || l < 0
          || l > static_cast<int64_t> (kMessageMaxBytes))
        return false;
      a.length = l;
    } else if (!plain (field.value)) {
      return false;
    }
  }
  if (!seen_data || !seen_ts)
    return false;
  out->kind = Message::Kind::AUDIO;
  out->msg_type = MSG_MEDIA_DATA_AUDIO;
  return true;
}

} // namespace detail
} // namespace rtms
