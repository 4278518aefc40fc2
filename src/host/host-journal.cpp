/* zoomrtms-host — journal of live engagements. See host-journal.h. */
#include "host-journal.h"

#include "host-common.h"
#include "host-template.h"

#include <glib/gstdio.h>

#include <cerrno>
#include <cstring>

#define GST_CAT_DEFAULT zoomrtms_host_debug

namespace zhost {

void
interruptions_to_json (const std::vector<Interruption> &v, JsonBuilder *b)
{
  json_builder_begin_array (b);
  for (const auto &i : v) {
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "cause");
    json_builder_add_string_value (b, i.cause.c_str ());
    json_builder_set_member_name (b, "start");
    json_builder_add_int_value (b, i.start);
    json_builder_set_member_name (b, "end");
    json_builder_add_int_value (b, i.end);
    json_builder_set_member_name (b, "silence_ms");
    json_builder_add_int_value (b, i.silence_ms);
    json_builder_set_member_name (b, "recovered");
    json_builder_add_boolean_value (b, i.recovered);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
}

std::vector<Interruption>
interruptions_from_json (JsonArray *a)
{
  std::vector<Interruption> v;
  for (guint k = 0; a && k < json_array_get_length (a); k++) {
    JsonNode *n = json_array_get_element (a, k);
    if (!JSON_NODE_HOLDS_OBJECT (n))
      continue;
    JsonObject *o = json_node_get_object (n);
    Interruption i;
    i.cause = json_object_get_string_member_with_default (o, "cause", "");
    i.start = json_object_get_int_member_with_default (o, "start", 0);
    i.end = json_object_get_int_member_with_default (o, "end", 0);
    i.silence_ms = json_object_get_int_member_with_default (o, "silence_ms", -1);
    i.recovered = json_object_get_boolean_member_with_default (o, "recovered", TRUE);
    v.push_back (i);
  }
  return v;
}

void
owners_to_json (const std::vector<Owner> &v, JsonBuilder *b)
{
  json_builder_begin_array (b);
  for (const auto &o : v) {
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "node");
    json_builder_add_string_value (b, o.node.c_str ());
    json_builder_set_member_name (b, "since");
    json_builder_add_int_value (b, o.since);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
}

std::vector<Owner>
owners_from_json (JsonArray *a)
{
  std::vector<Owner> v;
  for (guint k = 0; a && k < json_array_get_length (a) && k < 1000; k++) {
    JsonNode *n = json_array_get_element (a, k);
    if (!JSON_NODE_HOLDS_OBJECT (n))
      continue;
    JsonObject *o = json_node_get_object (n);
    Owner w;
    w.node = json_object_get_string_member_with_default (o, "node", "");
    w.since = json_object_get_int_member_with_default (o, "since", 0);
    v.push_back (w);
  }
  return v;
}

JsonNode *
JournalEntry::to_json () const
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  auto str = [&b] (const char *k, const std::string &v) {
    json_builder_set_member_name (b, k);
    json_builder_add_string_value (b, v.c_str ());
  };
  auto num = [&b] (const char *k, gint64 v) {
    json_builder_set_member_name (b, k);
    json_builder_add_int_value (b, v);
  };
  num ("version", 1);
  str ("state", state);
  str ("id_key", id_key);
  str ("id_value", id_value);
  str ("rtms_stream_id", rtms_stream_id);
  str ("server_urls", server_urls);
  str ("product", product);
  str ("event", event);
  num ("event_ts", event_ts);
  str ("pipeline", pipeline);
  str ("directory", directory);
  str ("dir_name", dir_name);
  json_builder_set_member_name (b, "outputs");
  json_builder_begin_array (b);
  for (const auto &o : outputs)
    json_builder_add_string_value (b, o.c_str ());
  json_builder_end_array (b);
  num ("parts", parts);
  num ("timeline_origin", timeline_origin);
  num ("rate", rate);
  num ("channels", channels);
  num ("samples", static_cast<gint64> (samples));
  str ("packet_log", packet_log);
  num ("generation", generation);
  num ("start_time", start_time);
  num ("updated", updated);
  num ("detached", detached);
  json_builder_set_member_name (b, "interruptions");
  interruptions_to_json (interruptions, b);
  json_builder_set_member_name (b, "owners");
  owners_to_json (owners, b);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

bool
JournalEntry::from_json (JsonObject *o)
{
  if (json_object_get_int_member_with_default (o, "version", 0) != 1)
    return false;
  auto str = [o] (const char *k) {
    return std::string (json_object_get_string_member_with_default (o, k, ""));
  };
  auto num = [o] (const char *k, gint64 d) {
    return json_object_get_int_member_with_default (o, k, d);
  };
  state = str ("state");
  id_key = str ("id_key");
  id_value = str ("id_value");
  rtms_stream_id = str ("rtms_stream_id");
  server_urls = str ("server_urls");
  product = str ("product");
  event = str ("event");
  event_ts = num ("event_ts", 0);
  pipeline = str ("pipeline");
  directory = str ("directory");
  dir_name = str ("dir_name");
  outputs.clear ();
  JsonArray *a = json_object_has_member (o, "outputs") ?
      json_object_get_array_member (o, "outputs") : nullptr;
  for (guint k = 0; a && k < json_array_get_length (a); k++) {
    const char *s = json_node_get_string (json_array_get_element (a, k));
    /* a file name inside the directory, nothing else */
    if (s && *s && !strchr (s, '/') && !g_str_equal (s, "..") && !g_str_equal (s, "."))
      outputs.push_back (s);
  }
  parts = static_cast<int> (num ("parts", 0));
  timeline_origin = num ("timeline_origin", -1);
  rate = static_cast<int> (num ("rate", 0));
  channels = static_cast<int> (num ("channels", 0));
  samples = static_cast<guint64> (MAX (num ("samples", 0), 0));
  packet_log = str ("packet_log");
  generation = static_cast<int> (num ("generation", 1));
  start_time = num ("start_time", 0);
  updated = num ("updated", 0);
  detached = num ("detached", 0);
  interruptions = interruptions_from_json (json_object_has_member (o,
          "interruptions") ? json_object_get_array_member (o, "interruptions") : nullptr);
  owners = owners_from_json (json_object_has_member (o, "owners") ?
      json_object_get_array_member (o, "owners") : nullptr);
  return !rtms_stream_id.empty () && !directory.empty () && !dir_name.empty () &&
      g_path_is_absolute (directory.c_str ());
}

bool
Journal::open (GError **error)
{
  if (g_mkdir_with_parents (dir_.c_str (), 0700) != 0) {
    int e = errno;
    g_set_error (error, ZHOST_ERROR, ERROR_IO, "cannot create state directory %s: %s",
        dir_.c_str (), g_strerror (e));
    return false;
  }
  return true;
}

std::string
Journal::entry_path (const std::string &rtms_stream_id) const
{
  std::string name = sanitize_engagement_id (rtms_stream_id) + ".json";
  g_autofree gchar *p = g_build_filename (dir_.c_str (), name.c_str (), nullptr);
  return p;
}

std::string
Journal::packet_log_path (const std::string &rtms_stream_id, int gen) const
{
  std::string name = sanitize_engagement_id (rtms_stream_id) + "." +
      std::to_string (gen) + ".plog";
  g_autofree gchar *p = g_build_filename (dir_.c_str (), name.c_str (), nullptr);
  return p;
}

bool
Journal::write (JournalEntry &e, bool durable)
{
  e.updated = g_get_real_time () / 1000;
  g_autoptr (JsonNode) root = e.to_json ();
  std::string txt = json_to_compact (root) + "\n";
  GError *err = nullptr;
  auto flags = static_cast<GFileSetContentsFlags> (G_FILE_SET_CONTENTS_CONSISTENT |
      (durable ? G_FILE_SET_CONTENTS_DURABLE : 0));
  if (!g_file_set_contents_full (entry_path (e.rtms_stream_id).c_str (), txt.data (),
          static_cast<gssize> (txt.size ()), flags, 0600, &err)) {
    g_warning ("journal: cannot write the entry of %s: %s", e.dir_name.c_str (),
        err->message);
    g_error_free (err);
    return false;
  }
  return true;
}

void
Journal::remove_packet_logs (const std::string &rtms_stream_id, const std::string &keep)
{
  std::string prefix = sanitize_engagement_id (rtms_stream_id) + ".";
  g_autoptr (GDir) d = g_dir_open (dir_.c_str (), 0, nullptr);
  while (const gchar *n = d ? g_dir_read_name (d) : nullptr) {
    if (!g_str_has_prefix (n, prefix.c_str ()) || !g_str_has_suffix (n, ".plog"))
      continue;
    /* <key>.<digits>.plog only */
    const char *mid = n + prefix.size ();
    const char *end = n + strlen (n) - strlen (".plog");
    bool digits = mid < end;
    for (const char *c = mid; c < end; c++)
      digits = digits && g_ascii_isdigit (*c);
    if (!digits)
      continue;
    g_autofree gchar *p = g_build_filename (dir_.c_str (), n, nullptr);
    if (keep != p)
      ::g_remove (p);
  }
}

void
Journal::remove (const std::string &rtms_stream_id)
{
  ::g_remove (entry_path (rtms_stream_id).c_str ());
  remove_packet_logs (rtms_stream_id);
}

bool
Journal::load (const std::string &rtms_stream_id, JournalEntry *out) const
{
  std::string p = entry_path (rtms_stream_id);
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonNode *root = rtms::json_load_file (parser, p.c_str (), file_json_limits (), nullptr);
  return root && JSON_NODE_HOLDS_OBJECT (root) &&
      out->from_json (json_node_get_object (root)) &&
      out->rtms_stream_id == rtms_stream_id;
}

std::vector<JournalEntry>
Journal::load_all ()
{
  std::vector<JournalEntry> v;
  g_autoptr (GDir) d = g_dir_open (dir_.c_str (), 0, nullptr);
  std::vector<std::string> names;
  while (const gchar *n = d ? g_dir_read_name (d) : nullptr)
    if (g_str_has_suffix (n, ".json"))
      names.push_back (n);
  for (const auto &n : names) {
    g_autofree gchar *p = g_build_filename (dir_.c_str (), n.c_str (), nullptr);
    g_autoptr (JsonParser) parser = json_parser_new ();
    GError *err = nullptr;
    JsonNode *root = rtms::json_load_file (parser, p, file_json_limits (), &err);
    JournalEntry e;
    if (!root || !JSON_NODE_HOLDS_OBJECT (root) ||
        !e.from_json (json_node_get_object (root))) {
      g_warning ("journal: %s is not a journal entry (%s), moved aside as .broken",
          log_safe (n).c_str (), err ? err->message : "missing members");
      g_clear_error (&err);
      std::string broken = std::string (p) + ".broken";
      g_rename (p, broken.c_str ());
      continue;
    }
    v.push_back (std::move (e));
  }
  return v;
}

} // namespace zhost
