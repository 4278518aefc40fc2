/* zoomrtms-host — pipeline templates. See host-template.h. */
#include "host-template.h"

#include "host-common.h"

#include <gio/gio.h>

#include <algorithm>
#include <cstring>

#define GST_CAT_DEFAULT zoomrtms_host_debug

namespace zhost {

const char *const kTemplateVariables[] = {
  "OUTPUT_DIR", "ENGAGEMENT_ID", "RTP_HOST", "RTP_PORT", "PARTICIPANT_ID",
  nullptr,
};

static bool
is_safe_id_char (char c)
{
  return g_ascii_isalnum (c) || c == '_' || c == '-';
}

std::string
sanitize_engagement_id (const std::string &id)
{
  std::string out;
  out.reserve (id.size ());
  bool changed = id.empty () || id.size () > 64;
  for (char c : id) {
    if (is_safe_id_char (c))
      out += c;
    else {
      out += '_';
      changed = true;
    }
  }
  if (out.size () > 64)
    out.resize (64);
  if (changed) {
    g_autofree gchar *sum = g_compute_checksum_for_data (G_CHECKSUM_SHA256,
        reinterpret_cast<const guchar *> (id.data ()), id.size ());
    if (out.empty ())
      out = "engagement";
    out += '-';
    out.append (sum, 8);
  }
  return out;
}

static bool
is_known_variable (const std::string &name)
{
  for (const char *const *v = kTemplateVariables; *v; v++)
    if (name == *v)
      return true;
  return false;
}

static bool
valid_hostname (const std::string &h)
{
  if (h.empty () || h.size () > 253)
    return false;
  if (g_hostname_is_ip_address (h.c_str ()))
    return true;
  gsize label = 0;
  char prev = '.';
  for (char c : h) {
    if (c == '.') {
      if (label == 0 || prev == '-')
        return false;
      label = 0;
    } else if (g_ascii_isalnum (c) || c == '-') {
      if (label == 0 && c == '-')
        return false;
      if (++label > 63)
        return false;
    } else
      return false;
    prev = c;
  }
  return label > 0 && prev != '-';
}

bool
validate_variable (const std::string &name, const std::string &value,
    GError **error)
{
  if (!is_known_variable (name)) {
    g_set_error (error, ZHOST_ERROR, ERROR_TEMPLATE,
        "unknown variable ${%s} (allowed: ${OUTPUT_DIR}, ${ENGAGEMENT_ID}, "
        "${RTP_HOST}, ${RTP_PORT}, ${PARTICIPANT_ID} in @participant-branch)",
        name.c_str ());
    return false;
  }
  if (name == "OUTPUT_DIR") {
    /* gst_parse_launch() refuses a description that is not UTF-8 */
    bool ok = !value.empty () && value[0] == '/' && value.size () < 4096 &&
        g_utf8_validate_len (value.data (), value.size (), nullptr);
    for (char c : value)
      if (static_cast<unsigned char> (c) < 0x20 || c == 0x7f)
        ok = false;
    if (ok) {
      g_auto (GStrv) parts = g_strsplit (value.c_str (), "/", -1);
      for (gchar **p = parts; *p; p++)
        if (g_str_equal (*p, ".") || g_str_equal (*p, ".."))
          ok = false;
    }
    if (!ok) {
      g_set_error (error, ZHOST_ERROR, ERROR_TEMPLATE,
          "${OUTPUT_DIR} must be an absolute UTF-8 path without '.' or '..' "
          "components or control characters");
      return false;
    }
    return true;
  }
  if (name == "ENGAGEMENT_ID" || name == "PARTICIPANT_ID") {
    bool ok = !value.empty () && value.size () <= 128 &&
        std::all_of (value.begin (), value.end (), is_safe_id_char);
    if (!ok) {
      g_set_error (error, ZHOST_ERROR, ERROR_TEMPLATE,
          "${%s} must match [A-Za-z0-9_-]{1,128} (use "
          "sanitize_engagement_id)", name.c_str ());
      return false;
    }
    return true;
  }
  if (name == "RTP_HOST") {
    if (!valid_hostname (value)) {
      g_set_error (error, ZHOST_ERROR, ERROR_TEMPLATE,
          "${RTP_HOST} \"%s\" is not an IP address or host name",
          g_utf8_validate (value.c_str (), -1, nullptr) ? value.c_str () : "?");
      return false;
    }
    return true;
  }
  /* RTP_PORT: no leading zero (GStreamer would read "010" as octal 8) */
  bool ok = !value.empty () && value.size () <= 5 && value[0] != '0' &&
      std::all_of (value.begin (), value.end (), [] (char c) { return g_ascii_isdigit (c); });
  if (ok) {
    long p = strtol (value.c_str (), nullptr, 10);
    ok = p >= 1 && p <= 65535;
  }
  if (!ok) {
    g_set_error (error, ZHOST_ERROR, ERROR_TEMPLATE,
        "${RTP_PORT} must be an integer 1-65535 without leading zeros");
    return false;
  }
  return true;
}

std::string
quote_value (const std::string &value)
{
  std::string q = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\')
      q += '\\';
    q += c;
  }
  q += '"';
  return q;
}

std::string
strip_comments (const std::string &text)
{
  std::string out;
  gsize i = 0;
  while (i < text.size ()) {
    gsize eol = text.find ('\n', i);
    gsize end = eol == std::string::npos ? text.size () : eol;
    gsize j = i;
    while (j < end && (text[j] == ' ' || text[j] == '\t' || text[j] == '\r'))
      j++;
    if (!(j < end && text[j] == '#'))
      out.append (text, i, end - i);
    if (eol == std::string::npos)
      break;
    out += '\n';
    i = eol + 1;
  }
  return out;
}

static int
line_of (const std::string &text, gsize pos)
{
  return 1 + static_cast<int> (std::count (text.begin (), text.begin () + pos, '\n'));
}

/* Expands ${VAR} in @raw (the literal text of a property value, already
 * unescaped). */
static bool
expand_value (const std::string &raw, const TemplateVars &vars, int line,
    std::string *out, GError **error)
{
  gsize i = 0;
  while (i < raw.size ()) {
    if (raw[i] == '$' && i + 1 < raw.size () && raw[i + 1] == '{') {
      gsize close = raw.find ('}', i + 2);
      if (close == std::string::npos) {
        g_set_error (error, ZHOST_ERROR, ERROR_TEMPLATE,
            "line %d: unterminated ${", line);
        return false;
      }
      std::string name = raw.substr (i + 2, close - i - 2);
      if (!is_known_variable (name)) {
        g_set_error (error, ZHOST_ERROR, ERROR_TEMPLATE,
            "line %d: unknown variable ${%s} (allowed: ${OUTPUT_DIR}, "
            "${ENGAGEMENT_ID}, ${RTP_HOST}, ${RTP_PORT}, ${PARTICIPANT_ID} "
            "in @participant-branch)", line,
            name.c_str ());
        return false;
      }
      auto it = vars.find (name);
      if (it == vars.end ()) {
        g_set_error (error, ZHOST_ERROR, ERROR_TEMPLATE,
            "line %d: no value for ${%s}", line, name.c_str ());
        return false;
      }
      GError *verr = nullptr;
      if (!validate_variable (name, it->second, &verr)) {
        g_set_error (error, ZHOST_ERROR, ERROR_TEMPLATE, "line %d: %s", line,
            verr->message);
        g_error_free (verr);
        return false;
      }
      out->append (it->second);
      i = close + 1;
    } else {
      *out += raw[i++];
    }
  }
  return true;
}

bool
substitute_template (const std::string &text, const TemplateVars &vars,
    std::string *out, GError **error)
{
  std::string res;
  gsize i = 0, n = text.size ();
  while (i < n) {
    if (g_ascii_isspace (text[i])) {
      res += text[i++];
      continue;
    }
    /* one gst-launch word: non-blank characters, quotes may hold blanks */
    gsize start = i;
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
    std::string word = text.substr (start, i - start);
    if (word.find ("${") == std::string::npos) {
      res += word;
      continue;
    }
    int line = line_of (text, start);
    gsize eq = word.find ('=');
    bool ident = eq != std::string::npos && eq > 0 &&
        (g_ascii_isalnum (word[0]) || word[0] == '_');
    for (gsize k = 1; ident && k < eq; k++) {
      char c = word[k];
      ident = g_ascii_isalnum (c) || c == '_' || c == '-' || c == '%' || c == ':';
    }
    if (!ident) {
      g_set_error (error, ZHOST_ERROR, ERROR_TEMPLATE,
          "line %d: variables may only appear in a property value "
          "(name=...${VAR}...), found \"%s\"", line, word.c_str ());
      return false;
    }
    std::string v = word.substr (eq + 1);
    std::string raw;
    if (v.size () >= 2 && v.front () == '"' && v.back () == '"') {
      for (gsize k = 1; k + 1 < v.size (); k++) {
        if (v[k] == '\\' && k + 2 < v.size () && (v[k + 1] == '"' || v[k + 1] == '\\'))
          k++;
        raw += v[k];
      }
    } else {
      if (v.find ('"') != std::string::npos) {
        g_set_error (error, ZHOST_ERROR, ERROR_TEMPLATE,
            "line %d: quote the whole value or none of it, found \"%s\"",
            line, word.c_str ());
        return false;
      }
      for (gsize k = 0; k < v.size (); k++) {
        if (v[k] == '\\' && k + 1 < v.size ())
          k++;
        raw += v[k];
      }
    }
    std::string expanded;
    if (!expand_value (raw, vars, line, &expanded, error))
      return false;
    res += word.substr (0, eq + 1);
    res += quote_value (expanded);
  }
  *out = std::move (res);
  return true;
}

TemplateVars
dummy_vars ()
{
  return {
    {"OUTPUT_DIR", "/nonexistent/zoomrtms-validate"},
    {"ENGAGEMENT_ID", "validate"},
    {"RTP_HOST", "127.0.0.1"},
    {"RTP_PORT", "5004"},
  };
}

std::string
take_participant_branch (std::string *text)
{
  static const char kDirective[] = "@participant-branch";
  std::string out, branch;
  gsize i = 0;
  while (i < text->size ()) {
    gsize eol = text->find ('\n', i);
    gsize end = eol == std::string::npos ? text->size () : eol;
    gsize j = i;
    while (j < end && ((*text)[j] == ' ' || (*text)[j] == '\t'))
      j++;
    if (text->compare (j, strlen (kDirective), kDirective) == 0)
      branch += text->substr (j + strlen (kDirective),
          end - j - strlen (kDirective)) + " ";
    else
      out.append (*text, i, end - i);
    if (eol == std::string::npos)
      break;
    out += '\n';
    i = eol + 1;
  }
  *text = out;
  return branch;
}

GstElement *
build_participant_branch (const PipelineTemplate &tmpl,
    const TemplateVars &vars, GError **error)
{
  std::string desc;
  GError *err = nullptr;
  if (!substitute_template (tmpl.participant_branch, vars, &desc, &err)) {
    g_set_error (error, ZHOST_ERROR, ERROR_TEMPLATE,
        "%s: @participant-branch: %s", tmpl.path.c_str (), err->message);
    g_error_free (err);
    return nullptr;
  }
  GstElement *bin = gst_parse_bin_from_description_full (desc.c_str (), TRUE,
      nullptr, GST_PARSE_FLAG_FATAL_ERRORS, &err);
  GstPad *sink = bin ? gst_element_get_static_pad (bin, "sink") : nullptr;
  if (err || !bin || !sink) {
    g_set_error (error, ZHOST_ERROR, ERROR_TEMPLATE,
        "%s: @participant-branch: %s", tmpl.path.c_str (),
        err ? err->message : "it needs one unlinked sink pad");
    g_clear_error (&err);
    if (bin)
      gst_object_unref (gst_object_ref_sink (bin));
    if (sink)
      gst_object_unref (sink);
    return nullptr;
  }
  gst_object_unref (sink);
  return GST_ELEMENT (gst_object_ref_sink (bin));
}

GstElement *
build_pipeline (const PipelineTemplate &tmpl, const TemplateVars &vars,
    const std::string &pipeline_name, bool *has_level, GError **error)
{
  std::string desc;
  GError *err = nullptr;
  if (!substitute_template (tmpl.text, vars, &desc, &err)) {
    g_set_error (error, ZHOST_ERROR, ERROR_TEMPLATE, "%s: %s",
        tmpl.path.c_str (), err->message);
    g_error_free (err);
    return nullptr;
  }
  GstElement *bin = gst_parse_launch_full (desc.c_str (), nullptr,
      static_cast<GstParseFlags> (GST_PARSE_FLAG_FATAL_ERRORS |
          GST_PARSE_FLAG_PLACE_IN_BIN), &err);
  if (err || !bin) {
    if (bin)
      gst_object_unref (gst_object_ref_sink (bin));
    g_set_error (error, ZHOST_ERROR, ERROR_TEMPLATE, "%s: %s",
        tmpl.path.c_str (), err ? err->message : "parse failed");
    g_clear_error (&err);
    return nullptr;
  }
  GstElement *pipeline = gst_pipeline_new (pipeline_name.c_str ());
  gst_object_ref_sink (pipeline);
  gst_bin_add (GST_BIN (pipeline), bin);

  int n_src = 0, n_demux = 0;
  bool named_src = false, level = false, named_demux = false;
  GstIterator *it = gst_bin_iterate_recurse (GST_BIN (pipeline));
  GValue item = G_VALUE_INIT;
  bool done = false;
  while (!done) {
    switch (gst_iterator_next (it, &item)) {
      case GST_ITERATOR_OK: {
        auto *el = GST_ELEMENT (g_value_get_object (&item));
        GstElementFactory *f = gst_element_get_factory (el);
        const gchar *fname = f ? GST_OBJECT_NAME (f) : "";
        if (g_str_equal (fname, "zoomrtmssrc")) {
          n_src++;
          if (g_str_equal (GST_OBJECT_NAME (el), "src"))
            named_src = true;
        } else if (g_str_equal (fname, "level")) {
          level = true;
        } else if (g_str_equal (fname, "zoomrtmsdemux")) {
          n_demux++;
          if (g_str_equal (GST_OBJECT_NAME (el), "participants"))
            named_demux = true;
        }
        g_value_reset (&item);
        break;
      }
      case GST_ITERATOR_RESYNC:
        gst_iterator_resync (it);
        n_src = n_demux = 0;
        named_src = level = named_demux = false;
        break;
      default:
        done = true;
        break;
    }
  }
  g_value_unset (&item);
  gst_iterator_free (it);
  if (n_src != 1 || !named_src) {
    g_set_error (error, ZHOST_ERROR, ERROR_TEMPLATE,
        "%s: a pipeline needs exactly one zoomrtmssrc named \"src\" "
        "(found %d zoomrtmssrc, %s named src)", tmpl.path.c_str (), n_src,
        named_src ? "one" : "none");
    gst_object_unref (pipeline);
    return nullptr;
  }
  bool want_demux = !tmpl.participant_branch.empty ();
  if (want_demux != (n_demux > 0) || n_demux > 1 ||
      (want_demux && !named_demux)) {
    g_set_error (error, ZHOST_ERROR, ERROR_TEMPLATE,
        "%s: @participant-branch goes with exactly one zoomrtmsdemux named "
        "\"participants\" (found %d zoomrtmsdemux, %s)", tmpl.path.c_str (),
        n_demux, want_demux ? "a branch" : "no branch");
    gst_object_unref (pipeline);
    return nullptr;
  }
  if (has_level)
    *has_level = level;
  return pipeline;
}

static std::string
enum_nick (GObject *obj, const char *prop)
{
  GParamSpec *ps = g_object_class_find_property (G_OBJECT_GET_CLASS (obj), prop);
  if (!ps || !G_IS_PARAM_SPEC_ENUM (ps))
    return "";
  gint v = 0;
  g_object_get (obj, prop, &v, nullptr);
  GEnumValue *ev = g_enum_get_value (G_PARAM_SPEC_ENUM (ps)->enum_class, v);
  return ev ? ev->value_nick : "";
}

GstCaps *
src_output_caps (GstElement *src)
{
  std::string codec = enum_nick (G_OBJECT (src), "codec");
  if (codec.empty ())
    return nullptr;
  if (codec == "opus")
    return gst_caps_from_string ("audio/x-opus, rate=(int)48000, channels=(int)1, "
        "channel-mapping-family=(int)0");
  guint rate = 16000;
  if (g_object_class_find_property (G_OBJECT_GET_CLASS (src), "rate"))
    g_object_get (src, "rate", &rate, nullptr);
  std::string layout = enum_nick (G_OBJECT (src), "layout");
  if (layout == "packets") {
    guint send_rate = 20;
    if (g_object_class_find_property (G_OBJECT_GET_CLASS (src), "send-rate"))
      g_object_get (src, "send-rate", &send_rate, nullptr);
    return gst_caps_new_simple ("application/x-zoomrtms-packets", "format",
        G_TYPE_STRING, "S16LE", "rate", G_TYPE_INT, static_cast<int> (rate),
        "packet-ms", G_TYPE_INT, static_cast<int> (send_rate), nullptr);
  }
  auto raw = [rate] (int channels) {
    return gst_caps_new_simple ("audio/x-raw", "format", G_TYPE_STRING, "S16LE",
        "layout", G_TYPE_STRING, "interleaved", "rate", G_TYPE_INT,
        static_cast<int> (rate), "channels", G_TYPE_INT, channels, nullptr);
  };
  if (layout != "auto")
    return raw (layout == "stereo" ? 2 : 1);
  /* layout=auto: mono (meetings) or stereo (ZCC), by the webhook */
  GstCaps *both = raw (1);
  gst_caps_append (both, raw (2));
  return both;
}

bool
check_pipeline_caps (GstElement *pipeline, const std::string &path,
    std::string *caps_text, GError **error)
{
  g_autoptr (GstElement) src = gst_bin_get_by_name (GST_BIN (pipeline), "src");
  g_autoptr (GstPad) pad = src ? gst_element_get_static_pad (src, "src") : nullptr;
  if (!pad) {
    g_set_error (error, ZHOST_ERROR, ERROR_TEMPLATE, "%s: no zoomrtmssrc src pad",
        path.c_str ());
    return false;
  }
  g_autoptr (GstPad) peer = gst_pad_get_peer (pad);
  if (!peer) {
    g_set_error (error, ZHOST_ERROR, ERROR_TEMPLATE,
        "%s: zoomrtmssrc \"src\" is not linked to anything", path.c_str ());
    return false;
  }
  g_autoptr (GstCaps) want = src_output_caps (src);
  if (!want)
    return true;                /* an element without `codec`: nothing to say */
  g_autofree gchar *want_text = gst_caps_to_string (want);
  if (caps_text)
    *caps_text = want_text;
  /* every structure must negotiate (layout=auto: mono and stereo) */
  guint failed = gst_caps_get_size (want);
  for (guint i = 0; i < gst_caps_get_size (want); i++) {
    g_autoptr (GstCaps) one = gst_caps_copy_nth (want, i);
    g_autoptr (GstCaps) got = gst_pad_peer_query_caps (pad, one);
    if (!got || gst_caps_is_empty (got)) {
      failed = i;
      break;
    }
  }
  if (failed == gst_caps_get_size (want))
    return true;
  g_autoptr (GstCaps) bad = gst_caps_copy_nth (want, failed);
  g_free (want_text);
  want_text = gst_caps_to_string (bad);
  g_autoptr (GstCaps) accepts = gst_pad_peer_query_caps (pad, nullptr);
  g_autofree gchar *acc_text = accepts ? gst_caps_to_string (accepts) : g_strdup ("nothing");
  GstElement *next = gst_pad_get_parent_element (peer);
  GstElementFactory *f = next ? gst_element_get_factory (next) : nullptr;
  g_set_error (error, ZHOST_ERROR, ERROR_TEMPLATE,
      "%s: caps cannot be negotiated: zoomrtmssrc will output %s, but "
      "what follows it (%s) accepts only %s", path.c_str (), want_text,
      f ? GST_OBJECT_NAME (f) : "?", acc_text);
  if (next)
    gst_object_unref (next);
  return false;
}

bool
TemplateStore::check_caps (std::vector<std::string> *problems,
    std::map<std::string, std::string> *caps) const
{
  bool ok = true;
  for (const auto &kv : templates_) {
    GError *err = nullptr;
    GstElement *p = build_pipeline (kv.second, dummy_vars (), "check", nullptr, &err);
    std::string text;
    if (!p || !check_pipeline_caps (p, kv.second.path, &text, &err)) {
      ok = false;
      if (problems)
        problems->push_back (err ? err->message : kv.first + ": build failed");
      g_clear_error (&err);
    } else if (caps) {
      (*caps)[kv.first] = text;
    }
    if (p)
      gst_object_unref (p);
  }
  return ok;
}

bool
TemplateStore::load_dir (const std::string &dir, GError **error)
{
  templates_.clear ();
  GError *err = nullptr;
  g_autoptr (GDir) d = g_dir_open (dir.c_str (), 0, &err);
  if (!d) {
    g_set_error (error, ZHOST_ERROR, ERROR_TEMPLATE,
        "cannot open pipeline directory %s: %s", dir.c_str (), err->message);
    g_error_free (err);
    return false;
  }
  std::vector<std::string> files;
  while (const gchar *name = g_dir_read_name (d))
    if (g_str_has_suffix (name, ".pipeline"))
      files.push_back (name);
  std::sort (files.begin (), files.end ());
  if (files.empty ()) {
    g_set_error (error, ZHOST_ERROR, ERROR_TEMPLATE,
        "no *.pipeline files in %s", dir.c_str ());
    return false;
  }
  for (const auto &f : files) {
    PipelineTemplate t;
    t.name = f.substr (0, f.size () - strlen (".pipeline"));
    g_autofree gchar *path = g_build_filename (dir.c_str (), f.c_str (), nullptr);
    t.path = path;
    g_autofree gchar *contents = nullptr;
    gsize len = 0;
    if (!g_file_get_contents (path, &contents, &len, &err)) {
      g_set_error (error, ZHOST_ERROR, ERROR_TEMPLATE, "%s: %s", path,
          err->message);
      g_error_free (err);
      return false;
    }
    t.text = strip_comments (std::string (contents, len));
    t.participant_branch = take_participant_branch (&t.text);
    bool has_level = false;
    GstElement *p = build_pipeline (t, dummy_vars (), "validate", &has_level,
        error);
    if (!p)
      return false;
    gst_object_unref (p);
    if (!t.participant_branch.empty ()) {
      TemplateVars v = dummy_vars ();
      v["PARTICIPANT_ID"] = "validate";
      GstElement *b = build_participant_branch (t, v, error);
      if (!b)
        return false;
      gst_object_unref (b);
    }
    t.has_level = has_level;
    GST_INFO ("pipeline template %s loaded from %s", t.name.c_str (), path);
    templates_[t.name] = std::move (t);
  }
  return true;
}

const PipelineTemplate *
TemplateStore::find (const std::string &name) const
{
  auto it = templates_.find (name);
  return it == templates_.end () ? nullptr : &it->second;
}

std::vector<std::string>
TemplateStore::names () const
{
  std::vector<std::string> v;
  for (const auto &kv : templates_)
    v.push_back (kv.first);
  return v;
}

} // namespace zhost
