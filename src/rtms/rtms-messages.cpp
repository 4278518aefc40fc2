/* zoomrtms — RTMS protocol v1 messages: JSON encoders and decoders.
 *
 * Wire format: docs/protocol.md §3 (signaling) and §4 (media); tolerances of
 * §11 are listed in rtms-messages.h. Decoding uses one json-glib JsonParser
 * per frame and reads the JsonObject directly; encoding builds compact JSON
 * text by hand (JsonWriter) in the key order of the protocol document's
 * examples, with literal UTF-8.
 */
#include "rtms-messages.h"

#include <charconv>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include "rtms-json-private.h"
#include "rtms-json.h"

namespace rtms {

GQuark
error_quark ()
{
  return g_quark_from_static_string ("rtms-error-quark");
}

/* ---------------------------------------------------------------------- */
/* Products (docs/protocol.md §3.3)                                        */

const char *
product_id_key (Product product)
{
  switch (product) {
    case Product::MEETING:
      return "meeting_uuid";
    case Product::WEBINAR:
      return "webinar_uuid";
    case Product::SESSION:
      return "session_id";
    case Product::CONTACT_CENTER:
      return "engagement_id";
    case Product::PHONE:
      return "call_id";
  }
  return "meeting_uuid";
}

bool
product_from_id_key (const char *key, Product *out)
{
  static const Product all[] = { Product::MEETING, Product::WEBINAR,
    Product::SESSION, Product::CONTACT_CENTER, Product::PHONE };
  if (!key)
    return false;
  for (Product p : all) {
    if (strcmp (key, product_id_key (p)) == 0) {
      if (out)
        *out = p;
      return true;
    }
  }
  return false;
}

bool
AudioParams::operator== (const AudioParams &o) const
{
  return content_type == o.content_type && sample_rate == o.sample_rate
      && channel == o.channel && codec == o.codec && data_opt == o.data_opt
      && send_rate == o.send_rate && frame_size == o.frame_size;
}

bool
TranscriptParams::operator== (const TranscriptParams &o) const
{
  return content_type == o.content_type
      && has_src_language == o.has_src_language
      && (!has_src_language || src_language == o.src_language)
      && has_enable_lid == o.has_enable_lid
      && (!has_enable_lid || enable_lid == o.enable_lid);
}

/* ---------------------------------------------------------------------- */
/* JSON helpers                                                            */

namespace detail {

void
json_append_string (std::string &out, const char *s, gsize len)
{
  static const char hex[] = "0123456789abcdef";
  out.reserve (out.size () + len + 2);
  out += '"';
  const char *run = s; /* start of the pending unescaped run */
  for (gsize i = 0; i < len; i++) {
    unsigned char c = static_cast<unsigned char> (s[i]);
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    out.append (run, s + i - run);
    run = s + i + 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += "\\u00";
        out += hex[c >> 4];
        out += hex[c & 0xf];
        break;
    }
  }
  out.append (run, s + len - run);
  out += '"';
}

namespace {

void
append_int (std::string &out, gint64 v)
{
  char buf[24];
  auto res = std::to_chars (buf, buf + sizeof buf, v);
  out.append (buf, res.ptr - buf);
}

/* Number formatting of ECMAScript Number::toString (what JSON.stringify
 * emits), from the shortest round-tripping decimal digits. */
void
append_double (std::string &out, double v)
{
  if (!std::isfinite (v)) {
    out += "null"; /* JSON.stringify(NaN) */
    return;
  }
  if (v == 0) {
    out += '0';
    return;
  }
  char buf[40];
  for (int prec = 0; prec < 17; prec++) {
    g_snprintf (buf, sizeof buf, "%.*e", prec, v);
    if (g_ascii_strtod (buf, nullptr) == v)
      break;
  }
  /* buf = [-]d[.ddd]e±XX */
  const char *p = buf;
  if (*p == '-') {
    out += '-';
    p++;
  }
  std::string digits;
  for (; *p && *p != 'e'; p++)
    if (*p != '.')
      digits += *p;
  int exp10 = (*p == 'e') ? atoi (p + 1) : 0;
  while (digits.size () > 1 && digits.back () == '0')
    digits.pop_back ();
  int k = static_cast<int> (digits.size ());
  int n = exp10 + 1;
  if (k <= n && n <= 21) {
    out += digits;
    out.append (n - k, '0');
  } else if (0 < n && n <= 21) {
    out.append (digits, 0, n);
    out += '.';
    out.append (digits, n, std::string::npos);
  } else if (-6 < n && n <= 0) {
    out += "0.";
    out.append (-n, '0');
    out += digits;
  } else {
    out += digits[0];
    if (k > 1) {
      out += '.';
      out.append (digits, 1, std::string::npos);
    }
    out += 'e';
    out += (n - 1 < 0) ? '-' : '+';
    append_int (out, std::abs (n - 1));
  }
}

} // namespace

void
json_append_node (std::string &out, JsonNode *node)
{
  if (!node || JSON_NODE_HOLDS_NULL (node)) {
    out += "null";
    return;
  }
  switch (JSON_NODE_TYPE (node)) {
    case JSON_NODE_OBJECT: {
      JsonObject *obj = json_node_get_object (node);
      out += '{';
      bool first = true;
      JsonObjectIter iter;
      const char *name;
      JsonNode *member;
      json_object_iter_init_ordered (&iter, obj);
      while (json_object_iter_next_ordered (&iter, &name, &member)) {
        if (!first)
          out += ',';
        first = false;
        json_append_string (out, name, strlen (name));
        out += ':';
        json_append_node (out, member);
      }
      out += '}';
      break;
    }
    case JSON_NODE_ARRAY: {
      JsonArray *arr = json_node_get_array (node);
      out += '[';
      guint n = json_array_get_length (arr);
      for (guint i = 0; i < n; i++) {
        if (i)
          out += ',';
        json_append_node (out, json_array_get_element (arr, i));
      }
      out += ']';
      break;
    }
    case JSON_NODE_VALUE: {
      GType t = json_node_get_value_type (node);
      if (t == G_TYPE_INT64) {
        append_int (out, json_node_get_int (node));
      } else if (t == G_TYPE_DOUBLE) {
        append_double (out, json_node_get_double (node));
      } else if (t == G_TYPE_BOOLEAN) {
        out += json_node_get_boolean (node) ? "true" : "false";
      } else if (t == G_TYPE_STRING) {
        const char *s = json_node_get_string (node);
        json_append_string (out, s, strlen (s));
      } else {
        out += "null";
      }
      break;
    }
    case JSON_NODE_NULL:
      out += "null";
      break;
  }
}

JsonObject *
parse_object (JsonParser *parser, const char *json, gssize len,
    const char *what, GError **error)
{
  gsize n = json ? (len < 0 ? strlen (json) : static_cast<gsize> (len)) : 0;
  if (n == 0) {
    g_set_error (error, RTMS_ERROR, ERROR_PARSE, "%s: empty input", what);
    return nullptr;
  }
  JsonLimits limits;
  limits.max_bytes = kMessageMaxBytes;
  limits.max_depth = kMessageMaxDepth;
  GError *err = nullptr;
  if (!json_load (parser, json, n, limits, &err)) {
    g_set_error (error, RTMS_ERROR, err->code, "%s: %s", what, err->message);
    g_error_free (err);
    return nullptr;
  }
  JsonNode *root = json_parser_get_root (parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_set_error (error, RTMS_ERROR, ERROR_PARSE, "%s: not a JSON object",
        what);
    return nullptr;
  }
  return json_node_get_object (root);
}

void
JsonWriter::key (const char *k)
{
  if (!first_)
    out_ += ',';
  first_ = false;
  json_append_string (out_, k, strlen (k));
  out_ += ':';
}

void
JsonWriter::value (gint64 v)
{
  append_int (out_, v);
}

void
JsonWriter::value_id (const std::string &id)
{
  /* canonical decimal integer: -?(0|[1-9][0-9]*) that fits gint64 */
  const char *s = id.c_str ();
  const char *d = (*s == '-') ? s + 1 : s;
  bool canonical = *d != '\0' && (d[0] != '0' || d[1] == '\0')
      && id.size () <= 19 + (d != s);
  for (const char *c = d; canonical && *c; c++)
    canonical = g_ascii_isdigit (*c);
  if (canonical && !(d != s && d[0] == '0')) {
    gint64 v;
    auto res = std::from_chars (s, s + id.size (), v);
    if (res.ec == std::errc () && res.ptr == s + id.size ()) {
      value (v);
      return;
    }
  }
  value (id);
}

} // namespace detail

using detail::JsonWriter;

namespace {

/* Typed access to one JSON object with errors that name the field.
 * @where names the message ("msg 14"), @path prefixes field names in
 * messages ("content."). JSON null counts as absent. */
class Fields
{
public:
  Fields (JsonObject *obj, const char *where, const char *path, GError **error)
    : obj_ (obj), where_ (where), path_ (path), error_ (error) {}

  JsonObject *obj () const { return obj_; }

  JsonNode *get (const char *name) const
  {
    JsonNode *n = json_object_get_member (obj_, name);
    if (n && JSON_NODE_HOLDS_NULL (n))
      return nullptr;
    return n;
  }

  bool fail (const char *name, const char *what) const
  {
    g_set_error (error_, RTMS_ERROR, ERROR_FIELD, "%s: field '%s%s' %s",
        where_, path_, name, what);
    return false;
  }

  bool missing (const char *name) const { return fail (name, "is missing"); }

  /* All readers: absent and !required → true, *out untouched, *present
   * false; absent and required → false; wrong type → false. */
  bool int64 (const char *name, bool required, gint64 *out,
      bool *present = nullptr) const
  {
    if (present)
      *present = false;
    JsonNode *n = get (name);
    if (!n)
      return required ? missing (name) : true;
    if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_INT64)
      return fail (name, "must be an integer");
    *out = json_node_get_int (n);
    if (present)
      *present = true;
    return true;
  }

  /* An epoch time (docs/protocol.md §4.4, §4.5: s, ms or µs): an integer in
   * [0, kMaxTimestamp], so no later unit conversion or sample arithmetic
   * can overflow. */
  bool time (const char *name, bool required, gint64 *out,
      bool *present = nullptr, gint64 max = kMaxTimestamp) const
  {
    gint64 v = 0;
    bool has = false;
    if (!int64 (name, required, &v, &has))
      return false;
    if (present)
      *present = has;
    if (!has)
      return true;
    if (v < 0 || v > max)
      return fail (name, "is out of range");
    *out = v;
    return true;
  }

  bool int32 (const char *name, bool required, int *out,
      bool *present = nullptr) const
  {
    gint64 v = 0;
    bool has = false;
    if (!int64 (name, required, &v, &has))
      return false;
    if (present)
      *present = has;
    if (!has)
      return true;
    if (v < INT_MIN || v > INT_MAX)
      return fail (name, "is out of range");
    *out = static_cast<int> (v);
    return true;
  }

  bool string (const char *name, bool required, std::string *out,
      bool *present = nullptr) const
  {
    if (present)
      *present = false;
    JsonNode *n = get (name);
    if (!n)
      return required ? missing (name) : true;
    if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
      return fail (name, "must be a string");
    out->assign (json_node_get_string (n));
    if (present)
      *present = true;
    return true;
  }

  /* An opaque id: a string, or an integer kept as its decimal text
   * (docs/protocol.md §11 #7). */
  bool id (const char *name, bool required, std::string *out,
      bool *present = nullptr) const
  {
    if (present)
      *present = false;
    JsonNode *n = get (name);
    if (!n)
      return required ? missing (name) : true;
    if (JSON_NODE_HOLDS_VALUE (n)) {
      GType t = json_node_get_value_type (n);
      if (t == G_TYPE_STRING) {
        out->assign (json_node_get_string (n));
        if (present)
          *present = true;
        return true;
      }
      if (t == G_TYPE_INT64) {
        char buf[24];
        auto res = std::to_chars (buf, buf + sizeof buf, json_node_get_int (n));
        out->assign (buf, res.ptr - buf);
        if (present)
          *present = true;
        return true;
      }
    }
    return fail (name, "must be a string or an integer");
  }

  bool boolean (const char *name, bool required, bool *out,
      bool *present = nullptr) const
  {
    if (present)
      *present = false;
    JsonNode *n = get (name);
    if (!n)
      return required ? missing (name) : true;
    if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_BOOLEAN)
      return fail (name, "must be a boolean");
    *out = json_node_get_boolean (n);
    if (present)
      *present = true;
    return true;
  }

  bool object (const char *name, bool required, JsonObject **out) const
  {
    *out = nullptr;
    JsonNode *n = get (name);
    if (!n)
      return required ? missing (name) : true;
    if (!JSON_NODE_HOLDS_OBJECT (n))
      return fail (name, "must be an object");
    *out = json_node_get_object (n);
    return true;
  }

  bool array (const char *name, bool required, JsonArray **out) const
  {
    *out = nullptr;
    JsonNode *n = get (name);
    if (!n)
      return required ? missing (name) : true;
    if (!JSON_NODE_HOLDS_ARRAY (n))
      return fail (name, "must be an array");
    *out = json_node_get_array (n);
    return true;
  }

private:
  JsonObject *obj_;
  const char *where_;
  const char *path_;
  GError **error_;
};

const char *const id_keys[] = { "engagement_id", "meeting_uuid",
  "webinar_uuid", "session_id", "call_id" };

/* msg 1 / msg 3 identity (§3.3, §4.2). sequence and protocol_version are
 * optional (ZCC-seed omits sequence; rtms-samples omits both). */
bool
parse_identity (const Fields &f, HandshakeIdentity *id)
{
  if (!f.int32 ("protocol_version", false, &id->protocol_version)
      || !f.int32 ("sequence", false, &id->sequence))
    return false;
  for (const char *key : id_keys) {
    bool has = false;
    if (!f.id (key, false, &id->id_value, &has))
      return false;
    if (has) {
      id->id_key = key;
      break;
    }
  }
  if (id->id_key.empty ())
    return f.fail ("engagement_id", "is missing (or meeting_uuid, "
        "webinar_uuid, session_id, call_id)");
  return f.string ("rtms_stream_id", true, &id->rtms_stream_id)
      && f.string ("signature", true, &id->signature);
}

bool
parse_media_params (JsonObject *obj, const char *where, MediaParams *out,
    GError **error)
{
  Fields f (obj, where, "media_params.", error);
  JsonObject *audio = nullptr, *transcript = nullptr;
  if (!f.object ("audio", false, &audio)
      || !f.object ("transcript", false, &transcript))
    return false;
  if (audio) {
    Fields a (audio, where, "media_params.audio.", error);
    AudioParams p;
    if (!a.int32 ("content_type", false, &p.content_type)
        || !a.int32 ("sample_rate", false, &p.sample_rate)
        || !a.int32 ("channel", false, &p.channel)
        || !a.int32 ("codec", false, &p.codec)
        || !a.int32 ("data_opt", false, &p.data_opt)
        || !a.int32 ("send_rate", false, &p.send_rate)
        || !a.int32 ("frame_size", false, &p.frame_size))
      return false;
    out->audio = p;
  }
  if (transcript) {
    Fields t (transcript, where, "media_params.transcript.", error);
    TranscriptParams p;
    if (!t.int32 ("content_type", false, &p.content_type)
        || !t.int32 ("src_language", false, &p.src_language,
            &p.has_src_language)
        || !t.boolean ("enable_lid", false, &p.enable_lid, &p.has_enable_lid))
      return false;
    out->transcript = p;
  }
  return true;
}

bool
parse_participant_info (JsonObject *obj, const char *path,
    ParticipantInfo *pi, GError **error)
{
  Fields f (obj, "msg 6", path, error);
  return f.id ("channel_id", false, &pi->channel_id)
      && f.string ("participant_mode", false, &pi->participant_mode)
      && f.id ("queue_id", false, &pi->queue_id)
      && f.string ("queue_name", false, &pi->queue_name)
      && f.id ("account_id", false, &pi->account_id)
      && f.id ("division_id", false, &pi->division_id)
      && f.id ("phone_number", false, &pi->phone_number)
      && f.id ("user_id", false, &pi->user_id)
      && f.string ("display_name", false, &pi->display_name);
}

bool
parse_event (JsonObject *root, Message *out, GError **error)
{
  Fields top (root, "msg 6", "", error);
  JsonObject *ev = nullptr;
  if (!top.object ("event", true, &ev))
    return false;
  Fields f (ev, "msg 6", "event.", error);
  EventUpdate &e = out->event;
  bool has_ts = false;
  if (!f.int32 ("event_type", true, &e.event_type)
      || !f.time ("timestamp", false, &e.timestamp, &has_ts))
    return false;
  if (!has_ts && !f.time ("event_ts", false, &e.timestamp))
    return false;

  JsonObject *pi = nullptr;
  if (!f.object ("participant_info", false, &pi))
    return false;
  if (pi) {
    e.participant_info.emplace ();
    if (!parse_participant_info (pi, "event.participant_info.",
            &*e.participant_info, error))
      return false;
  } else {
    if (!f.object ("paticipant_info", false, &pi))
      return false;
    if (pi) {
      e.misspelled_participant_info = true;
      e.participant_info.emplace ();
      if (!parse_participant_info (pi, "event.paticipant_info.",
              &*e.participant_info, error))
        return false;
    }
  }

  if (!f.id ("user_id", false, &e.user_id)
      || !f.string ("user_name", false, &e.user_name))
    return false;

  JsonArray *parts = nullptr;
  if (!f.array ("participants", false, &parts))
    return false;
  if (parts) {
    guint n = json_array_get_length (parts);
    e.participants.reserve (n);
    for (guint i = 0; i < n; i++) {
      JsonNode *node = json_array_get_element (parts, i);
      if (!JSON_NODE_HOLDS_OBJECT (node))
        return f.fail ("participants", "must be an array of objects");
      Fields p (json_node_get_object (node), "msg 6", "event.participants[].",
          error);
      Participant part;
      if (!p.id ("user_id", false, &part.user_id)
          || !p.string ("user_name", false, &part.user_name))
        return false;
      e.participants.push_back (std::move (part));
    }
  }
  detail::json_append_node (e.raw_event_json,
      json_object_get_member (root, "event"));
  return true;
}

bool
parse_audio (JsonObject *root, Message *out, GError **error)
{
  Fields top (root, "msg 14", "", error);
  JsonObject *content = nullptr;
  if (!top.object ("content", true, &content))
    return false;
  Fields f (content, "msg 14", "content.", error);
  AudioData &a = out->audio;
  JsonNode *data = f.get ("data");
  if (!data)
    return f.missing ("data");
  if (!JSON_NODE_HOLDS_VALUE (data)
      || json_node_get_value_type (data) != G_TYPE_STRING)
    return f.fail ("data", "must be a string");
  a.data_base64.assign (json_node_get_string (data)); /* reuses capacity */
  bool has_length = false;
  if (!f.time ("timestamp", true, &a.timestamp, nullptr, kMaxAudioTimestampMs)
      || !f.id ("channel_id", false, &a.channel_id)
      || !f.id ("user_id", false, &a.user_id, &a.has_user_id)
      || !f.string ("user_name", false, &a.user_name)
      || !f.int64 ("length", false, &a.length, &has_length))
    return false;
  if (has_length && (a.length < 0 || a.length > static_cast<gint64> (kMessageMaxBytes)))
    return f.fail ("length", "is out of range");
  return true;
}

bool
parse_transcript (JsonObject *root, Message *out, GError **error)
{
  Fields top (root, "msg 17", "", error);
  JsonObject *content = nullptr;
  if (!top.object ("content", true, &content))
    return false;
  Fields f (content, "msg 17", "content.", error);
  TranscriptData &t = out->transcript;
  if (!f.string ("data", true, &t.text)
      || !f.time ("timestamp", true, &t.timestamp)
      || !f.time ("start_time", false, &t.start_time)
      || !f.time ("end_time", false, &t.end_time)
      || !f.id ("channel_id", false, &t.channel_id)
      || !f.id ("user_id", false, &t.user_id, &t.has_user_id)
      || !f.string ("user_name", false, &t.user_name)
      || !f.int32 ("language", false, &t.language)
      || !f.int32 ("attribute", false, &t.attribute)
      || !f.int64 ("sentence_id", false, &t.sentence_id))
    return false;
  /* docs/protocol.md §4.5 [C]: unit heuristic */
  t.timestamp = normalize_timestamp_ms (t.timestamp);
  t.start_time = normalize_timestamp_ms (t.start_time);
  t.end_time = normalize_timestamp_ms (t.end_time);
  return true;
}

/* Resets @out to a default Message, keeping the capacity of the audio
 * payload string (msg 14 hot path). */
void
reset_message (Message *out)
{
  std::string keep;
  keep.swap (out->audio.data_base64);
  *out = Message ();
  keep.clear ();
  out->audio.data_base64.swap (keep);
}

} // namespace

bool
parse_message (const char *json, gssize len, Message *out, GError **error)
{
  g_return_val_if_fail (out != nullptr, false);
  if (json && detail::parse_audio_fast (json, len < 0 ? strlen (json) :
          (size_t) len, out))
    return true;                /* the hot path: msg 14 */
  reset_message (out);
  out->msg_type = -1;

  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *root = detail::parse_object (parser, json, len, "RTMS message",
      error);
  if (!root)
    return false;

  Fields top (root, "RTMS message", "", error);
  int msg_type = -1;
  bool has_type = false;
  if (!top.int32 ("msg_type", false, &msg_type, &has_type))
    return false;
  out->msg_type = has_type ? msg_type : -1;
  out->kind = Message::Kind::UNKNOWN;
  if (!has_type)
    return true;

  using K = Message::Kind;
  switch (msg_type) {
    case MSG_SIGNALING_HAND_SHAKE_REQ: {
      Fields f (root, "msg 1", "", error);
      bool buffer_data = true, has_buffer = false;
      if (!parse_identity (f, &out->sig_req.id)
          || !f.boolean ("buffer_data", false, &buffer_data, &has_buffer))
        return false;
      if (has_buffer)
        out->sig_req.buffer_data = buffer_data;
      out->kind = K::SIGNALING_HANDSHAKE_REQ;
      return true;
    }
    case MSG_SIGNALING_HAND_SHAKE_RESP: {
      Fields f (root, "msg 2", "", error);
      SignalingHandshakeResp &r = out->sig_resp;
      JsonObject *ms = nullptr;
      if (!f.int32 ("protocol_version", false, &r.protocol_version)
          || !f.int32 ("sequence", false, &r.sequence)
          || !f.int32 ("status_code", true, &r.status_code)
          || !f.string ("reason", false, &r.reason)
          || !f.object ("media_server", false, &ms))
        return false;
      if (ms) {
        Fields m (ms, "msg 2", "media_server.", error);
        JsonObject *urls = nullptr;
        if (!m.object ("server_urls", false, &urls))
          return false;
        if (urls) {
          Fields u (urls, "msg 2", "media_server.server_urls.", error);
          if (!u.string ("audio", false, &r.media_server.audio)
              || !u.string ("video", false, &r.media_server.video)
              || !u.string ("transcript", false, &r.media_server.transcript)
              || !u.string ("all", false, &r.media_server.all))
            return false;
        }
      }
      out->kind = K::SIGNALING_HANDSHAKE_RESP;
      return true;
    }
    case MSG_DATA_HAND_SHAKE_REQ: {
      Fields f (root, "msg 3", "", error);
      JsonObject *mp = nullptr;
      if (!parse_identity (f, &out->data_req_id)
          || !f.int32 ("media_type", true, &out->media_type)
          || !f.boolean ("payload_encryption", false, &out->payload_encryption)
          || !f.object ("media_params", false, &mp))
        return false;
      if (mp && !parse_media_params (mp, "msg 3", &out->media_params, error))
        return false;
      out->kind = K::DATA_HANDSHAKE_REQ;
      return true;
    }
    case MSG_DATA_HAND_SHAKE_RESP: {
      Fields f (root, "msg 4", "", error);
      JsonObject *mp = nullptr;
      bool has_enc = false;
      if (!f.int32 ("status_code", true, &out->status_code)
          || !f.string ("reason", false, &out->reason)
          || !f.boolean ("payload_encrypted", false, &out->payload_encrypted,
              &has_enc))
        return false;
      if (!has_enc && !f.boolean ("payload_encryption", false,
              &out->payload_encrypted))
        return false;
      if (!f.object ("media_params", false, &mp))
        return false;
      if (mp && !parse_media_params (mp, "msg 4", &out->media_params, error))
        return false;
      out->kind = K::DATA_HANDSHAKE_RESP;
      return true;
    }
    case MSG_EVENT_SUBSCRIPTION: {
      Fields f (root, "msg 5", "", error);
      JsonArray *events = nullptr;
      if (!f.array ("events", true, &events))
        return false;
      guint n = json_array_get_length (events);
      for (guint i = 0; i < n; i++) {
        JsonNode *node = json_array_get_element (events, i);
        if (!JSON_NODE_HOLDS_OBJECT (node))
          return f.fail ("events", "must be an array of objects");
        Fields e (json_node_get_object (node), "msg 5", "events[].", error);
        EventSubscription::Item item { 0, true };
        if (!e.int32 ("event_type", true, &item.event_type)
            || !e.boolean ("subscribe", false, &item.subscribe))
          return false;
        out->subscription.events.push_back (item);
      }
      out->kind = K::EVENT_SUBSCRIPTION;
      return true;
    }
    case MSG_EVENT_UPDATE:
      if (!parse_event (root, out, error))
        return false;
      out->kind = K::EVENT_UPDATE;
      return true;
    case MSG_CLIENT_READY_ACK: {
      Fields f (root, "msg 7", "", error);
      if (!f.string ("rtms_stream_id", true, &out->ready.rtms_stream_id))
        return false;
      out->kind = K::CLIENT_READY_ACK;
      return true;
    }
    case MSG_STREAM_STATE_UPDATE: {
      Fields f (root, "msg 8", "", error);
      StreamStateUpdate &s = out->stream_state;
      if (!f.int32 ("state", true, &s.state)
          || !f.int32 ("reason", false, &s.reason)
          || !f.time ("timestamp", false, &s.timestamp)
          || !f.string ("rtms_stream_id", false, &s.rtms_stream_id))
        return false;
      out->kind = K::STREAM_STATE_UPDATE;
      return true;
    }
    case MSG_SESSION_STATE_UPDATE: {
      Fields f (root, "msg 9", "", error);
      SessionStateUpdate &s = out->session_state;
      bool has_stop = false;
      if (!f.int32 ("state", true, &s.state)
          || !f.int32 ("stop_reason", false, &s.stop_reason, &has_stop))
        return false;
      if (!has_stop && !f.int32 ("reason", false, &s.stop_reason))
        return false;
      if (!f.time ("timestamp", false, &s.timestamp)
          || !f.id ("rtms_session_id", false, &s.rtms_session_id))
        return false;
      out->kind = K::SESSION_STATE_UPDATE;
      return true;
    }
    case MSG_SESSION_STATE_REQ: {
      Fields f (root, "msg 10", "", error);
      if (!f.id ("rtms_session_id", true, &out->session_req.rtms_session_id))
        return false;
      out->kind = K::SESSION_STATE_REQ;
      return true;
    }
    case MSG_SESSION_STATE_RESP: {
      Fields f (root, "msg 11", "", error);
      SessionStateResp &s = out->session_resp;
      if (!f.id ("rtms_session_id", false, &s.rtms_session_id)
          || !f.int32 ("state", true, &s.state)
          || !f.time ("timestamp", false, &s.timestamp))
        return false;
      out->kind = K::SESSION_STATE_RESP;
      return true;
    }
    case MSG_KEEP_ALIVE_REQ:
    case MSG_KEEP_ALIVE_RESP: {
      Fields f (root, msg_type == MSG_KEEP_ALIVE_REQ ? "msg 12" : "msg 13", "",
          error);
      if (!f.int64 ("timestamp", true, &out->keep_alive.timestamp))
        return false;
      out->kind = msg_type == MSG_KEEP_ALIVE_REQ ? K::KEEP_ALIVE_REQ
                                                 : K::KEEP_ALIVE_RESP;
      return true;
    }
    case MSG_MEDIA_DATA_AUDIO:
      if (!parse_audio (root, out, error))
        return false;
      out->kind = K::AUDIO;
      return true;
    case MSG_MEDIA_DATA_TRANSCRIPT:
      if (!parse_transcript (root, out, error))
        return false;
      out->kind = K::TRANSCRIPT;
      return true;
    case MSG_STREAM_STATE_REQ: {
      Fields f (root, "msg 19", "", error);
      if (!f.string ("rtms_stream_id", true, &out->stream_req.rtms_stream_id)
          || !f.time ("timestamp", false, &out->stream_req.timestamp))
        return false;
      out->kind = K::STREAM_STATE_REQ;
      return true;
    }
    case MSG_STREAM_STATE_RESP: {
      Fields f (root, "msg 20", "", error);
      StreamStateResp &s = out->stream_resp;
      if (!f.int32 ("state", true, &s.state)
          || !f.string ("rtms_stream_id", false, &s.rtms_stream_id)
          || !f.time ("timestamp", false, &s.timestamp))
        return false;
      out->kind = K::STREAM_STATE_RESP;
      return true;
    }
    case MSG_STREAM_CLOSE_REQ: {
      Fields f (root, "msg 21", "", error);
      if (!f.string ("rtms_stream_id", true, &out->close_req.rtms_stream_id))
        return false;
      out->kind = K::STREAM_CLOSE_REQ;
      return true;
    }
    case MSG_STREAM_CLOSE_RESP: {
      Fields f (root, "msg 22", "", error);
      StreamCloseResp &s = out->close_resp;
      if (!f.string ("rtms_stream_id", false, &s.rtms_stream_id)
          || !f.int32 ("status_code", true, &s.status_code)
          || !f.string ("reason", false, &s.reason))
        return false;
      out->kind = K::STREAM_CLOSE_RESP;
      return true;
    }
    default:
      /* 15, 16, 18, 23–29 and unknown types: ignored (§9.4) */
      return true;
  }
}

/* ---------------------------------------------------------------------- */
/* Encoders                                                                */

namespace {

void
write_identity (JsonWriter &w, const HandshakeIdentity &id)
{
  w.member ("protocol_version", id.protocol_version);
  w.member ("sequence", id.sequence);
  w.member (id.id_key.empty () ? "meeting_uuid" : id.id_key.c_str (),
      id.id_value);
  w.member ("rtms_stream_id", id.rtms_stream_id);
  w.member ("signature", id.signature);
}

void
write_media_params (JsonWriter &w, const MediaParams &p)
{
  if (!p.audio && !p.transcript)
    return;
  w.key ("media_params");
  w.begin_object ();
  if (p.audio) {
    const AudioParams &a = *p.audio;
    w.key ("audio");
    w.begin_object ();
    w.member ("content_type", a.content_type);
    w.member ("sample_rate", a.sample_rate);
    w.member ("channel", a.channel);
    w.member ("codec", a.codec);
    w.member ("data_opt", a.data_opt);
    w.member ("send_rate", a.send_rate);
    if (a.frame_size > 0)
      w.member ("frame_size", a.frame_size);
    w.end_object ();
  }
  if (p.transcript) {
    const TranscriptParams &t = *p.transcript;
    w.key ("transcript");
    w.begin_object ();
    w.member ("content_type", t.content_type);
    if (t.has_src_language)
      w.member ("src_language", t.src_language);
    if (t.has_enable_lid)
      w.member ("enable_lid", t.enable_lid);
    w.end_object ();
  }
  w.end_object ();
}

void
write_participant_info (JsonWriter &w, const ParticipantInfo &pi)
{
  const std::pair<const char *, const std::string *> fields[] = {
    { "channel_id", &pi.channel_id },
    { "participant_mode", &pi.participant_mode },
    { "queue_id", &pi.queue_id },
    { "queue_name", &pi.queue_name },
    { "account_id", &pi.account_id },
    { "division_id", &pi.division_id },
    { "phone_number", &pi.phone_number },
    { "user_id", &pi.user_id },
    { "display_name", &pi.display_name },
  };
  w.begin_object ();
  for (const auto &f : fields)
    if (!f.second->empty ())
      w.member (f.first, *f.second);
  w.end_object ();
}

} // namespace

std::string
encode (const SignalingHandshakeReq &m)
{
  std::string s;
  JsonWriter w (s);
  w.begin_object ();
  w.member ("msg_type", int (MSG_SIGNALING_HAND_SHAKE_REQ));
  write_identity (w, m.id);
  if (m.buffer_data)
    w.member ("buffer_data", *m.buffer_data);
  w.end_object ();
  return s;
}

std::string
encode (const SignalingHandshakeResp &m)
{
  std::string s;
  JsonWriter w (s);
  w.begin_object ();
  w.member ("msg_type", int (MSG_SIGNALING_HAND_SHAKE_RESP));
  w.member ("protocol_version", m.protocol_version);
  w.member ("sequence", m.sequence);
  w.member ("status_code", m.status_code);
  w.member ("reason", m.reason);
  const MediaServerUrls &u = m.media_server;
  if (!u.audio.empty () || !u.video.empty () || !u.transcript.empty ()
      || !u.all.empty ()) {
    w.key ("media_server");
    w.begin_object ();
    w.key ("server_urls");
    w.begin_object ();
    if (!u.audio.empty ())
      w.member ("audio", u.audio);
    if (!u.video.empty ())
      w.member ("video", u.video);
    if (!u.transcript.empty ())
      w.member ("transcript", u.transcript);
    if (!u.all.empty ())
      w.member ("all", u.all);
    w.end_object ();
    w.end_object ();
  }
  w.end_object ();
  return s;
}

std::string
encode (const EventSubscription &m)
{
  std::string s;
  JsonWriter w (s);
  w.begin_object ();
  w.member ("msg_type", int (MSG_EVENT_SUBSCRIPTION));
  w.key ("events");
  w.begin_array ();
  for (const auto &e : m.events) {
    w.item ();
    w.begin_object ();
    w.member ("event_type", e.event_type);
    w.member ("subscribe", e.subscribe);
    w.end_object ();
  }
  w.end_array ();
  w.end_object ();
  return s;
}

std::string
encode_data_handshake_req (const HandshakeIdentity &id, int media_type,
    bool payload_encryption, const MediaParams &params)
{
  std::string s;
  JsonWriter w (s);
  w.begin_object ();
  w.member ("msg_type", int (MSG_DATA_HAND_SHAKE_REQ));
  write_identity (w, id);
  w.member ("media_type", media_type);
  w.member ("payload_encryption", payload_encryption);
  write_media_params (w, params);
  w.end_object ();
  return s;
}

std::string
encode_data_handshake_resp (int status_code, const std::string &reason,
    bool payload_encrypted, const MediaParams &params)
{
  std::string s;
  JsonWriter w (s);
  w.begin_object ();
  w.member ("msg_type", int (MSG_DATA_HAND_SHAKE_RESP));
  w.member ("protocol_version", 1);
  w.member ("status_code", status_code);
  w.member ("reason", reason);
  w.member ("sequence", 0);
  w.member ("payload_encrypted", payload_encrypted);
  write_media_params (w, params);
  w.end_object ();
  return s;
}

std::string
encode (const EventUpdate &m)
{
  std::string s;
  JsonWriter w (s);
  w.begin_object ();
  w.member ("msg_type", int (MSG_EVENT_UPDATE));
  w.key ("event");
  w.begin_object ();
  w.member ("event_type", m.event_type);
  if (m.participant_info) {
    /* ZCC shape (§3.6.2) */
    w.member ("event_ts", m.timestamp);
    w.key (m.misspelled_participant_info ? "paticipant_info"
                                         : "participant_info");
    write_participant_info (w, *m.participant_info);
  } else {
    w.member ("timestamp", m.timestamp);
  }
  if (!m.user_id.empty ()) {
    w.key ("user_id");
    w.value_id (m.user_id);
  }
  if (!m.user_name.empty ())
    w.member ("user_name", m.user_name);
  if (!m.participants.empty ()) {
    w.key ("participants");
    w.begin_array ();
    for (const auto &p : m.participants) {
      w.item ();
      w.begin_object ();
      w.key ("user_id");
      w.value_id (p.user_id);
      if (!p.user_name.empty ())
        w.member ("user_name", p.user_name);
      w.end_object ();
    }
    w.end_array ();
  }
  w.end_object ();
  w.end_object ();
  return s;
}

std::string
encode (const ClientReadyAck &m)
{
  std::string s;
  JsonWriter w (s);
  w.begin_object ();
  w.member ("msg_type", int (MSG_CLIENT_READY_ACK));
  w.member ("rtms_stream_id", m.rtms_stream_id);
  w.end_object ();
  return s;
}

std::string
encode (const StreamStateUpdate &m)
{
  std::string s;
  JsonWriter w (s);
  w.begin_object ();
  w.member ("msg_type", int (MSG_STREAM_STATE_UPDATE));
  w.member ("state", m.state);
  w.member ("reason", m.reason);
  w.member ("timestamp", m.timestamp);
  if (!m.rtms_stream_id.empty ())
    w.member ("rtms_stream_id", m.rtms_stream_id);
  w.end_object ();
  return s;
}

std::string
encode (const SessionStateUpdate &m)
{
  std::string s;
  JsonWriter w (s);
  w.begin_object ();
  w.member ("msg_type", int (MSG_SESSION_STATE_UPDATE));
  w.member ("state", m.state);
  w.member ("stop_reason", m.stop_reason);
  w.member ("timestamp", m.timestamp);
  if (!m.rtms_session_id.empty ())
    w.member ("rtms_session_id", m.rtms_session_id);
  w.end_object ();
  return s;
}

std::string
encode (const SessionStateReq &m)
{
  std::string s;
  JsonWriter w (s);
  w.begin_object ();
  w.member ("msg_type", int (MSG_SESSION_STATE_REQ));
  w.member ("rtms_session_id", m.rtms_session_id);
  w.end_object ();
  return s;
}

std::string
encode (const SessionStateResp &m)
{
  std::string s;
  JsonWriter w (s);
  w.begin_object ();
  w.member ("msg_type", int (MSG_SESSION_STATE_RESP));
  w.member ("rtms_session_id", m.rtms_session_id);
  w.member ("state", m.state);
  w.member ("timestamp", m.timestamp);
  w.end_object ();
  return s;
}

std::string
encode_keep_alive (int msg_type, gint64 timestamp)
{
  std::string s;
  JsonWriter w (s);
  w.begin_object ();
  w.member ("msg_type", msg_type);
  w.member ("timestamp", timestamp);
  w.end_object ();
  return s;
}

std::string
encode (const AudioData &m)
{
  std::string s;
  s.reserve (m.data_base64.size () + 128);
  JsonWriter w (s);
  w.begin_object ();
  w.member ("msg_type", int (MSG_MEDIA_DATA_AUDIO));
  w.key ("content");
  w.begin_object ();
  if (!m.channel_id.empty ())
    w.member ("channel_id", m.channel_id);
  if (m.has_user_id) {
    w.key ("user_id");
    w.value_id (m.user_id);
  }
  if (!m.user_name.empty ())
    w.member ("user_name", m.user_name);
  w.member ("data", m.data_base64);
  w.member ("timestamp", m.timestamp);
  if (m.length >= 0)
    w.member ("length", m.length);
  w.end_object ();
  w.end_object ();
  return s;
}

std::string
encode (const TranscriptData &m)
{
  std::string s;
  JsonWriter w (s);
  w.begin_object ();
  w.member ("msg_type", int (MSG_MEDIA_DATA_TRANSCRIPT));
  w.key ("content");
  w.begin_object ();
  bool zcc = !m.channel_id.empty ();
  if (zcc)
    w.member ("channel_id", m.channel_id);
  if (m.has_user_id) {
    w.key ("user_id");
    w.value_id (m.user_id);
  }
  if (!m.user_name.empty ())
    w.member ("user_name", m.user_name);
  if (zcc) {
    /* ZCC order (§4.5): attribute, language before data */
    w.member ("attribute", m.attribute);
    if (m.language >= 0)
      w.member ("language", m.language);
  }
  w.member ("data", m.text);
  w.member ("timestamp", m.timestamp);
  if (m.start_time)
    w.member ("start_time", m.start_time);
  if (m.end_time)
    w.member ("end_time", m.end_time);
  if (!zcc) {
    if (m.language >= 0)
      w.member ("language", m.language);
    if (m.attribute)
      w.member ("attribute", m.attribute);
  }
  if (m.sentence_id >= 0)
    w.member ("sentence_id", m.sentence_id);
  w.end_object ();
  w.end_object ();
  return s;
}

std::string
encode (const StreamStateReq &m)
{
  std::string s;
  JsonWriter w (s);
  w.begin_object ();
  w.member ("msg_type", int (MSG_STREAM_STATE_REQ));
  w.member ("rtms_stream_id", m.rtms_stream_id);
  if (m.timestamp)
    w.member ("timestamp", m.timestamp);
  w.end_object ();
  return s;
}

std::string
encode (const StreamStateResp &m)
{
  std::string s;
  JsonWriter w (s);
  w.begin_object ();
  w.member ("msg_type", int (MSG_STREAM_STATE_RESP));
  w.member ("state", m.state);
  w.member ("rtms_stream_id", m.rtms_stream_id);
  w.member ("timestamp", m.timestamp);
  w.end_object ();
  return s;
}

std::string
encode (const StreamCloseReq &m)
{
  std::string s;
  JsonWriter w (s);
  w.begin_object ();
  w.member ("msg_type", int (MSG_STREAM_CLOSE_REQ));
  w.member ("rtms_stream_id", m.rtms_stream_id);
  w.end_object ();
  return s;
}

std::string
encode (const StreamCloseResp &m)
{
  std::string s;
  JsonWriter w (s);
  w.begin_object ();
  w.member ("msg_type", int (MSG_STREAM_CLOSE_RESP));
  w.member ("rtms_stream_id", m.rtms_stream_id);
  w.member ("status_code", m.status_code);
  w.member ("reason", m.reason);
  w.end_object ();
  return s;
}

/* ---------------------------------------------------------------------- */
/* base64, timestamps, URLs                                                */

namespace {

/* RFC 4648 standard alphabet; 0xff = not in the alphabet. */
struct Base64Table
{
  guint8 v[256];
  constexpr Base64Table () : v ()
  {
    for (int i = 0; i < 256; i++)
      v[i] = 0xff;
    const char *alpha =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; i++)
      v[static_cast<unsigned char> (alpha[i])] = static_cast<guint8> (i);
  }
};

constexpr Base64Table b64_table;

bool
base64_error (GError **error, const char *what, gsize pos)
{
  g_set_error (error, RTMS_ERROR, ERROR_BASE64,
      "audio data is not valid base64: %s at offset %" G_GSIZE_FORMAT, what,
      pos);
  return false;
}

} // namespace

namespace {

#if defined(__x86_64__) && defined(__GNUC__)
#define RTMS_BASE64_AVX2 1

/* AVX2: 32 characters → 24 bytes per step, the alphabet checked with two
 * nibble lookups (the design of W. Muła and D. Lemire, "Faster Base64
 * Encoding and Decoding using AVX2 Instructions", ACM TOW 2018). Decodes
 * whole 32-character blocks from @in while at least 48 characters are
 * left (so the 32-byte store stays inside @o's 24 + 8 bytes of room and the
 * final, possibly padded, quantum is never in a block) and stops at the
 * first block holding a character outside the alphabet: the scalar loop
 * then decodes the rest and names the offending offset. Returns the number
 * of characters decoded (a multiple of 32); @o receives 3/4 as many bytes. */
__attribute__ ((target ("avx2"))) gsize
decode_base64_avx2 (const unsigned char *in, gsize len, guint8 *o)
{
  /* per low nibble (lo) and high nibble (hi) of a character: a bit set in
   * both means "not in the alphabet" */
  const __m256i lut_lo = _mm256_setr_epi8 (
      0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
      0x11, 0x11, 0x13, 0x1a, 0x1b, 0x1b, 0x1b, 0x1a,
      0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
      0x11, 0x11, 0x13, 0x1a, 0x1b, 0x1b, 0x1b, 0x1a);
  const __m256i lut_hi = _mm256_setr_epi8 (
      0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08,
      0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10,
      0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08,
      0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10);
  /* what to add to a character to get its value, by high nibble ('/' by
   * index 1: its compare mask of -1 is added to its high nibble 2) */
  const __m256i lut_roll = _mm256_setr_epi8 (
      0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0,
      0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0);
  const __m256i mask_2f = _mm256_set1_epi8 (0x2f);
  /* 4 × 6 bits → 24 bits per 32-bit lane, then the 3 bytes of each lane
   * in order, 12 per 128-bit half, the halves joined */
  const __m256i merge_ab_bc = _mm256_set1_epi32 (0x01400140);
  const __m256i merge_abcd = _mm256_set1_epi32 (0x00011000);
  const __m256i pack = _mm256_setr_epi8 (
      2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1,
      2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1);
  const __m256i join = _mm256_setr_epi32 (0, 1, 2, 4, 5, 6, -1, -1);
  gsize done = 0;
  while (len - done >= 48) {
    __m256i str = _mm256_loadu_si256 ((const __m256i *) (in + done));
    const __m256i hi_nibbles =
        _mm256_and_si256 (_mm256_srli_epi32 (str, 4), mask_2f);
    const __m256i lo_nibbles = _mm256_and_si256 (str, mask_2f);
    const __m256i hi = _mm256_shuffle_epi8 (lut_hi, hi_nibbles);
    const __m256i lo = _mm256_shuffle_epi8 (lut_lo, lo_nibbles);
    if (!_mm256_testz_si256 (lo, hi))
      break;
    const __m256i eq_2f = _mm256_cmpeq_epi8 (str, mask_2f);
    const __m256i roll = _mm256_shuffle_epi8 (lut_roll,
        _mm256_add_epi8 (eq_2f, hi_nibbles));
    str = _mm256_add_epi8 (str, roll);
    str = _mm256_maddubs_epi16 (str, merge_ab_bc);
    str = _mm256_madd_epi16 (str, merge_abcd);
    str = _mm256_shuffle_epi8 (str, pack);
    str = _mm256_permutevar8x32_epi32 (str, join);
    _mm256_storeu_si256 ((__m256i *) (o + done / 4 * 3), str);
    done += 32;
  }
  return done;
}

bool
cpu_has_avx2 ()
{
  static const bool has = [] {
    const char *v = g_getenv ("ZOOMRTMS_BASE64_SIMD");
    if (v && !strcmp (v, "0"))
      return false;
    __builtin_cpu_init ();
    return __builtin_cpu_supports ("avx2") != 0;
  } ();
  return has;
}
#endif

} // namespace

namespace detail {

bool
decode_audio_payload_with (const char *b64, gsize len,
    std::vector<guint8> *out, GError **error, bool simd)
{
  g_return_val_if_fail (out != nullptr, false);
  if (len == 0) {
    out->clear ();
    return true;
  }
  if (!b64)
    return base64_error (error, "no data", 0);
  if (len % 4 != 0) {
    g_set_error (error, RTMS_ERROR, ERROR_BASE64,
        "audio data is not valid base64: length %" G_GSIZE_FORMAT
        " is not a multiple of 4", len);
    return false;
  }
  const unsigned char *in = reinterpret_cast<const unsigned char *> (b64);
  gsize pad = 0;
  if (in[len - 1] == '=') {
    pad = 1;
    if (in[len - 2] == '=')
      pad = 2;
  }
  gsize full = len / 4 - (pad ? 1 : 0); /* quads without padding */
  out->resize (len / 4 * 3 - pad);
  guint8 *o = out->data ();
  const guint8 *t = b64_table.v;

  gsize q = 0;
#ifdef RTMS_BASE64_AVX2
  if (simd && cpu_has_avx2 ())
    q = decode_base64_avx2 (in, len, o) / 4;
  o += q * 3;
#else
  (void) simd;
#endif
  for (; q < full; q++) {
    const unsigned char *p = in + q * 4;
    guint8 a = t[p[0]], b = t[p[1]], c = t[p[2]], d = t[p[3]];
    if ((a | b | c | d) & 0x80) {
      for (int k = 0; k < 4; k++)
        if (t[p[k]] == 0xff)
          return base64_error (error,
              p[k] == '=' ? "padding before the end" : "character outside "
              "the alphabet", q * 4 + k);
    }
    guint32 v = (guint32 (a) << 18) | (guint32 (b) << 12) | (guint32 (c) << 6)
        | d;
    o[0] = guint8 (v >> 16);
    o[1] = guint8 (v >> 8);
    o[2] = guint8 (v);
    o += 3;
  }
  if (pad) {
    const unsigned char *p = in + len - 4;
    gsize base = len - 4;
    int data_chars = 4 - static_cast<int> (pad);
    guint32 v = 0;
    for (int k = 0; k < data_chars; k++) {
      guint8 x = t[p[k]];
      if (x == 0xff)
        return base64_error (error,
            p[k] == '=' ? "bad padding" : "character outside the alphabet",
            base + k);
      v |= guint32 (x) << (18 - 6 * k);
    }
    o[0] = guint8 (v >> 16);
    if (pad == 1)
      o[1] = guint8 (v >> 8);
  }
  return true;
}

} // namespace detail

bool
decode_audio_payload (const char *b64, gsize len, std::vector<guint8> *out,
    GError **error)
{
  return detail::decode_audio_payload_with (b64, len, out, error, true);
}

gint64
normalize_timestamp_ms (gint64 value)
{
  /* docs/protocol.md §4.5: > 10^14 µs, > 10^11 ms, else seconds; a
   * negative value (never decoded, see kMaxTimestamp) is 0 */
  if (value <= 0)
    return 0;
  if (value > G_GINT64_CONSTANT (100000000000000))
    return value / 1000;
  if (value > G_GINT64_CONSTANT (100000000000))
    return value;
  return value * 1000;
}

namespace {

std::string
trim (const std::string &s)
{
  gsize b = 0, e = s.size ();
  while (b < e && g_ascii_isspace (s[b]))
    b++;
  while (e > b && g_ascii_isspace (s[e - 1]))
    e--;
  return s.substr (b, e - b);
}

bool
has_prefix_ci (const std::string &s, const char *prefix)
{
  return g_ascii_strncasecmp (s.c_str (), prefix, strlen (prefix)) == 0;
}

/* First wss:// item of a comma-separated list, else the first ws:// one. */
std::string
select_from_list (const std::string &list)
{
  std::string first_ws;
  gsize start = 0;
  while (start <= list.size ()) {
    gsize comma = list.find (',', start);
    if (comma == std::string::npos)
      comma = list.size ();
    std::string item = trim (list.substr (start, comma - start));
    if (has_prefix_ci (item, "wss://"))
      return item;
    if (first_ws.empty () && has_prefix_ci (item, "ws://"))
      first_ws = item;
    start = comma + 1;
  }
  return first_ws;
}

} // namespace

std::string
select_signaling_url (const std::string &server_urls)
{
  std::string s = trim (server_urls);
  if (s.empty ())
    return std::string ();
  if (s[0] != '{' && s[0] != '"')
    return select_from_list (s);

  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonLimits limits;
  limits.max_bytes = kMessageMaxBytes;
  limits.max_depth = kMessageMaxDepth;
  JsonNode *root = json_load (parser, s.data (), s.size (), limits, nullptr);
  if (!root)
    return std::string ();
  if (JSON_NODE_HOLDS_VALUE (root)
      && json_node_get_value_type (root) == G_TYPE_STRING)
    return select_from_list (json_node_get_string (root));
  if (!JSON_NODE_HOLDS_OBJECT (root))
    return std::string ();

  /* object form (§2.2): `all`, else any ws* value (wss:// first) */
  JsonObject *obj = json_node_get_object (root);
  JsonNode *all = json_object_get_member (obj, "all");
  if (all && JSON_NODE_HOLDS_VALUE (all)
      && json_node_get_value_type (all) == G_TYPE_STRING) {
    std::string url = select_from_list (json_node_get_string (all));
    if (!url.empty ())
      return url;
  }
  std::string first_ws;
  JsonObjectIter iter;
  const char *name;
  JsonNode *member;
  json_object_iter_init_ordered (&iter, obj);
  while (json_object_iter_next_ordered (&iter, &name, &member)) {
    if (!JSON_NODE_HOLDS_VALUE (member)
        || json_node_get_value_type (member) != G_TYPE_STRING)
      continue;
    std::string url = select_from_list (json_node_get_string (member));
    if (has_prefix_ci (url, "wss://"))
      return url;
    if (first_ws.empty ())
      first_ws = url;
  }
  return first_ws;
}

std::vector<MediaConnectionPlan>
plan_media_connections (const MediaServerUrls &urls, bool want_audio,
    bool want_transcript)
{
  std::vector<MediaConnectionPlan> plan;
  if (!want_audio && !want_transcript)
    return plan;
  if (!urls.all.empty ()) {
    plan.push_back ({ urls.all, MEDIA_ALL });
    return plan;
  }
  if (want_audio && !urls.audio.empty ())
    plan.push_back ({ urls.audio, MEDIA_AUDIO });
  if (want_transcript && !urls.transcript.empty ())
    plan.push_back ({ urls.transcript, MEDIA_TRANSCRIPT });
  return plan;
}

} // namespace rtms
