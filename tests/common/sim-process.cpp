#include "sim-process.h"

#include <gtest/gtest.h>
#include <glib/gstdio.h>

#include <csignal>

namespace testutil {

TempDir::TempDir ()
{
  g_autoptr (GError) error = nullptr;
  g_autofree char *p = g_dir_make_tmp ("zoomrtms-test-XXXXXX", &error);
  if (p)
    path_ = p;
}

static void
remove_tree (const std::string &path)
{
  GDir *dir = g_dir_open (path.c_str (), 0, nullptr);
  if (dir) {
    const char *name;
    while ((name = g_dir_read_name (dir))) {
      std::string child = path + "/" + name;
      if (g_file_test (child.c_str (), G_FILE_TEST_IS_DIR) &&
          !g_file_test (child.c_str (), G_FILE_TEST_IS_SYMLINK))
        remove_tree (child);
      else
        g_unlink (child.c_str ());
    }
    g_dir_close (dir);
  }
  g_rmdir (path.c_str ());
}

TempDir::~TempDir ()
{
  if (!path_.empty () && !g_getenv ("ZOOMRTMS_KEEP_TEST_FILES"))
    remove_tree (path_);
}

std::string
build_path (const std::string &relative)
{
  const char *b = g_getenv ("ZOOMRTMS_BUILD_DIR");
  return std::string (b ? b : ".") + "/" + relative;
}

std::string
read_file (const std::string &path)
{
  g_autofree char *data = nullptr;
  gsize len = 0;
  if (!g_file_get_contents (path.c_str (), &data, &len, nullptr))
    return std::string ();
  return std::string (data, len);
}

static std::string
member_string (JsonObject *o, const char *name)
{
  if (!json_object_has_member (o, name))
    return std::string ();
  JsonNode *n = json_object_get_member (o, name);
  if (JSON_NODE_HOLDS_VALUE (n) &&
      json_node_get_value_type (n) == G_TYPE_STRING)
    return json_node_get_string (n);
  return std::string ();
}

SimProcess::SimProcess (const std::vector<std::string> &args)
{
  std::string ready = dir_.file ("ready.json");
  std::vector<std::string> argv_s;
  argv_s.push_back (build_path ("src/sim/zoomrtms-sim"));
  argv_s.insert (argv_s.end (), args.begin (), args.end ());
  for (const char *a : { "--port", "0", "--ready-file" })
    argv_s.push_back (a);
  argv_s.push_back (ready);
  std::vector<const char *> argv;
  for (auto &a : argv_s)
    argv.push_back (a.c_str ());
  argv.push_back (nullptr);

  g_autoptr (GError) error = nullptr;
  proc_ = g_subprocess_newv (argv.data (), G_SUBPROCESS_FLAGS_NONE, &error);
  if (!proc_) {
    ADD_FAILURE () << "cannot start zoomrtms-sim: " << error->message;
    return;
  }
  for (int i = 0; i < 200; i++) {
    std::string text = read_file (ready);
    g_autoptr (JsonParser) parser = json_parser_new ();
    if (!text.empty () &&
        json_parser_load_from_data (parser, text.c_str (), text.size (), nullptr)) {
      JsonObject *root = json_node_get_object (json_parser_get_root (parser));
      signaling_url_ = member_string (root, "signaling_url");
      JsonArray *streams = json_object_get_array_member (root, "streams");
      for (guint s = 0; streams && s < json_array_get_length (streams); s++) {
        JsonObject *so = json_array_get_object_element (streams, s);
        SimStream st;
        st.engagement_id = member_string (so, "engagement_id");
        st.rtms_stream_id = member_string (so, "rtms_stream_id");
        st.server_urls = member_string (so, "server_urls");
        JsonArray *chs = json_object_has_member (so, "channels") ?
            json_object_get_array_member (so, "channels") : nullptr;
        for (guint c = 0; chs && c < json_array_get_length (chs); c++) {
          JsonObject *co = json_array_get_object_element (chs, c);
          st.channels.push_back ({ member_string (co, "channel_id"),
                member_string (co, "participant_mode"),
                member_string (co, "role") });
        }
        streams_.push_back (st);
      }
      ok_ = true;
      return;
    }
    g_usleep (100 * 1000);
  }
  ADD_FAILURE () << "zoomrtms-sim wrote no ready file within 20 s";
}

int
SimProcess::wait (int timeout_s)
{
  if (!proc_)
    return -1;
  /* GSubprocess reaps the child on GLib's worker thread: poll for that. */
  for (int i = 0; i < timeout_s * 20 && g_subprocess_get_identifier (proc_); i++)
    g_usleep (50 * 1000);
  if (g_subprocess_get_identifier (proc_))
    return -1;
  return g_subprocess_get_if_exited (proc_) ?
      g_subprocess_get_exit_status (proc_) : -1;
}

SimProcess::~SimProcess ()
{
  if (proc_) {
    if (g_subprocess_get_identifier (proc_) != nullptr) {
      g_subprocess_send_signal (proc_, SIGTERM);
      g_subprocess_wait (proc_, nullptr, nullptr);
    }
    g_object_unref (proc_);
  }
}

} // namespace testutil
