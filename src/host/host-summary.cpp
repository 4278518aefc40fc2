/* zoomrtms-host — summary of an output root. See host-summary.h. */
#include "host-summary.h"

#include "host-common.h"
#include "host-engagement-dir.h"

#include <glib/gstdio.h>
#include <gst/pbutils/pbutils.h>
#include <json-glib/json-glib.h>

#include <algorithm>
#include <cstdio>
#include <vector>

namespace zhost {

static std::string
describe_audio (GstDiscoverer *disc, const std::string &path)
{
  g_autofree gchar *abs = g_canonicalize_filename (path.c_str (), nullptr);
  g_autofree gchar *uri = g_filename_to_uri (abs, nullptr, nullptr);
  if (!uri)
    return "?";
  GError *err = nullptr;
  g_autoptr (GstDiscovererInfo) info = gst_discoverer_discover_uri (disc, uri, &err);
  if (!info || gst_discoverer_info_get_result (info) != GST_DISCOVERER_OK) {
    std::string m = std::string ("not readable: ") + (err ? err->message : "?");
    g_clear_error (&err);
    return m;
  }
  g_clear_error (&err);
  GstClockTime d = gst_discoverer_info_get_duration (info);
  std::string out;
  g_autofree gchar *dur = g_strdup_printf ("%.2f s", GST_CLOCK_TIME_IS_VALID (d) ?
      static_cast<double> (d) / GST_SECOND : 0.0);
  out += dur;
  GList *streams = gst_discoverer_info_get_audio_streams (info);
  if (streams) {
    auto *a = GST_DISCOVERER_AUDIO_INFO (streams->data);
    g_autofree gchar *fmt = g_strdup_printf (", %u Hz, %u ch",
        gst_discoverer_audio_info_get_sample_rate (a),
        gst_discoverer_audio_info_get_channels (a));
    out += fmt;
  }
  gst_discoverer_stream_info_list_free (streams);
  return out;
}

int
print_summary (const std::string &output_root, int first_lines)
{
  g_autoptr (GDir) d = g_dir_open (output_root.c_str (), 0, nullptr);
  if (!d) {
    g_printerr ("cannot read %s\n", output_root.c_str ());
    return -1;
  }
  std::vector<std::string> dirs;
  while (const gchar *n = g_dir_read_name (d)) {
    g_autofree gchar *p = g_build_filename (output_root.c_str (), n, nullptr);
    /* ".state": the journal of live engagements (host-journal.h) */
    if (n[0] != '.' && g_file_test (p, G_FILE_TEST_IS_DIR))
      dirs.push_back (n);
  }
  std::sort (dirs.begin (), dirs.end ());
  GError *err = nullptr;
  g_autoptr (GstDiscoverer) disc = gst_discoverer_new (10 * GST_SECOND, &err);
  if (!disc) {
    g_printerr ("GstDiscoverer: %s\n", err->message);
    g_error_free (err);
    return -1;
  }
  int count = 0;
  g_print ("Recordings in %s: %zu engagement(s)\n", output_root.c_str (), dirs.size ());
  for (const auto &name : dirs) {
    g_autofree gchar *dir = g_build_filename (output_root.c_str (), name.c_str (), nullptr);
    count++;
    g_print ("\n== %s\n", name.c_str ());
    EngagementDir edir (dir, name);
    g_autoptr (JsonParser) parser = json_parser_new ();
    if (JsonObject *o = edir.read_engagement_json (parser)) {
      const gchar *key = json_object_get_string_member_with_default (o, "id_key",
          "engagement_id");
      g_print ("   %s: %s\n   rtms_stream_id: %s\n   pipeline: %s   state: %s\n",
          key, json_object_get_string_member_with_default (o, key, "?"),
          json_object_get_string_member_with_default (o, "rtms_stream_id", "?"),
          json_object_get_string_member_with_default (o, "pipeline", "?"),
          json_object_get_string_member_with_default (o, "state", "?"));
      JsonNode *sr = json_object_get_member (o, "stop_reason");
      if (sr && JSON_NODE_HOLDS_OBJECT (sr)) {
        JsonObject *so = json_node_get_object (sr);
        JsonNode *code = json_object_get_member (so, "code");
        g_print ("   stopped by: %s", json_object_get_string_member_with_default (so,
            "source", "?"));
        if (code && !json_node_is_null (code))
          g_print (", stop_reason %" G_GINT64_FORMAT " %s", json_node_get_int (code),
              json_object_get_string_member_with_default (so, "name", ""));
        g_print ("\n");
      }
      g_print ("   frames: %" G_GINT64_FORMAT ", silence inserted: %" G_GINT64_FORMAT
          " samples, duplicates dropped: %" G_GINT64_FORMAT ", failovers: %"
          G_GINT64_FORMAT "\n",
          json_object_get_int_member_with_default (o, "frames", 0),
          json_object_get_int_member_with_default (o, "silence_inserted_samples", 0),
          json_object_get_int_member_with_default (o, "duplicates_dropped", 0),
          json_object_get_int_member_with_default (o, "failovers", 0));
      JsonArray *ints = json_object_has_member (o, "interruptions") ?
          json_object_get_array_member (o, "interruptions") : nullptr;
      for (guint i = 0; ints && i < json_array_get_length (ints); i++) {
        JsonObject *io = json_array_get_object_element (ints, i);
        gint64 start = json_object_get_int_member_with_default (io, "start", 0);
        gint64 end = json_object_get_int_member_with_default (io, "end", 0);
        gint64 sil = json_object_get_int_member_with_default (io, "silence_ms", -1);
        g_print ("   interruption: %s at %s, %s", json_object_get_string_member_with_default (
            io, "cause", "?"), iso8601_utc (start * 1000).c_str (),
            json_object_get_boolean_member_with_default (io, "recovered", TRUE) ?
            "recovered" : "NOT recovered (the rest of the call is lost)");
        if (end > start)
          g_print (" after %" G_GINT64_FORMAT " ms", end - start);
        if (sil >= 0)
          g_print (", %" G_GINT64_FORMAT " ms of silence in the recording", sil);
        g_print ("\n");
      }
      JsonArray *errs = json_object_has_member (o, "errors") ?
          json_object_get_array_member (o, "errors") : nullptr;
      for (guint i = 0; errs && i < json_array_get_length (errs); i++)
        g_print ("   error: %s\n", json_array_get_string_element (errs, i));
    }
    std::vector<std::string> files;
    g_autoptr (GDir) ed = g_dir_open (dir, 0, nullptr);
    while (const gchar *f = ed ? g_dir_read_name (ed) : nullptr)
      if (f[0] != '.')            /* .zoomrtms-reserve of a live one */
        files.push_back (f);
    std::sort (files.begin (), files.end ());
    for (const auto &f : files) {
      g_autofree gchar *path = g_build_filename (dir, f.c_str (), nullptr);
      GStatBuf st;
      if (g_stat (path, &st) != 0)
        continue;
      std::string extra;
      if (g_str_has_suffix (f.c_str (), ".wav") || g_str_has_suffix (f.c_str (), ".opus") ||
          g_str_has_suffix (f.c_str (), ".ogg"))
        extra = "  " + describe_audio (disc, path);
      g_print ("   %-18s %10lld bytes%s\n", f.c_str (),
          static_cast<long long> (st.st_size), extra.c_str ());
    }
    g_autofree gchar *tpath = g_build_filename (dir, "transcript.txt", nullptr);
    g_autofree gchar *txt = nullptr;
    if (g_file_get_contents (tpath, &txt, nullptr, nullptr)) {
      g_auto (GStrv) lines = g_strsplit (txt, "\n", -1);
      std::vector<std::string> tl;
      for (gchar **l = lines; *l; l++)
        if ((*l)[0] == '[')
          tl.push_back (*l);
      g_print ("   transcript: %zu line(s)\n", tl.size ());
      for (int i = 0; i < first_lines && i < static_cast<int> (tl.size ()); i++)
        g_print ("     %s\n", tl[i].c_str ());
    }
  }
  return count;
}

} // namespace zhost
