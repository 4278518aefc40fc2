/* zoomrtms — libFuzzer target: pipeline templates and the engagement-id
 * sanitizer (src/host/host-template.h; design.md "Pipeline templates are
 * data, not code").
 *
 * Input: byte 0 selects the template of part C, then length-prefixed
 * strings: an engagement id, a second id, OUTPUT_DIR, RTP_HOST, RTP_PORT,
 * a raw ENGAGEMENT_ID; the rest is a template text for part B.
 *
 * A. sanitize_engagement_id(): the result is 1–73 bytes of [A-Za-z0-9_-]
 *    (so no '/', no '.', no "..", no NUL, never empty), passes
 *    validate_variable("ENGAGEMENT_ID"), is the id itself when the id is
 *    already 1–64 safe bytes, and two different ids that both needed
 *    changing never give the same name (SHA-256 suffix).
 * B. substitute_template() on any text: on success the output has the
 *    template's words (gst-launch lexing: blanks outside double quotes
 *    separate words, '\' escapes), the words without "${" unchanged and
 *    every word with a variable turned into name="…" with no unescaped '"'
 *    inside — a value can never add an element, a link or a property.
 * C. End to end through GStreamer's parser: a fixed template with the fuzzed
 *    values; when substitution succeeds, gst_parse_launch_full() with
 *    GST_PARSE_FLAG_FATAL_ERRORS builds exactly the template's two elements
 *    and the sink's property is exactly the value (filesink location =
 *    OUTPUT_DIR + "/" + id + ".wav", udpsink host/port).
 */
#include <gst/gst.h>

#include <string>
#include <vector>

#include "fuzz-util.h"
#include "host-common.h"
#include "host-template.h"

namespace {

bool
safe_char (char c)
{
  return g_ascii_isalnum (c) || c == '_' || c == '-';
}

bool
all_safe (const std::string &s)
{
  for (char c : s)
    if (!safe_char (c))
      return false;
  return true;
}

/* gst-launch words as substitute_template() splits them */
std::vector<std::string>
words_of (const std::string &text)
{
  std::vector<std::string> words;
  size_t i = 0, n = text.size ();
  while (i < n) {
    if (g_ascii_isspace (text[i])) {
      i++;
      continue;
    }
    size_t start = i;
    bool inq = false;
    while (i < n) {
      char c = text[i];
      if (c == '\\' && i + 1 < n) {
        i += 2;
        continue;
      }
      if (c == '"')
        inq = !inq;
      else if (!inq && g_ascii_isspace (c))
        break;
      i++;
    }
    words.push_back (text.substr (start, i - start));
  }
  return words;
}

void
check_sanitize (const std::string &id, const std::string &id2)
{
  std::string s = zhost::sanitize_engagement_id (id);
  FUZZ_CHECK (!s.empty () && s.size () <= 64 + 9, "sanitized length %zu",
      s.size ());
  FUZZ_CHECK (all_safe (s), "unsafe byte in sanitized id \"%s\"",
      fuzz_escape (s).c_str ());
  FUZZ_CHECK (s != "." && s != ".." && s.find ('/') == std::string::npos
      && s.find ('\0') == std::string::npos, "path component");
  GError *error = nullptr;
  FUZZ_CHECK (zhost::validate_variable ("ENGAGEMENT_ID", s, &error),
      "sanitized id fails validation: %s", error ? error->message : "");
  FUZZ_CHECK (zhost::sanitize_engagement_id (id) == s, "not deterministic");
  bool unchanged = !id.empty () && id.size () <= 64 && all_safe (id);
  if (unchanged)
    FUZZ_CHECK (s == id, "safe id \"%s\" changed", fuzz_escape (id).c_str ());
  bool unchanged2 = !id2.empty () && id2.size () <= 64 && all_safe (id2);
  if (!unchanged && !unchanged2 && id != id2)
    FUZZ_CHECK (zhost::sanitize_engagement_id (id2) != s,
        "\"%s\" and \"%s\" give the same name", fuzz_escape (id).c_str (),
        fuzz_escape (id2).c_str ());
}

void
check_substitute (const std::string &text, const zhost::TemplateVars &vars)
{
  std::string out;
  GError *error = nullptr;
  if (!zhost::substitute_template (text, vars, &out, &error)) {
    FUZZ_CHECK (error && error->domain == ZHOST_ERROR
        && error->code == zhost::ERROR_TEMPLATE, "substitute_template error");
    g_error_free (error);
    return;
  }
  FUZZ_CHECK (error == nullptr, "success with an error set");
  std::vector<std::string> tw = words_of (text), ow = words_of (out);
  FUZZ_CHECK (tw.size () == ow.size (), "%zu words became %zu: \"%s\" -> \"%s\"",
      tw.size (), ow.size (), fuzz_escape (text).c_str (),
      fuzz_escape (out).c_str ());
  for (size_t i = 0; i < tw.size (); i++) {
    if (tw[i].find ("${") == std::string::npos) {
      FUZZ_CHECK (tw[i] == ow[i], "word \"%s\" changed", fuzz_escape (tw[i]).c_str ());
      continue;
    }
    const std::string &w = ow[i];
    size_t eq = w.find ('=');
    FUZZ_CHECK (eq != std::string::npos && w.compare (0, eq + 1, tw[i], 0, eq + 1) == 0,
        "property name changed in \"%s\"", fuzz_escape (w).c_str ());
    FUZZ_CHECK (w.size () >= eq + 3 && w[eq + 1] == '"' && w.back () == '"',
        "value not quoted: \"%s\"", fuzz_escape (w).c_str ());
    for (size_t k = eq + 2; k + 1 < w.size (); k++) {
      if (w[k] == '\\') {
        k++;
        FUZZ_CHECK (k + 1 < w.size (), "escape of the closing quote in \"%s\"",
            fuzz_escape (w).c_str ());
        continue;
      }
      FUZZ_CHECK (w[k] != '"', "unescaped quote inside \"%s\"",
          fuzz_escape (w).c_str ());
    }
  }
}

const char *const kTemplates[] = {
  "fakesrc name=src ! filesink name=out location=${OUTPUT_DIR}/${ENGAGEMENT_ID}.wav",
  "fakesrc name=src ! filesink name=out location=\"${OUTPUT_DIR}/${ENGAGEMENT_ID}.wav\"",
  "fakesrc name=src ! udpsink name=out host=${RTP_HOST} port=${RTP_PORT}",
};

void
check_gst (unsigned which, const zhost::TemplateVars &vars)
{
  /* known (tests/fuzz/known-failing.txt): a non-UTF-8 OUTPUT_DIR passes
   * validation and GStreamer refuses it */
  if (fuzz_skip_known () && !g_utf8_validate (vars.at ("OUTPUT_DIR").data (),
          (gssize) vars.at ("OUTPUT_DIR").size (), nullptr))
    return;
  std::string desc;
  GError *error = nullptr;
  if (!zhost::substitute_template (kTemplates[which], vars, &desc, &error)) {
    g_error_free (error);
    return;
  }
  GstElement *bin = gst_parse_launch_full (desc.c_str (), nullptr,
      static_cast<GstParseFlags> (GST_PARSE_FLAG_FATAL_ERRORS
          | GST_PARSE_FLAG_PLACE_IN_BIN), &error);
  FUZZ_CHECK (bin && !error, "gst_parse_launch_full rejects validated values: "
      "%s: %s", fuzz_escape (desc).c_str (), error ? error->message : "");
  gst_object_ref_sink (bin);
  FUZZ_CHECK (GST_BIN_NUMCHILDREN (GST_BIN (bin)) == 2, "%u elements from %s",
      GST_BIN_NUMCHILDREN (GST_BIN (bin)), fuzz_escape (desc).c_str ());
  GstElement *sink = gst_bin_get_by_name (GST_BIN (bin), "out");
  GstElement *src = gst_bin_get_by_name (GST_BIN (bin), "src");
  FUZZ_CHECK (sink && src, "elements renamed in %s", fuzz_escape (desc).c_str ());
  if (which < 2) {
    gchar *loc = nullptr;
    g_object_get (sink, "location", &loc, nullptr);
    std::string want = vars.at ("OUTPUT_DIR") + "/" + vars.at ("ENGAGEMENT_ID") + ".wav";
    FUZZ_CHECK (loc && want == loc, "location \"%s\", want \"%s\"",
        fuzz_escape (loc ? loc : "(null)").c_str (), fuzz_escape (want).c_str ());
    g_free (loc);
  } else {
    gchar *host = nullptr;
    int port = 0;
    g_object_get (sink, "host", &host, "port", &port, nullptr);
    FUZZ_CHECK (host && vars.at ("RTP_HOST") == host, "host \"%s\"",
        fuzz_escape (host ? host : "(null)").c_str ());
    FUZZ_CHECK (port == atoi (vars.at ("RTP_PORT").c_str ()), "port %d", port);
    g_free (host);
  }
  gst_object_unref (sink);
  gst_object_unref (src);
  gst_object_unref (bin);
}

} // namespace

extern "C" int
LLVMFuzzerInitialize (int *, char ***)
{
  fuzz_fatal_criticals ();
  gst_init (nullptr, nullptr);
  return 0;
}

extern "C" int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  FuzzInput in (data, size);
  unsigned which = in.u8 () % G_N_ELEMENTS (kTemplates);
  std::string id = in.str (), id2 = in.str ();
  std::string out_dir = "/" + in.str ();
  std::string host = in.str (), port = in.str (8), raw_id = in.str ();
  std::string text = in.rest ();

  check_sanitize (id, id2);

  zhost::TemplateVars vars = {
    {"OUTPUT_DIR", out_dir},
    {"ENGAGEMENT_ID", zhost::sanitize_engagement_id (id)},
    {"RTP_HOST", host},
    {"RTP_PORT", port},
  };
  check_substitute (text, vars);
  check_gst (which, vars);
  /* an unsanitized id is refused unless it is safe */
  vars["ENGAGEMENT_ID"] = raw_id;
  GError *error = nullptr;
  bool valid = zhost::validate_variable ("ENGAGEMENT_ID", raw_id, &error);
  g_clear_error (&error);
  FUZZ_CHECK (valid == (!raw_id.empty () && raw_id.size () <= 128 && all_safe (raw_id)),
      "ENGAGEMENT_ID validation of \"%s\"", fuzz_escape (raw_id).c_str ());
  check_substitute (text, vars);
  check_gst (which, vars);
  return 0;
}
