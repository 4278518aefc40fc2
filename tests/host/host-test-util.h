/* Helpers of the host's end-to-end tests (suite 'host'): temporary
 * directories, child processes with their log, a running zoomrtms-host, HTTP
 * requests and signed webhooks. Used by test-host-e2e.cpp and
 * test-host-hostile.cpp. */
#pragma once

#include "rtms-auth.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <gtest/gtest.h>

#include <sys/resource.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace hosttest {

inline const char *kClientId = "test_client_id";
inline const char *kClientSecret = "test_client_secret";
inline const char *kSecretToken = "test_secret_token";

inline std::string
env_or (const char *name, const char *dflt)
{
  const char *v = g_getenv (name);
  return v ? v : dflt;
}

inline std::string
build_path (const char *rel)
{
  g_autofree gchar *p = g_build_filename (env_or ("ZOOMRTMS_BUILD_DIR", ".").c_str (),
      rel, nullptr);
  return p;
}

inline std::string
source_path (const char *rel)
{
  g_autofree gchar *p = g_build_filename (env_or ("ZOOMRTMS_SOURCE_DIR", ".").c_str (),
      rel, nullptr);
  return p;
}

inline std::string
host_bin ()
{
  return build_path ("src/host/zoomrtms-host");
}

inline std::string
sim_bin ()
{
  return build_path ("src/sim/zoomrtms-sim");
}

inline std::string
read_file (const std::string &path)
{
  g_autofree gchar *c = nullptr;
  gsize len = 0;
  if (!g_file_get_contents (path.c_str (), &c, &len, nullptr))
    return "";
  return std::string (c, len);
}

inline void
rm_rf (const std::string &path)
{
  if (g_file_test (path.c_str (), G_FILE_TEST_IS_DIR) &&
      !g_file_test (path.c_str (), G_FILE_TEST_IS_SYMLINK)) {
    g_autoptr (GDir) d = g_dir_open (path.c_str (), 0, nullptr);
    while (const gchar *n = d ? g_dir_read_name (d) : nullptr) {
      g_autofree gchar *f = g_build_filename (path.c_str (), n, nullptr);
      rm_rf (f);
    }
    g_rmdir (path.c_str ());
  } else {
    g_remove (path.c_str ());
  }
}

struct TempDir {
  std::string path;
  TempDir ()
  {
    g_autofree gchar *p = g_dir_make_tmp ("zoomrtms-host-e2e-XXXXXX", nullptr);
    path = p;
  }
  ~TempDir ()
  {
    if (!::testing::Test::HasFailure ())
      rm_rf (path);
    else
      g_printerr ("keeping %s for inspection\n", path.c_str ());
  }
  std::string operator/ (const std::string &rel) const
  {
    g_autofree gchar *p = g_build_filename (path.c_str (), rel.c_str (), nullptr);
    return p;
  }
};

/* The entries of @path, sorted; ".state" (the host's default state
 * directory inside the output root, host-journal.h) is not listed. */
inline std::vector<std::string>
list_dir (const std::string &path)
{
  std::vector<std::string> v;
  g_autoptr (GDir) d = g_dir_open (path.c_str (), 0, nullptr);
  while (const gchar *n = d ? g_dir_read_name (d) : nullptr)
    if (!g_str_equal (n, ".state"))
      v.push_back (n);
  std::sort (v.begin (), v.end ());
  return v;
}

/* Iterates the default main context until @pred or @timeout_ms. */
inline bool
spin_until (const std::function<bool ()> &pred, int timeout_ms)
{
  gint64 end = g_get_monotonic_time () + static_cast<gint64> (timeout_ms) * 1000;
  while (!pred ()) {
    if (g_get_monotonic_time () > end)
      return false;
    while (g_main_context_iteration (nullptr, FALSE)) {
    }
    g_usleep (10000);
  }
  return true;
}

/* A child process with its output in a log file. */
class Proc {
 public:
  /* @nofile > 0: RLIMIT_NOFILE (soft and hard) of the child */
  Proc (const std::vector<std::string> &argv, const std::string &cwd,
      const std::string &log, const std::vector<std::pair<std::string, std::string>> &env = {},
      int nofile = 0)
      : log_ (log)
  {
    g_autoptr (GSubprocessLauncher) l = g_subprocess_launcher_new (
        G_SUBPROCESS_FLAGS_STDERR_MERGE);
    if (nofile > 0)
      g_subprocess_launcher_set_child_setup (l, [] (gpointer d) {
            /* in the child, before exec: async-signal-safe calls only */
            struct rlimit rl;
            rl.rlim_cur = rl.rlim_max = static_cast<rlim_t> (GPOINTER_TO_INT (d));
            setrlimit (RLIMIT_NOFILE, &rl);
          }, GINT_TO_POINTER (nofile), nullptr);
    g_subprocess_launcher_set_cwd (l, cwd.c_str ());
    g_subprocess_launcher_set_stdout_file_path (l, log.c_str ());
    for (const auto &kv : env) {
      if (kv.second.empty ())
        g_subprocess_launcher_unsetenv (l, kv.first.c_str ());
      else
        g_subprocess_launcher_setenv (l, kv.first.c_str (), kv.second.c_str (), TRUE);
    }
    std::vector<const gchar *> args;
    for (const auto &a : argv)
      args.push_back (a.c_str ());
    args.push_back (nullptr);
    GError *err = nullptr;
    proc_ = g_subprocess_launcher_spawnv (l, args.data (), &err);
    if (!proc_) {
      ADD_FAILURE () << "spawn " << argv[0] << ": " << err->message;
      g_error_free (err);
      return;
    }
    g_subprocess_wait_async (proc_, nullptr, [] (GObject *, GAsyncResult *, gpointer d) {
          static_cast<Proc *> (d)->exited_ = true;
        }, this);
  }
  ~Proc ()
  {
    if (proc_ && !exited_) {
      g_subprocess_force_exit (proc_);
      spin_until ([this] { return exited_; }, 5000);
    }
    if (proc_)
      g_object_unref (proc_);
  }
  bool ok () const { return proc_ != nullptr; }
  bool wait (int timeout_ms)
  {
    return proc_ && spin_until ([this] { return exited_; }, timeout_ms);
  }
  bool exited () const { return exited_; }
  /* the child's pid, "" if not running */
  std::string pid () const
  {
    const char *id = proc_ ? g_subprocess_get_identifier (proc_) : nullptr;
    return id ? id : "";
  }
  void send_signal (int sig)
  {
    if (proc_ && !exited_)
      g_subprocess_send_signal (proc_, sig);
  }
  /* exit status, or -1 if killed by a signal / still running */
  int exit_status () const
  {
    if (!proc_ || !exited_ || !g_subprocess_get_if_exited (proc_))
      return -1;
    return g_subprocess_get_exit_status (proc_);
  }
  std::string log () const { return read_file (log_); }

 private:
  GSubprocess *proc_ = nullptr;
  std::string log_;
  bool exited_ = false;
};

inline std::vector<std::pair<std::string, std::string>>
cred_env ()
{
  return {{"ZOOM_APP_CLIENT_ID", kClientId}, {"ZOOM_APP_CLIENT_SECRET", kClientSecret},
      {"ZOOM_SECRET_TOKEN", kSecretToken}, {"PORT", ""}};
}

inline JsonNode *
parse_json (const std::string &text)
{
  g_autoptr (JsonParser) p = json_parser_new ();
  if (!json_parser_load_from_data (p, text.data (), static_cast<gssize> (text.size ()),
          nullptr))
    return nullptr;
  return json_parser_steal_root (p);
}

struct JsonDoc {
  JsonNode *node = nullptr;
  explicit JsonDoc (const std::string &text) : node (parse_json (text)) {}
  ~JsonDoc () { if (node) json_node_unref (node); }
  JsonObject *obj () const
  {
    return node && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : nullptr;
  }
};

/* A running zoomrtms-host. */
class Host {
 public:
  /* @env: added to the credentials; @nofile: see Proc */
  Host (const TempDir &tmp, const std::vector<std::string> &extra = {},
      const std::string &name = "host",
      const std::vector<std::pair<std::string, std::string>> &env = {},
      int nofile = 0)
      : out_ (tmp / "out"), ready_ (tmp / (name + "-ready.json"))
  {
    std::vector<std::string> argv = {host_bin (), "--port", "0", "--ready-file", ready_,
        "--output-root", out_, "--pipeline-dir", source_path ("pipelines"),
        "--stop-timeout-ms", "5000"};
    argv.insert (argv.end (), extra.begin (), extra.end ());
    g_remove (ready_.c_str ());
    auto all_env = cred_env ();
    all_env.insert (all_env.end (), env.begin (), env.end ());
    proc_ = std::make_unique<Proc> (argv, tmp.path, tmp / (name + ".log"), all_env,
        nofile);
    bool up = spin_until ([this] {
          return proc_->exited () || g_file_test (ready_.c_str (), G_FILE_TEST_EXISTS);
        }, 15000);
    JsonDoc d (read_file (ready_));
    if (up && d.obj ())
      port_ = static_cast<int> (json_object_get_int_member (d.obj (), "port"));
  }
  int port () const { return port_; }
  std::string url (const char *path) const
  {
    return "http://127.0.0.1:" + std::to_string (port_) + path;
  }
  const std::string &out () const { return out_; }
  Proc &proc () { return *proc_; }

 private:
  std::string out_, ready_;
  std::unique_ptr<Proc> proc_;
  int port_ = 0;
};

struct Resp {
  guint status = 0;             /* 0: no answer (refused, timed out) */
  std::string body;
  std::string www_authenticate;
};

inline Resp
http (const char *method, const std::string &url, const std::string &body = "",
    const std::vector<std::pair<std::string, std::string>> &headers = {})
{
  /* a bound, so that a host that stopped accepting fails the test */
  g_autoptr (SoupSession) s = soup_session_new_with_options ("timeout", 20, nullptr);
  g_autoptr (SoupMessage) m = soup_message_new (method, url.c_str ());
  Resp r;
  if (!m)
    return r;
  for (const auto &h : headers)
    soup_message_headers_replace (soup_message_get_request_headers (m), h.first.c_str (),
        h.second.c_str ());
  if (!body.empty () || g_str_equal (method, "POST")) {
    g_autoptr (GBytes) b = g_bytes_new (body.data (), body.size ());
    soup_message_set_request_body_from_bytes (m, "application/json", b);
  }
  GError *err = nullptr;
  g_autoptr (GBytes) out = soup_session_send_and_read (s, m, nullptr, &err);
  if (!out) {
    g_clear_error (&err);
    return r;
  }
  r.status = soup_message_get_status (m);
  if (const char *w = soup_message_headers_get_one (soup_message_get_response_headers (m),
          "WWW-Authenticate"))
    r.www_authenticate = w;
  gsize len = 0;
  const char *d = static_cast<const char *> (g_bytes_get_data (out, &len));
  r.body.assign (d ? d : "", len);
  return r;
}

inline Resp
post_webhook (const Host &h, const std::string &body, gint64 ts_s = 0,
    const char *token = kSecretToken, const char *path = "/webhook")
{
  if (ts_s == 0)
    ts_s = g_get_real_time () / G_USEC_PER_SEC;
  std::string ts = std::to_string (ts_s);
  std::string sig = rtms::webhook_signature (token, ts, body.data (), body.size ());
  return http ("POST", h.url (path), body,
      {{"x-zm-request-timestamp", ts}, {"x-zm-signature", sig}});
}

/* SIGTERM: the host finalizes everything and exits 0. */
inline void
expect_clean_exit (Proc &host)
{
  host.send_signal (SIGTERM);
  ASSERT_TRUE (host.wait (10000));
  EXPECT_EQ (host.exit_status (), 0);
}

} // namespace hosttest
