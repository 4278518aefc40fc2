/* zoomrtms-host — engagement log lines and journal fields. See host-log.h. */
#include "host-log.h"

#include "host-common.h"

#include "config.h"

#include <sys/stat.h>
#include <sys/uio.h>

#include <cstdarg>
#include <cstdlib>

#if HAVE_LIBSYSTEMD
#include <systemd/sd-journal.h>
#endif

namespace zhost {

bool
log_to_journal ()
{
  static gsize once = 0;
  static bool journal = false;
  if (g_once_init_enter (&once)) {
#if HAVE_LIBSYSTEMD
    const char *js = g_getenv ("JOURNAL_STREAM");
    struct stat st;
    if (js && *js && fstat (2, &st) == 0) {
      /* systemd.exec(5): "device:inode", both decimal */
      char *end = nullptr;
      guint64 dev = g_ascii_strtoull (js, &end, 10);
      if (end && *end == ':') {
        guint64 ino = g_ascii_strtoull (end + 1, &end, 10);
        journal = end && *end == '\0' && dev == static_cast<guint64> (st.st_dev) &&
            ino == static_cast<guint64> (st.st_ino);
      }
    }
#endif
    g_once_init_leave (&once, 1);
  }
  return journal;
}

static int
priority_of (GLogLevelFlags level)
{
  /* as GLib's journald writer (gmessages.c log_level_to_priority) */
  if (level & G_LOG_LEVEL_ERROR)
    return 3;
  if (level & (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING))
    return 4;
  if (level & G_LOG_LEVEL_MESSAGE)
    return 5;
  if (level & G_LOG_LEVEL_INFO)
    return 6;
  return 7;
}

std::vector<std::string>
journal_fields (GLogLevelFlags level, const LogContext *ctx,
    const std::string &message)
{
  std::vector<std::string> f;
  /* the message is ours, but one field value must not hold a newline
   * in the simple form of the protocol: keep it one line */
  std::string m = message;
  for (char &c : m)
    if (c == '\n' || c == '\r')
      c = ' ';
  f.push_back ("MESSAGE=" + m);
  f.push_back ("PRIORITY=" + std::to_string (priority_of (level)));
  f.push_back ("SYSLOG_IDENTIFIER=zoomrtms-host");
  f.push_back ("GLIB_DOMAIN=zoomrtms-host");
  if (ctx) {
    if (!ctx->engagement_id.empty ())
      f.push_back ("ENGAGEMENT_ID=" + log_safe (ctx->engagement_id, 200));
    if (!ctx->rtms_stream_id.empty ())
      f.push_back ("RTMS_STREAM_ID=" + log_safe (ctx->rtms_stream_id, 200));
    if (!ctx->dir_name.empty ())
      f.push_back ("ZOOMRTMS_DIRECTORY=" + log_safe (ctx->dir_name, 200));
  }
  return f;
}

void
log_line (GLogLevelFlags level, const LogContext *ctx, const char *format, ...)
{
  va_list args;
  va_start (args, format);
  g_autofree gchar *msg = g_strdup_vprintf (format, args);
  va_end (args);
#if HAVE_LIBSYSTEMD
  if (log_to_journal ()) {
    std::vector<std::string> fields = journal_fields (level, ctx, msg);
    std::vector<struct iovec> iov (fields.size ());
    for (gsize i = 0; i < fields.size (); i++) {
      iov[i].iov_base = const_cast<char *> (fields[i].data ());
      iov[i].iov_len = fields[i].size ();
    }
    if (sd_journal_sendv (iov.data (), static_cast<int> (iov.size ())) >= 0)
      return;
    /* the journal socket is gone: stderr still is the journal's stream */
  }
#endif
  g_log ("zoomrtms-host", level, "%s", msg);
}

} // namespace zhost
