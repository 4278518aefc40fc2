/* zoomrtms-host — engagement history from disk. See host-history.h. */
#include "host-history.h"

#include "host-common.h"
#include "host-template.h"

#include <glib/gstdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <queue>

namespace zhost {

History::~History ()
{
  for (JsonNode *n : engagements)
    json_node_unref (n);
}

namespace {

struct Candidate {
  gint64 mtime_ns;
  std::string name;
  gsize size;
  /* newer first; equal times by name, so the order is stable */
  bool operator< (const Candidate &o) const
  {
    return mtime_ns != o.mtime_ns ? mtime_ns > o.mtime_ns : name < o.name;
  }
};

JsonNode *
error_entry (const std::string &name, const std::string &why)
{
  JsonObject *o = json_object_new ();
  json_object_set_string_member (o, "dir_name", name.c_str ());
  json_object_set_string_member (o, "error", why.c_str ());
  JsonNode *n = json_node_new (JSON_NODE_OBJECT);
  json_node_take_object (n, o);
  return n;
}

/* (transfer full) the object of @fd (@name/engagement.json, opened with
 * open_confined()), or an error entry */
JsonNode *
load_entry (int fd, const std::string &name)
{
  rtms::JsonLimits lim = file_json_limits ();
  lim.max_bytes = kHistoryFileMaxBytes;
  g_autoptr (JsonParser) parser = json_parser_new ();
  GError *err = nullptr;
  std::string what = name + "/engagement.json";
  JsonNode *root = rtms::json_load_fd (parser, fd, what.c_str (), lim, &err);
  if (!root || !JSON_NODE_HOLDS_OBJECT (root)) {
    std::string why = err ? err->message : "not a JSON object";
    g_clear_error (&err);
    return error_entry (name, "engagement.json not read: " + log_safe (why, 200));
  }
  JsonObject *o = json_node_get_object (root);
  if (!json_object_has_member (o, "dir_name"))
    json_object_set_string_member (o, "dir_name", name.c_str ());
  return json_node_copy (root);
}

} // namespace

void
read_history (const std::string &output_root, gsize limit,
    const std::set<std::string> &skip, History *out)
{
  limit = std::clamp<gsize> (limit, 1, kHistoryMaxLimit);
  /* a max-heap by "newness order": its top is the oldest kept */
  std::priority_queue<Candidate> keep;
  g_autoptr (GDir) d = g_dir_open (output_root.c_str (), 0, nullptr);
  while (const gchar *name = d ? g_dir_read_name (d) : nullptr) {
    if (name[0] == '.' || skip.count (name))
      continue;
    /* not through a symlink (the directory or the file): nothing outside
     * the output root */
    int fd = open_confined (output_root, name, "engagement.json");
    if (fd < 0)
      continue;
    struct stat st;
    int r = fstat (fd, &st);
    close (fd);
    if (r != 0)
      continue;
    out->found++;
    Candidate c {static_cast<gint64> (st.st_mtim.tv_sec) * 1000000000 +
          st.st_mtim.tv_nsec, name, static_cast<gsize> (st.st_size)};
    keep.push (c);
    if (keep.size () > limit)
      keep.pop ();
  }
  std::vector<Candidate> v;
  while (!keep.empty ()) {
    v.push_back (keep.top ());
    keep.pop ();
  }
  std::sort (v.begin (), v.end ());
  gsize bytes = 0;
  for (const auto &c : v) {
    if (bytes + std::min (c.size, kHistoryFileMaxBytes) > kHistoryMaxBytes)
      break;
    bytes += std::min (c.size, kHistoryFileMaxBytes);
    int fd = open_confined (output_root, c.name, "engagement.json");
    if (fd < 0)
      continue;
    out->engagements.push_back (load_entry (fd, c.name));
    close (fd);
  }
  out->more = out->found > out->engagements.size ();
}

JsonNode *
read_engagement_from_disk (const std::string &output_root, const std::string &id)
{
  for (const std::string &name : {id, sanitize_engagement_id (id)}) {
    /* only a name sanitize_engagement_id() could have made: no '/', no '..' */
    if (name.empty () || name[0] == '.' || sanitize_engagement_id (name) != name)
      continue;
    int fd = open_confined (output_root, name, "engagement.json");
    if (fd >= 0) {
      JsonNode *n = load_entry (fd, name);
      close (fd);
      return n;
    }
  }
  return nullptr;
}

} // namespace zhost
