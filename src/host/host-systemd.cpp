/* zoomrtms-host — credentials and sd_notify (see host-systemd.h). */
#include "host-systemd.h"

#include "host-common.h"

#include "config.h"

#include <glib-unix.h>
#include <csignal>
#include <cstring>

#if HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

namespace zhost {

const CredentialName kCredentialNames[5] = {
  {"zoom-client-id", "ZOOM_APP_CLIENT_ID"},
  {"zoom-client-secret", "ZOOM_APP_CLIENT_SECRET"},
  {"zoom-secret-token", "ZOOM_SECRET_TOKEN"},
  /* [upload] (issue 13) */
  {"aws-access-key-id", "AWS_ACCESS_KEY_ID"},
  {"aws-secret-access-key", "AWS_SECRET_ACCESS_KEY"},
};

bool
load_credentials (EnvMap *env, std::vector<std::string> *loaded, GError **error)
{
  const char *dir = g_getenv ("CREDENTIALS_DIRECTORY");
  if (!dir || !*dir)
    return true;
  for (const auto &c : kCredentialNames) {
    g_autofree gchar *path = g_build_filename (dir, c.credential, nullptr);
    if (!g_file_test (path, G_FILE_TEST_EXISTS))
      continue;
    g_autofree gchar *text = nullptr;
    gsize len = 0;
    GError *err = nullptr;
    if (!g_file_get_contents (path, &text, &len, &err)) {
      /* err names the path and errno, never the content */
      g_set_error (error, ZHOST_ERROR, ERROR_CONFIG,
          "cannot read credential %s: %s", c.credential, err->message);
      g_error_free (err);
      return false;
    }
    std::string value (text, len);
    memset (text, 0, len);
    if (!value.empty () && value.back () == '\n')
      value.pop_back ();
    if (!value.empty () && value.back () == '\r')
      value.pop_back ();
    if (value.empty ()) {
      g_set_error (error, ZHOST_ERROR, ERROR_CONFIG,
          "credential %s (%s) is empty", c.credential, path);
      return false;
    }
    (*env)[c.variable] = std::move (value);
    if (loaded)
      loaded->push_back (c.credential);
  }
  return true;
}

#if HAVE_LIBSYSTEMD
namespace {

struct NotifyState {
  bool ready = false;
  bool stopping = false;
};
NotifyState notify_state;

gboolean
watchdog_cb (gpointer)
{
  sd_notify (0, "WATCHDOG=1");
  return G_SOURCE_CONTINUE;
}

gboolean
stop_signal_cb (gpointer)
{
  service_notify_stopping ();
  return G_SOURCE_CONTINUE;   /* a second signal still reaches the daemon */
}

} // namespace

bool
service_notify_ready (const std::string &status)
{
  NotifyState &st = notify_state;
  if (st.ready)
    return true;
  g_autofree gchar *msg = g_strdup_printf ("READY=1\nSTATUS=%s", status.c_str ());
  int r = sd_notify (0, msg);
  if (r <= 0) {
    if (r < 0)
      g_warning ("sd_notify READY=1 failed: %s", g_strerror (-r));
    return false;   /* 0: not run by a service manager that listens */
  }
  st.ready = true;
  uint64_t usec = 0;
  if (sd_watchdog_enabled (0, &usec) > 0 && usec > 0) {
    guint interval_ms = static_cast<guint> (MAX (usec / 2000, 1));
    g_timeout_add (interval_ms, watchdog_cb, nullptr);
    g_message ("systemd watchdog: pinging every %u ms", interval_ms);
  }
  g_unix_signal_add (SIGINT, stop_signal_cb, nullptr);
  g_unix_signal_add (SIGTERM, stop_signal_cb, nullptr);
  return true;
}

void
service_notify_stopping ()
{
  NotifyState &st = notify_state;
  if (!st.ready || st.stopping)
    return;
  st.stopping = true;
  sd_notify (0, "STOPPING=1\nSTATUS=stopping: finishing the recordings");
}

#else  /* !HAVE_LIBSYSTEMD */

bool
service_notify_ready (const std::string &)
{
  return false;
}

void
service_notify_stopping ()
{
}

#endif

} // namespace zhost
