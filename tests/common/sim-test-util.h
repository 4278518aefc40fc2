/* Test helpers (sim and client suites): spawn zoomrtms-sim, read its ready
 * file, and a raw libsoup WebSocket client that speaks RTMS by hand (JSON via json-glib,
 * independent of the sim's encoders). */
#pragma once

#include <gio/gio.h>
#include <glib.h>
#include <gtest/gtest.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace simtest {

/* Iterates the thread-default context until @done or @timeout_ms. */
inline bool
spin_until (const std::function<bool ()> &done, int timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  while (!done ()) {
    if (g_get_monotonic_time () > deadline)
      return false;
    g_main_context_iteration (nullptr, FALSE);
    if (!done ())
      g_usleep (500);
  }
  return true;
}

struct JsonDoc {
  JsonParser *parser = nullptr;
  JsonObject *obj = nullptr;
  JsonDoc () = default;
  explicit JsonDoc (const std::string &text)
  {
    parser = json_parser_new ();
    if (json_parser_load_from_data (parser, text.c_str (), (gssize) text.size (),
            nullptr) && JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
      obj = json_node_get_object (json_parser_get_root (parser));
  }
  JsonDoc (const JsonDoc &) = delete;
  JsonDoc &operator= (const JsonDoc &) = delete;
  ~JsonDoc ()
  {
    if (parser)
      g_object_unref (parser);
  }
  gint64 integer (const char *k, gint64 def = -1) const
  {
    return obj ? json_object_get_int_member_with_default (obj, k, def) : def;
  }
  std::string str (const char *k) const
  {
    return obj ? json_object_get_string_member_with_default (obj, k, "") : "";
  }
  JsonObject *object (const char *k) const
  {
    if (!obj || !json_object_has_member (obj, k))
      return nullptr;
    JsonNode *n = json_object_get_member (obj, k);
    return JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : nullptr;
  }
};

inline gint64
obj_int (JsonObject *o, const char *k, gint64 def = -1)
{
  return o ? json_object_get_int_member_with_default (o, k, def) : def;
}

inline std::string
obj_str (JsonObject *o, const char *k)
{
  return o ? json_object_get_string_member_with_default (o, k, "") : "";
}

/* The running sim process. */
class Sim {
 public:
  /* @expect_ready: false for the commands that write no ready file
   * (validate, webhook) */
  explicit Sim (const std::vector<std::string> &args, bool expect_ready = true)
  {
    tmpdir_ = g_dir_make_tmp ("zoomrtms-sim-test-XXXXXX", nullptr);
    ready_ = std::string (tmpdir_) + "/ready.json";
    const char *build = g_getenv ("ZOOMRTMS_BUILD_DIR");
    std::string exe = std::string (build ? build : ".") +
        "/src/sim/zoomrtms-sim";
    std::vector<std::string> argv_s = { exe };
    argv_s.insert (argv_s.end (), args.begin (), args.end ());
    argv_s.push_back ("--ready-file");
    argv_s.push_back (ready_);
    std::vector<const char *> argv;
    for (auto &a : argv_s)
      argv.push_back (a.c_str ());
    argv.push_back (nullptr);
    g_autoptr (GError) err = nullptr;
    proc_ = g_subprocess_newv (argv.data (), G_SUBPROCESS_FLAGS_NONE, &err);
    if (!proc_) {
      ADD_FAILURE () << "cannot spawn " << exe << ": " << err->message;
      return;
    }
    g_subprocess_wait_async (proc_, nullptr, [](GObject *, GAsyncResult *,
            gpointer d) { *static_cast<bool *> (d) = true; }, exited_.get ());
    if (!expect_ready)
      return;
    bool ok = spin_until ([this] {
          return g_file_test (ready_.c_str (), G_FILE_TEST_EXISTS) || *exited_;
        }, 15000);
    if (!ok || !g_file_test (ready_.c_str (), G_FILE_TEST_EXISTS)) {
      ADD_FAILURE () << "sim did not write its ready file";
      return;
    }
    g_autofree char *text = nullptr;
    g_file_get_contents (ready_.c_str (), &text, nullptr, nullptr);
    ready_text_ = text ? text : "";
    ready_doc_ = std::make_unique<JsonDoc> (ready_text_);
  }
  ~Sim ()
  {
    if (proc_) {
      if (!*exited_)
        g_subprocess_force_exit (proc_);
      spin_until ([this] { return *exited_; }, 5000);
      g_object_unref (proc_);
    }
    g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", tmpdir_);
    if (system (cmd) != 0)
      g_warning ("cannot remove %s", tmpdir_);
    g_free (tmpdir_);
  }
  bool exited () const { return *exited_; }
  /* sends @signum (e.g. SIGSTOP, SIGCONT) to the sim process */
  void send_signal (int signum)
  {
    if (proc_)
      g_subprocess_send_signal (proc_, signum);
  }
  /* waits for the process to exit; returns its exit status (-1 timeout) */
  int wait_exit (int timeout_ms)
  {
    if (!spin_until ([this] { return *exited_; }, timeout_ms))
      return -1;
    return g_subprocess_get_if_exited (proc_) ?
        g_subprocess_get_exit_status (proc_) : -2;
  }
  JsonObject *stream (int i = 0)
  {
    if (!ready_doc_ || !ready_doc_->obj)
      return nullptr;
    JsonArray *a = json_object_get_array_member (ready_doc_->obj, "streams");
    return json_array_get_object_element (a, i);
  }
  std::string signaling_url () { return ready_doc_->str ("signaling_url"); }
  std::string dir () const { return tmpdir_; }

 private:
  char *tmpdir_ = nullptr;
  std::string ready_, ready_text_;
  std::unique_ptr<JsonDoc> ready_doc_;
  GSubprocess *proc_ = nullptr;
  /* heap: the wait callback may run after a failed constructor returned */
  std::shared_ptr<bool> exited_ = std::make_shared<bool> (false);
};

/* A WebSocket client on the thread-default context. */
class Ws {
 public:
  explicit Ws (const std::string &url)
  {
    session_ = soup_session_new ();
    SoupMessage *msg = soup_message_new (SOUP_METHOD_GET, url.c_str ());
    soup_session_websocket_connect_async (session_, msg, nullptr, nullptr,
        G_PRIORITY_DEFAULT, nullptr, on_connected, this);
    g_object_unref (msg);
    spin_until ([this] { return conn_ || failed_; }, 10000);
  }
  ~Ws ()
  {
    if (conn_) {
      g_signal_handlers_disconnect_by_data (conn_, this);
      if (soup_websocket_connection_get_state (conn_) ==
          SOUP_WEBSOCKET_STATE_OPEN)
        soup_websocket_connection_close (conn_, 1000, nullptr);
      g_object_unref (conn_);
    }
    g_object_unref (session_);
  }
  bool ok () const { return conn_ != nullptr; }
  SoupWebsocketConnection *connection () const { return conn_; }
  bool closed () const { return closed_; }
  void send (const std::string &text)
  {
    ASSERT_TRUE (conn_);
    soup_websocket_connection_send_text (conn_, text.c_str ());
  }
  /* next message (any type), "" on timeout */
  std::string next (int timeout_ms = 5000)
  {
    spin_until ([this] { return !queue_.empty () || closed_; }, timeout_ms);
    if (queue_.empty ())
      return "";
    std::string m = queue_.front ();
    queue_.pop_front ();
    return m;
  }
  /* next message with msg_type @type, skipping others (kept in skipped) */
  std::string next_of (int type, int timeout_ms = 5000)
  {
    gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
    while (g_get_monotonic_time () < deadline) {
      int left = (int) ((deadline - g_get_monotonic_time ()) / 1000);
      std::string m = next (MAX (left, 1));
      if (m.empty ())
        return "";
      JsonDoc d (m);
      if (d.integer ("msg_type") == type)
        return m;
      skipped.push_back (m);
    }
    return "";
  }
  /* client-initiated close; keeps receiving until the server's close */
  bool close_and_wait (int timeout_ms)
  {
    if (conn_ && soup_websocket_connection_get_state (conn_) ==
        SOUP_WEBSOCKET_STATE_OPEN)
      soup_websocket_connection_close (conn_, 1000, nullptr);
    return wait_closed (timeout_ms);
  }
  bool wait_closed (int timeout_ms)
  {
    return spin_until ([this] { return closed_; }, timeout_ms);
  }
  std::deque<std::string> &queue () { return queue_; }
  std::vector<std::string> skipped;
  /* optional hook run for every message as it arrives (e.g. echo keep-alives) */
  std::function<void (const std::string &)> on_message;

 private:
  static void on_connected (GObject *src, GAsyncResult *res, gpointer data)
  {
    auto *self = static_cast<Ws *> (data);
    g_autoptr (GError) err = nullptr;
    self->conn_ = soup_session_websocket_connect_finish (SOUP_SESSION (src),
        res, &err);
    if (!self->conn_) {
      self->failed_ = true;
      return;
    }
    soup_websocket_connection_set_max_incoming_payload_size (self->conn_,
        4 * 1024 * 1024);
    g_signal_connect (self->conn_, "message", G_CALLBACK (on_msg), self);
    g_signal_connect (self->conn_, "closed", G_CALLBACK (on_closed), self);
  }
  static void on_msg (SoupWebsocketConnection *, gint, GBytes *b, gpointer d)
  {
    auto *self = static_cast<Ws *> (d);
    gsize len = 0;
    const char *p = (const char *) g_bytes_get_data (b, &len);
    std::string m (p, len);
    if (self->on_message)
      self->on_message (m);
    self->queue_.push_back (std::move (m));
  }
  static void on_closed (SoupWebsocketConnection *, gpointer d)
  {
    static_cast<Ws *> (d)->closed_ = true;
  }
  SoupSession *session_ = nullptr;
  SoupWebsocketConnection *conn_ = nullptr;
  bool failed_ = false, closed_ = false;
  std::deque<std::string> queue_;
};

} // namespace simtest
