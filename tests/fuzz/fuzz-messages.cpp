/* zoomrtms — libFuzzer target: rtms::parse_message, differential between the
 * msg 14 fast path (simdjson, rtms-audio-fast.cpp) and the json-glib path
 * (rtms-messages.cpp), docs/protocol.md §3–§4.
 *
 * How each path is reached without touching the library: this target is
 * linked against its own copy of rtms-messages.cpp and rtms-types.cpp, and of
 * rtms-audio-fast.cpp compiled with -Dparse_audio_fast=parse_audio_fast_real
 * (tests/fuzz/meson.build). parse_message() calls
 * rtms::detail::parse_audio_fast(), which is defined below: it forwards to the
 * real fast path, or returns false so that parse_message() runs the json-glib
 * path alone. The production dispatch is "fast path first, json-glib if it
 * declines", which is what Mode::PRODUCTION does.
 *
 * Invariants, for every input:
 *  1. The fast path never accepts what json-glib rejects, and when it
 *     accepts, json-glib decodes the same msg 14: every AudioData field equal
 *     (channel_id, user_id, has_user_id, user_name, data_base64, timestamp,
 *     length).
 *  2. parse_message() as shipped gives the fast result when the fast path
 *     accepts, else exactly the json-glib result (success, kind, msg_type,
 *     error domain and code).
 *  3. A failure sets an RTMS_ERROR PARSE or FIELD error; a success sets none.
 *  4. A msg 14 json-glib accepts, written back with rtms::encode(), is taken
 *     by the fast path (our own encoder's output is the "usual shape") and
 *     decodes to the same fields on both paths — unless a field holds a NUL
 *     byte, which the encoder writes as \u0000 (see below).
 *  5. Decoding never depends on what the Message held before (the library
 *     reuses one Message per socket): decoding into a Message that holds
 *     another msg 14 gives the same fields.
 *
 * Known, accepted asymmetry: the fast path declines duplicate keys, inputs
 * over 1 MiB and numbers outside int64, which json-glib may accept; then
 * json-glib's answer is the one used, and invariant 2 checks that.
 */
#include <glib.h>

#include <string>

#include "fuzz-util.h"
#include "rtms-json-private.h"
#include "rtms-messages.h"

namespace rtms {
namespace detail {
bool parse_audio_fast_real (const char *json, size_t len, rtms::Message *out);
} // namespace detail
} // namespace rtms

namespace {

enum class Mode { PRODUCTION, SLOW_ONLY };
Mode g_mode = Mode::PRODUCTION;

struct Result {
  bool ok = false;
  GQuark domain = 0;
  int code = 0;
  std::string error;
};

Result
decode (Mode mode, const char *json, size_t len, rtms::Message *out)
{
  g_mode = mode;
  GError *error = nullptr;
  Result r;
  r.ok = rtms::parse_message (json, static_cast<gssize> (len), out, &error);
  g_mode = Mode::PRODUCTION;
  if (r.ok) {
    FUZZ_CHECK (error == nullptr, "parse_message succeeded with an error set");
  } else {
    FUZZ_CHECK (error != nullptr, "parse_message failed without an error");
    FUZZ_CHECK (error->domain == RTMS_ERROR && (error->code == rtms::ERROR_PARSE
        || error->code == rtms::ERROR_FIELD), "unexpected error %s/%d: %s",
        g_quark_to_string (error->domain), error->code, error->message);
    r.domain = error->domain;
    r.code = error->code;
    r.error = error->message;
    g_error_free (error);
  }
  return r;
}

void
check_same_audio (const rtms::AudioData &a, const rtms::AudioData &b,
    const char *what, const std::string &input)
{
  const char *in = nullptr;
  std::string esc = fuzz_escape (input);
  in = esc.c_str ();
  FUZZ_CHECK (a.channel_id == b.channel_id, "%s: channel_id \"%s\" vs \"%s\" for %s",
      what, fuzz_escape (a.channel_id).c_str (), fuzz_escape (b.channel_id).c_str (), in);
  FUZZ_CHECK (a.has_user_id == b.has_user_id, "%s: has_user_id for %s", what, in);
  FUZZ_CHECK (a.user_id == b.user_id, "%s: user_id \"%s\" vs \"%s\" for %s", what,
      fuzz_escape (a.user_id).c_str (), fuzz_escape (b.user_id).c_str (), in);
  FUZZ_CHECK (a.user_name == b.user_name, "%s: user_name \"%s\" vs \"%s\" for %s",
      what, fuzz_escape (a.user_name).c_str (), fuzz_escape (b.user_name).c_str (), in);
  FUZZ_CHECK (a.data_base64 == b.data_base64, "%s: data \"%s\" vs \"%s\" for %s",
      what, fuzz_escape (a.data_base64).c_str (), fuzz_escape (b.data_base64).c_str (), in);
  FUZZ_CHECK (a.timestamp == b.timestamp, "%s: timestamp %" G_GINT64_FORMAT
      " vs %" G_GINT64_FORMAT " for %s", what, a.timestamp, b.timestamp, in);
  FUZZ_CHECK (a.length == b.length, "%s: length %" G_GINT64_FORMAT " vs %"
      G_GINT64_FORMAT " for %s", what, a.length, b.length, in);
}

bool
has_nul (const rtms::AudioData &a)
{
  auto nul = [] (const std::string &s) { return s.find ('\0') != std::string::npos; };
  return nul (a.channel_id) || nul (a.user_id) || nul (a.user_name)
      || nul (a.data_base64);
}

} // namespace

namespace rtms {
namespace detail {

/* parse_message()'s fast path, switchable (see the top of the file). */
bool
parse_audio_fast (const char *json, size_t len, rtms::Message *out)
{
  if (g_mode == Mode::SLOW_ONLY)
    return false;
  return parse_audio_fast_real (json, len, out);
}

} // namespace detail
} // namespace rtms

extern "C" int
LLVMFuzzerInitialize (int *, char ***)
{
  fuzz_fatal_criticals ();
  return 0;
}

extern "C" int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const char *json = reinterpret_cast<const char *> (data);
  const std::string input (json, size);

  rtms::Message fast;
  bool fast_ok = rtms::detail::parse_audio_fast_real (json, size, &fast);

  rtms::Message slow;
  Result s = decode (Mode::SLOW_ONLY, json, size, &slow);

  /* known (tests/fuzz/known-failing.txt): the fast path does not apply
   * json_validate's number rules to fields it ignores */
  if (fast_ok && !s.ok && fuzz_skip_known ()
      && (s.error.find ("number out of range") != std::string::npos
          || s.error.find ("number too long") != std::string::npos))
    return 0;

  /* 1. the fast path agrees with json-glib */
  if (fast_ok) {
    FUZZ_CHECK (fast.kind == rtms::Message::Kind::AUDIO && fast.msg_type == 14,
        "fast path accepted a non-audio message");
    FUZZ_CHECK (s.ok, "fast path accepts what json-glib rejects (%s): %s",
        s.error.c_str (), fuzz_escape (input).c_str ());
    FUZZ_CHECK (slow.kind == rtms::Message::Kind::AUDIO,
        "fast path accepts a msg 14 json-glib decodes as msg_type %d: %s",
        slow.msg_type, fuzz_escape (input).c_str ());
    check_same_audio (fast.audio, slow.audio, "fast vs json-glib", input);
  }

  /* 2. the shipped dispatch */
  rtms::Message prod;
  Result p = decode (Mode::PRODUCTION, json, size, &prod);
  if (fast_ok) {
    FUZZ_CHECK (p.ok && prod.kind == rtms::Message::Kind::AUDIO,
        "parse_message does not take the fast path's answer");
    check_same_audio (prod.audio, fast.audio, "parse_message vs fast", input);
  } else {
    FUZZ_CHECK (p.ok == s.ok && p.code == s.code && p.error == s.error,
        "parse_message (%d, %s) differs from json-glib (%d, %s)", p.ok,
        p.error.c_str (), s.ok, s.error.c_str ());
    if (p.ok) {
      FUZZ_CHECK (prod.kind == slow.kind && prod.msg_type == slow.msg_type,
          "kind/msg_type differ");
      if (prod.kind == rtms::Message::Kind::AUDIO)
        check_same_audio (prod.audio, slow.audio, "parse_message vs json-glib", input);
    }
  }

  /* 5. a Message reused from an earlier msg 14 */
  {
    rtms::Message reused;
    static const char prev[] = "{\"msg_type\":14,\"content\":{\"user_id\":7,"
        "\"user_name\":\"prev\",\"channel_id\":\"c\",\"data\":\"AAAAAAAAAAAA\","
        "\"timestamp\":5,\"length\":9}}";
    FUZZ_CHECK (decode (Mode::PRODUCTION, prev, sizeof prev - 1, &reused).ok,
        "fixed msg 14 rejected");
    Result r = decode (Mode::PRODUCTION, json, size, &reused);
    FUZZ_CHECK (r.ok == p.ok && r.error == p.error, "result depends on the "
        "Message decoded into");
    if (r.ok) {
      FUZZ_CHECK (reused.kind == prod.kind && reused.msg_type == prod.msg_type,
          "kind depends on the Message decoded into");
      if (reused.kind == rtms::Message::Kind::AUDIO)
        check_same_audio (reused.audio, prod.audio, "reused Message", input);
    }
  }

  /* 4. our own encoding of an accepted msg 14 takes the fast path */
  if (s.ok && slow.kind == rtms::Message::Kind::AUDIO && !has_nul (slow.audio)) {
    std::string enc = rtms::encode (slow.audio);
    rtms::Message f2, s2;
    /* documented in rtms-audio-fast.cpp: the fast path leaves any frame
     * holding the text \u0000 (even after an escaped backslash) to json-glib */
    bool nul_text = enc.find ("\\u0000") != std::string::npos;
    bool f2_ok = rtms::detail::parse_audio_fast_real (enc.data (), enc.size (), &f2);
    FUZZ_CHECK (f2_ok || nul_text, "fast path declines our own encoding %s",
        fuzz_escape (enc).c_str ());
    Result r2 = decode (Mode::SLOW_ONLY, enc.data (), enc.size (), &s2);
    FUZZ_CHECK (r2.ok, "json-glib rejects our own encoding %s: %s",
        fuzz_escape (enc).c_str (), r2.error.c_str ());
    /* the encoder omits a negative length (absent = -1) */
    rtms::AudioData expect = slow.audio;
    if (expect.length < 0)
      expect.length = -1;
    if (f2_ok)
      check_same_audio (f2.audio, expect, "re-encoded (fast)", enc);
    check_same_audio (s2.audio, expect, "re-encoded (json-glib)", enc);
  }
  return 0;
}
