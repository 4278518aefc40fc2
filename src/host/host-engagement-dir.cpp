/* zoomrtms-host — the engagement directory. See host-engagement-dir.h. */
#include "host-engagement-dir.h"

#include "host-common.h"
#include "host-ogg.h"
#include "host-subtitles.h"
#include "host-template.h"
#include "host-wav.h"

#include <glib/gstdio.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

#define GST_CAT_DEFAULT zoomrtms_host_debug

namespace zhost {

static const char *const kLogFiles[] = {"transcript.jsonl", "events.jsonl",
  "levels.jsonl"};

std::string
printable (const std::string &s)
{
  std::string out;
  for (char c : s)
    out += (static_cast<unsigned char> (c) < 0x20 || c == 0x7f) ? '?' : c;
  return out;
}

std::string
hhmmss (gint64 ms)
{
  if (ms < 0)
    ms = 0;
  gint64 s = ms / 1000;
  g_autofree gchar *t = g_strdup_printf ("%02d:%02d:%02d",
      static_cast<int> (s / 3600), static_cast<int> ((s / 60) % 60),
      static_cast<int> (s % 60));
  return t;
}

std::string
EngagementDir::allocate_name (const std::string &output_root,
    const std::string &id_value,
    const std::function<bool (const std::string &)> &in_use)
{
  std::string base = sanitize_engagement_id (id_value);
  for (int n = 1;; n++) {
    std::string name = n == 1 ? base : base + "-" + std::to_string (n);
    g_autofree gchar *dir = g_build_filename (output_root.c_str (), name.c_str (),
        nullptr);
    if (in_use && in_use (name))
      continue;
    if (!g_file_test (dir, G_FILE_TEST_EXISTS))
      return name;
    /* an empty directory holds nothing to keep: a place an operator
     * prepared for it (e.g. a mount point of other storage) */
    g_autoptr (GDir) d = g_dir_open (dir, 0, nullptr);
    if (d && !g_dir_read_name (d))
      return name;
  }
}

EngagementDir::EngagementDir (std::string dir, std::string name)
    : dir_ (std::move (dir)), name_ (std::move (name))
{
}

EngagementDir::~EngagementDir ()
{
  close_logs ();
}

std::string
EngagementDir::file (const std::string &f) const
{
  g_autofree gchar *p = g_build_filename (dir_.c_str (), f.c_str (), nullptr);
  return p;
}

bool
EngagementDir::create (GError **error) const
{
  if (g_mkdir_with_parents (dir_.c_str (), 0750) != 0) {
    int e = errno;
    g_set_error (error, ZHOST_ERROR, ERROR_IO, "cannot create %s: %s", dir_.c_str (),
        g_strerror (e));
    return false;
  }
  return true;
}

void
EngagementDir::append (Log log, const std::string &line)
{
  int i = static_cast<int> (log);
  if (!logs_[i]) {
    g_autoptr (GFile) f = g_file_new_for_path (file (kLogFiles[i]).c_str ());
    GError *err = nullptr;
    GFileOutputStream *os = g_file_append_to (f, G_FILE_CREATE_NONE, nullptr, &err);
    if (!os) {
      g_warning ("engagement %s: cannot open %s: %s", name_.c_str (), kLogFiles[i],
          err->message);
      g_error_free (err);
      return;
    }
    logs_[i] = G_OUTPUT_STREAM (os);
  }
  std::string l = line + "\n";
  GError *err = nullptr;
  if (!g_output_stream_write_all (logs_[i], l.data (), l.size (), nullptr, nullptr,
          &err)) {
    /* a full disk fails every line: the first failure is warned about */
    if (log_failures_[i]++ == 0)
      g_warning ("engagement %s: cannot write %s: %s (further failures of this "
          "file are not logged)", name_.c_str (), kLogFiles[i], err->message);
    g_error_free (err);
  }
}

bool
EngagementDir::reserve (gsize bytes) const
{
  std::string p = file (".zoomrtms-reserve");
  int fd = g_open (p.c_str (), O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    GST_DEBUG ("engagement %s: no reserve: %s", name_.c_str (), g_strerror (errno));
    return false;
  }
  int r = posix_fallocate (fd, 0, static_cast<off_t> (bytes));
  close (fd);
  if (r != 0) {
    GST_DEBUG ("engagement %s: no reserve: %s", name_.c_str (), g_strerror (r));
    g_remove (p.c_str ());
    return false;
  }
  return true;
}

void
EngagementDir::release_reserve () const
{
  g_remove (file (".zoomrtms-reserve").c_str ());
}

void
EngagementDir::close_logs ()
{
  for (GOutputStream *&s : logs_) {
    if (s) {
      g_output_stream_close (s, nullptr, nullptr);
      g_object_unref (s);
      s = nullptr;
    }
  }
}

static void
write_file (const std::string &path, const std::string &text)
{
  GError *err = nullptr;
  if (!g_file_set_contents (path.c_str (), text.data (),
          static_cast<gssize> (text.size ()), &err)) {
    g_warning ("%s", err->message);
    g_error_free (err);
  }
}

void
EngagementDir::write_engagement_json (JsonNode *root) const
{
  write_file (file ("engagement.json"), json_to_compact (root, true) + "\n");
}

JsonObject *
EngagementDir::read_engagement_json (JsonParser *parser) const
{
  std::string p = file ("engagement.json");
  if (!g_file_test (p.c_str (), G_FILE_TEST_IS_REGULAR))
    return nullptr;
  GError *err = nullptr;
  JsonNode *root = rtms::json_load_file (parser, p.c_str (), file_json_limits (), &err);
  if (!root) {
    g_warning ("%s/engagement.json not read: %s", log_safe (name_).c_str (),
        err->message);
    g_error_free (err);
    return nullptr;
  }
  return JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : nullptr;
}

void
EngagementDir::write_transcript (const std::string &id_key,
    const std::string &id_value, const std::string &stream_id,
    const std::string &started, const std::string &pipeline,
    const std::vector<Line> &lines, const std::string &footer,
    gint64 recording_ms) const
{
  std::string t;
  t += "Zoom RTMS transcript\n";
  t += std::string (id_key == "engagement_id" ? "Engagement" : "Meeting") +
      ": " + printable (id_value) + "\n";
  t += "RTMS stream: " + printable (stream_id) + "\n";
  t += "Started: " + started + "\n";
  t += "Pipeline: " + printable (pipeline) + "\n";
  t += "----------------------------------------\n";
  for (const Line &l : lines)
    t += "[" + hhmmss (l.offset_ms) + "] " + printable (l.speaker) + ": " +
        printable (l.text) + "\n";
  t += "----------------------------------------\n";
  t += footer;
  write_file (file ("transcript.txt"), t);
  std::vector<SubtitleLine> sl;
  for (const Line &l : lines)
    sl.push_back ({l.offset_ms, l.duration_ms, l.speaker, l.text});
  write_file (file ("transcript.vtt"), render_webvtt (sl, recording_ms));
  write_file (file ("transcript.srt"), render_srt (sl, recording_ms));
}

const char *const EngagementDir::kTranscriptFiles[3] = {"transcript.txt",
  "transcript.vtt", "transcript.srt"};

std::vector<EngagementDir::Line>
EngagementDir::transcript_lines (bool *found) const
{
  std::vector<Line> lines;
  g_autofree gchar *data = nullptr;
  if (found)
    *found = false;
  if (!g_file_get_contents (file ("transcript.jsonl").c_str (), &data, nullptr, nullptr))
    return lines;
  if (found)
    *found = true;
  std::map<gint64, size_t> by_sentence;
  g_auto (GStrv) rows = g_strsplit (data, "\n", -1);
  for (gchar **row = rows; *row; row++) {
    g_autoptr (JsonParser) parser = json_parser_new ();
    JsonNode *root = **row ? rtms::json_load (parser, *row, strlen (*row),
        file_json_limits (), nullptr) : nullptr;
    if (!root || !JSON_NODE_HOLDS_OBJECT (root))
      continue;             /* a line cut by the kill */
    JsonObject *o = json_node_get_object (root);
    Line l;
    l.offset_ms = json_object_get_int_member_with_default (o, "offset_ms", 0);
    l.speaker = json_object_get_string_member_with_default (o, "speaker", "");
    l.text = json_object_get_string_member_with_default (o, "text", "");
    l.duration_ms = json_object_get_int_member_with_default (o, "duration_ms", -1);
    if (l.speaker.empty ()) {
      std::string mode = json_object_get_string_member_with_default (o,
          "participant_mode", "");
      l.speaker = mode == "caller" ? "Customer" : mode == "callee" ? "Agent" :
          json_object_get_string_member_with_default (o, "channel", "");
    }
    gint64 id = json_object_get_int_member_with_default (o, "sentence_id", -1);
    auto it = id >= 0 ? by_sentence.find (id) : by_sentence.end ();
    if (it != by_sentence.end ()) {
      lines[it->second].text = l.text;      /* a revision replaces the text */
      if (l.duration_ms > 0)
        lines[it->second].duration_ms = l.duration_ms;
      continue;
    }
    if (id >= 0)
      by_sentence[id] = lines.size ();
    lines.push_back (std::move (l));
  }
  return lines;
}

int
EngagementDir::recover_transcript (JsonObject *ej) const
{
  bool found = false;
  std::vector<Line> lines = transcript_lines (&found);
  if (!found)
    return -1;
  const char *id_key = json_object_get_string_member_with_default (ej, "id_key",
      "engagement_id");
  std::string footer = "Ended: not recorded (the host stopped unexpectedly; "
      "recovered " + iso8601_utc (g_get_real_time ()) + ")\n" +
      "Lines: " + std::to_string (lines.size ()) + "\n";
  write_transcript (id_key, json_object_get_string_member_with_default (ej, id_key, ""),
      json_object_get_string_member_with_default (ej, "rtms_stream_id", ""),
      json_object_get_string_member_with_default (ej, "start_time", ""),
      json_object_get_string_member_with_default (ej, "pipeline", ""), lines, footer);
  /* engagement.json's "files" lists the transcripts (issue 14) */
  JsonArray *files = json_object_has_member (ej, "files") &&
      JSON_NODE_HOLDS_ARRAY (json_object_get_member (ej, "files")) ?
      json_object_get_array_member (ej, "files") : nullptr;
  if (!files) {
    files = json_array_new ();
    json_object_set_array_member (ej, "files", files);
  }
  for (const char *t : kTranscriptFiles) {
    bool listed = false;
    for (guint i = 0; i < json_array_get_length (files); i++) {
      JsonNode *n = json_array_get_element (files, i);
      if (JSON_NODE_HOLDS_OBJECT (n) && g_strcmp0 (json_object_get_string_member_with_default (
              json_node_get_object (n), "name", ""), t) == 0)
        listed = true;
    }
    if (!listed) {
      JsonObject *f = json_object_new ();
      json_object_set_string_member (f, "name", t);
      json_object_set_string_member (f, "kind", "transcript");
      json_array_add_object_element (files, f);
    }
  }
  return static_cast<int> (lines.size ());
}

bool
EngagementDir::repair_wavs () const
{
  bool repaired = false;
  g_autoptr (GDir) d = g_dir_open (dir_.c_str (), 0, nullptr);
  while (const gchar *n = d ? g_dir_read_name (d) : nullptr) {
    if (!g_str_has_suffix (n, ".wav"))
      continue;
    /* an empty file: the pipeline failed before wavenc wrote anything
     * (nothing to repair, nothing to warn about) */
    GStatBuf st;
    if (g_stat (file (n).c_str (), &st) == 0 && st.st_size == 0)
      continue;
    gboolean changed = FALSE;
    GError *err = nullptr;
    if (!wav_repair (file (n).c_str (), &changed, &err)) {
      g_warning ("engagement %s: %s", name_.c_str (), err->message);
      g_error_free (err);
    } else if (changed) {
      repaired = true;
    }
  }
  return repaired;
}

std::string
EngagementDir::part_name (const std::string &output, int k)
{
  gsize dot = output.rfind ('.');
  std::string stem = dot == std::string::npos || dot == 0 ? output : output.substr (0, dot);
  std::string ext = dot == std::string::npos || dot == 0 ? "" : output.substr (dot);
  return stem + ".part" + std::to_string (k) + ext;
}

bool
EngagementDir::move_outputs_aside (const std::vector<std::string> &outputs,
    int *parts, GError **error) const
{
  bool moved = false;
  for (const auto &o : outputs) {
    std::string from = file (o);
    if (!g_file_test (from.c_str (), G_FILE_TEST_IS_REGULAR))
      continue;
    if (g_str_has_suffix (o.c_str (), ".wav")) {
      GError *err = nullptr;
      if (!wav_repair (from.c_str (), nullptr, &err)) {
        g_warning ("engagement %s: %s", name_.c_str (), err->message);
        g_error_free (err);
      }
    }
    std::string to = file (part_name (o, *parts + 1));
    if (g_rename (from.c_str (), to.c_str ()) != 0) {
      int e = errno;
      g_set_error (error, ZHOST_ERROR, ERROR_IO, "cannot move %s aside: %s",
          from.c_str (), g_strerror (e));
      return false;
    }
    moved = true;
  }
  if (moved)
    (*parts)++;
  return true;
}

gint64
EngagementDir::recorded_samples (const std::vector<std::string> &outputs,
    int parts) const
{
  for (const auto &o : outputs) {
    if (!g_str_has_suffix (o.c_str (), ".wav"))
      continue;
    guint64 total = 0;
    for (int k = 1; k <= parts; k++) {
      std::string p = file (part_name (o, k));
      if (!g_file_test (p.c_str (), G_FILE_TEST_EXISTS))
        continue;           /* that pipeline wrote nothing to this output */
      WavInfo info;
      GError *err = nullptr;
      if (!wav_info (p.c_str (), &info, &err)) {
        g_warning ("engagement %s: %s", name_.c_str (), err->message);
        g_error_free (err);
        return -1;
      }
      total += info.frames ();
    }
    return static_cast<gint64> (total);
  }
  return -1;
}

bool
EngagementDir::merge_parts (const std::vector<std::string> &outputs, int parts,
    std::vector<gint64> *leading_silence, GError **error,
    const std::string &opus_settings) const
{
  bool ok = true;
  bool first_wav = true;
  for (const auto &o : outputs) {
    std::vector<std::string> files;
    for (int k = 1; k <= parts; k++) {
      std::string p = file (part_name (o, k));
      if (g_file_test (p.c_str (), G_FILE_TEST_IS_REGULAR))
        files.push_back (p);
    }
    if (files.empty ())
      continue;
    std::string out = file (o);
    bool have_out = g_file_test (out.c_str (), G_FILE_TEST_IS_REGULAR);
    if (have_out)
      files.push_back (out);
    if (g_str_has_suffix (o.c_str (), ".wav")) {
      if (first_wav && leading_silence) {
        leading_silence->clear ();
        for (gsize i = 1; i < files.size (); i++)
          leading_silence->push_back (wav_leading_zero_frames (files[i].c_str ()));
      }
      first_wav = false;
      GError *err = nullptr;
      if (files.size () == 1) {
        if (g_rename (files[0].c_str (), out.c_str ()) != 0)
          g_set_error (&err, ZHOST_ERROR, ERROR_IO, "cannot rename %s",
              files[0].c_str ());
      } else if (wav_concat (files, out, &err)) {
        for (gsize i = 0; i + (have_out ? 1 : 0) < files.size (); i++)
          g_remove (files[i].c_str ());
      }
      if (err) {
        g_warning ("engagement %s: %s (parts kept)", name_.c_str (), err->message);
        if (ok)
          g_propagate_error (error, err);
        else
          g_error_free (err);
        ok = false;
      }
      continue;
    }
    if (g_str_has_suffix (o.c_str (), ".opus") || g_str_has_suffix (o.c_str (), ".ogg")) {
      GError *err = nullptr;
      guint64 ns = 0;
      /* a pipeline stopped before its first page left an empty file: no
       * audio, nothing to decode (oggdemux would refuse it) */
      std::vector<std::string> empty;
      for (auto it = files.begin (); it != files.end ();) {
        GStatBuf st;
        if (files.size () > 1 && g_stat (it->c_str (), &st) == 0 && st.st_size == 0) {
          if (*it != out)
            empty.push_back (*it);
          it = files.erase (it);
        } else {
          ++it;
        }
      }
      if (have_out && std::find (files.begin (), files.end (), out) == files.end ()) {
        /* the output itself was empty: the merged parts replace it */
        have_out = false;
      }
      if (files.size () == 1) {
        if (g_rename (files[0].c_str (), out.c_str ()) != 0)
          g_set_error (&err, ZHOST_ERROR, ERROR_IO, "cannot rename %s",
              files[0].c_str ());
      } else if (ogg_opus_concat (files, out, opus_settings, 0, &ns, &err)) {
        for (gsize i = 0; i + (have_out ? 1 : 0) < files.size (); i++)
          g_remove (files[i].c_str ());
        g_message ("engagement %s: %zu Ogg/Opus piece(s) merged into %s (%.3f s)",
            name_.c_str (), files.size (), o.c_str (), ns / 1e9);
      }
      if (!err)
        for (const auto &e : empty)
          g_remove (e.c_str ());
      if (err) {
        g_warning ("engagement %s: %s: %s (parts kept)", name_.c_str (), o.c_str (),
            err->message);
        if (ok)
          g_set_error (error, ZHOST_ERROR, ERROR_IO, "%s: %s; parts kept (%s …)",
              o.c_str (), err->message, part_name (o, 1).c_str ());
        g_error_free (err);
        ok = false;
      }
      continue;
    }
    if (ok)
      g_set_error (error, ZHOST_ERROR, ERROR_IO,
          "%s: merging parts of this format is not supported; parts kept "
          "(%s …)", o.c_str (), part_name (o, 1).c_str ());
    g_warning ("engagement %s: %s: parts kept, not merged", name_.c_str (), o.c_str ());
    ok = false;
  }
  return ok;
}

} // namespace zhost
