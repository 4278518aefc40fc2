/* zoomrtms — libFuzzer target: rtms::json_validate (src/rtms/rtms-json.h),
 * differential against simdjson's DOM parser with the same depth limit.
 *
 * For every input, twice (max_depth = kMessageMaxDepth, and 1–8 from the
 * input length): json_validate() and simdjson::dom::parser::parse() agree on
 * validity, except where rtms-json.h documents a stricter rule, recognised
 * here independently of json_validate:
 *  - a string (or member name) holding U+0000 (`\u0000`);
 *  - an integer token (no fraction, no exponent) outside [-2^63, 2^63 − 1]
 *    (simdjson keeps up to 2^64 − 1 as uint64, and larger ones as doubles);
 *  - a number token of 128 characters or more.
 * Then: json_validate() fails only with RTMS_ERROR PARSE/TOO_LARGE and a
 * message that does not quote the input; what it accepts, json-glib loads
 * (json_load()), and json-glib's compact re-serialisation of it validates
 * again.
 */
#include <simdjson.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include <string>

#include "fuzz-util.h"
#include "rtms-json.h"
#include "rtms-messages.h"

namespace {

bool
has_nul_string (simdjson::dom::element e)
{
  switch (e.type ()) {
    case simdjson::dom::element_type::STRING: {
      std::string_view s;
      FUZZ_CHECK (e.get_string ().get (s) == simdjson::SUCCESS, "string");
      return s.find ('\0') != std::string_view::npos;
    }
    case simdjson::dom::element_type::ARRAY: {
      simdjson::dom::array a;
      FUZZ_CHECK (e.get_array ().get (a) == simdjson::SUCCESS, "array");
      for (auto v : a)
        if (has_nul_string (v))
          return true;
      return false;
    }
    case simdjson::dom::element_type::OBJECT: {
      simdjson::dom::object o;
      FUZZ_CHECK (e.get_object ().get (o) == simdjson::SUCCESS, "object");
      for (auto f : o) {
        if (f.key.find ('\0') != std::string_view::npos || has_nul_string (f.value))
          return true;
      }
      return false;
    }
    default:
      return false;
  }
}

/* For a document simdjson accepted: a number token json_validate refuses by
 * its documented range/length rules. */
bool
has_refused_number (const std::string &doc)
{
  bool in_string = false;
  for (size_t i = 0; i < doc.size (); i++) {
    char c = doc[i];
    if (in_string) {
      if (c == '\\')
        i++;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
      continue;
    }
    if (c != '-' && !g_ascii_isdigit (c))
      continue;
    size_t start = i;
    bool integer = true;
    while (i < doc.size () && (g_ascii_isdigit (doc[i]) || strchr ("+-.eE", doc[i]))) {
      if (strchr (".eE", doc[i]))
        integer = false;
      i++;
    }
    std::string tok = doc.substr (start, i - start);
    i--;
    if (tok.size () >= 128)
      return true;
    if (integer) {
      errno = 0;
      (void) g_ascii_strtoll (tok.c_str (), nullptr, 10);
      if (errno == ERANGE)
        return true;
    }
  }
  return false;
}

/* For a document simdjson accepted: its nesting depth (the root array or
 * object is 1). */
unsigned
nesting_of (const std::string &doc)
{
  bool in_string = false;
  unsigned depth = 0, max = 0;
  for (size_t i = 0; i < doc.size (); i++) {
    char c = doc[i];
    if (in_string) {
      if (c == '\\')
        i++;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max)
        max = depth;
    } else if (c == ']' || c == '}') {
      depth--;
    }
  }
  return max;
}

void
compare (const std::string &doc, guint depth)
{
  rtms::JsonLimits limits;
  limits.max_depth = depth;
  GError *error = nullptr;
  bool ours = rtms::json_validate (doc.data (), doc.size (), limits, &error);
  if (!ours) {
    FUZZ_CHECK (error && error->domain == RTMS_ERROR
        && (error->code == rtms::ERROR_PARSE || error->code == rtms::ERROR_TOO_LARGE),
        "json_validate error");
    g_clear_error (&error);
  } else {
    FUZZ_CHECK (error == nullptr, "success with an error set");
  }

  /* simdjson's max_depth is not json_validate's: an empty container does
   * not count, a non-empty one needs one more level ("[[]]" parses with
   * max_depth 2, "[[1]]" needs 3). So simdjson runs with a generous limit
   * and the nesting is counted here (nesting_of) */
  simdjson::dom::parser parser (doc.size () + 64);
  FUZZ_CHECK (parser.allocate (doc.size () + 64, 1024) == simdjson::SUCCESS,
      "simdjson allocate");
  simdjson::dom::element root;
  auto err = parser.parse (doc.data (), doc.size (), true).get (root);
  bool theirs = err == simdjson::SUCCESS && nesting_of (doc) <= depth;

  if (ours == theirs)
    goto agreed;
  if (theirs && (has_nul_string (root) || has_refused_number (doc)))
    goto agreed;             /* documented: json_validate is stricter */
  FUZZ_CHECK (false, "depth %u: json_validate %s, simdjson %s (%s): %s", depth,
      ours ? "accepts" : "refuses", theirs ? "accepts" : "refuses",
      simdjson::error_message (err), fuzz_escape (doc).c_str ());
agreed:
  if (ours) {
    g_autoptr (JsonParser) jp = json_parser_new ();
    JsonNode *node = rtms::json_load (jp, doc.data (), doc.size (), limits, &error);
    FUZZ_CHECK (node != nullptr, "json-glib refuses a validated document: %s: %s",
        error ? error->message : "", fuzz_escape (doc).c_str ());
    g_autofree char *again = json_to_string (node, FALSE);
    /* json-glib 1.6 (Debian 12) writes a double whose %.17g form has no '.'
     * with ".0" appended after the exponent: 1e40 -> "1e+40.0", not JSON.
     * Its bug, documented in tests/fuzz/README.md; zoomrtms writes JSON with
     * its own writer (rtms-json-private.h). */
    if (g_regex_match_simple ("e[+-]?[0-9]+\\.0", again, G_REGEX_DEFAULT,
            G_REGEX_MATCH_DEFAULT))
      return;
    FUZZ_CHECK (rtms::json_validate (again, strlen (again), limits, &error),
        "json-glib's re-serialisation %s does not validate: %s",
        fuzz_escape (again).c_str (), error ? error->message : "");
  }
}

} // namespace

extern "C" int
LLVMFuzzerInitialize (int *, char ***)
{
  fuzz_fatal_criticals ();
  return 0;
}

extern "C" int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size > 1024 * 1024)
    return 0;
  std::string doc (reinterpret_cast<const char *> (data), size);
  compare (doc, rtms::kMessageMaxDepth);
  compare (doc, 1 + size % 8);
  return 0;
}
