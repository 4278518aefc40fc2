/* zoomrtms — private JSON helpers shared by rtms-messages.cpp and
 * rtms-auth.cpp. Not part of the library API.
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include <cstring>
#include <string>
#include <vector>

namespace rtms {
struct Message;

namespace detail {

/* Appends @s (@len bytes of UTF-8) as a JSON string literal, escaped the way
 * JavaScript's JSON.stringify does: `"` `\` and control characters only;
 * non-ASCII stays literal UTF-8. */
void json_append_string (std::string &out, const char *s, gsize len);
inline void
json_append_string (std::string &out, const std::string &s)
{
  json_append_string (out, s.data (), s.size ());
}

/* Appends @node compactly (no whitespace), object keys in document order,
 * numbers and strings formatted like JSON.stringify (docs/protocol.md §2.5,
 * §11 #18). */
void json_append_node (std::string &out, JsonNode *node);

/* Parses @json (@len bytes, -1 = NUL-terminated) and returns its root object
 * (owned by @parser). Errors: RTMS_ERROR_PARSE for empty input, invalid JSON,
 * or a root that is not an object; @what names the input in the message. */
JsonObject *parse_object (JsonParser *parser, const char *json, gssize len,
    const char *what, GError **error);

/* msg 14 fast path (rtms-audio-fast.cpp, simdjson): true and @out filled for
 * a valid msg 14 of the usual shape; false for anything else, which the
 * json-glib path then parses or rejects with the field named. */
bool parse_audio_fast (const char *json, size_t len, rtms::Message *out);

/* decode_audio_payload() (rtms-messages.h) with the SIMD path (AVX2 where
 * the CPU has it, $ZOOMRTMS_BASE64_SIMD=0 turns it off) on or off: the two
 * give the same bytes and the same errors (tests/unit, bench/base64-decode). */
bool decode_audio_payload_with (const char *b64, gsize len,
    std::vector<guint8> *out, GError **error, bool simd);

/* Minimal compact JSON writer (keys in call order). */
class JsonWriter
{
public:
  explicit JsonWriter (std::string &out) : out_ (out) {}

  void begin_object () { out_ += '{'; first_ = true; }
  void end_object () { out_ += '}'; first_ = false; }
  void begin_array () { out_ += '['; first_ = true; }
  void end_array () { out_ += ']'; first_ = false; }
  /* Separator for the next array element. */
  void item () { if (!first_) out_ += ','; first_ = false; }
  void key (const char *k);

  void value (const std::string &s) { json_append_string (out_, s); }
  void value_str (const char *s) { json_append_string (out_, s, strlen (s)); }
  void value (const char *s) { value_str (s); }
  void value (gint64 v);
  void value (int v) { value (static_cast<gint64> (v)); }
  void value (bool v) { out_ += v ? "true" : "false"; }
  /* Writes @id as a JSON integer when it is a canonical decimal integer
   * (meeting user ids are integers on the wire, §4.4), else as a string. */
  void value_id (const std::string &id);
  void raw (const std::string &json) { out_ += json; }

  template <typename T>
  void member (const char *k, const T &v) { key (k); value (v); }
  void member_str (const char *k, const char *v) { key (k); value_str (v); }

private:
  std::string &out_;
  bool first_ = true;
};

} // namespace detail
} // namespace rtms
