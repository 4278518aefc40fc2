/* zoomrtms-host — log lines about one engagement, with structured journal
 * fields under systemd.
 *
 * Outside the journal a line is an ordinary g_log() line of the domain
 * "zoomrtms-host" (stderr, GLib's default handler). When stderr is connected
 * to the journal — $JOURNAL_STREAM holds the "device:inode" of stderr,
 * systemd.exec(5) "$JOURNAL_STREAM" — the line is sent with libsystemd's
 * sd_journal_send(3) instead, with the fields MESSAGE=, PRIORITY= (syslog
 * levels as GLib maps them: warning 4, message 5, info 6, debug 7),
 * SYSLOG_IDENTIFIER=zoomrtms-host, GLIB_DOMAIN=zoomrtms-host and, for an
 * engagement, ENGAGEMENT_ID= (the engagement id or meeting UUID as Zoom sent
 * it), RTMS_STREAM_ID= and ZOOMRTMS_DIRECTORY= (its directory name), so
 * `journalctl -u zoomrtms-host ENGAGEMENT_ID=…` shows one call. GLib sends
 * the host's other lines to the journal by itself in that case
 * (g_log_writer_default()).
 *
 * Ids are webhook values: they reach the line and the fields only through
 * log_safe() (host-common.h).
 */
#pragma once

#include <glib.h>

#include <string>
#include <vector>

namespace zhost {

/* Who a line is about: the engagement's ids (as received; escaped here). */
struct LogContext {
  std::string engagement_id;     /* engagement_id / meeting_uuid value */
  std::string rtms_stream_id;
  std::string dir_name;          /* the engagement directory's name */
};

/** log_to_journal:
 * Returns: whether stderr is the journal: $JOURNAL_STREAM is
 * "<st_dev>:<st_ino>" of file descriptor 2 (and the build has libsystemd).
 * Read once; a child that inherits the variable with another stderr is not
 * fooled.
 */
bool log_to_journal ();

/** journal_fields:
 * Returns: the journal fields of one line, "KEY=value" each (MESSAGE first),
 * as log_line() sends them. @ctx may be NULL. Values are one line of
 * printable ASCII (log_safe(), ids cut at 200 bytes).
 */
std::vector<std::string> journal_fields (GLogLevelFlags level,
    const LogContext *ctx, const std::string &message);

/** log_line:
 * Logs one line at @level (G_LOG_LEVEL_WARNING, _MESSAGE, _INFO or _DEBUG)
 * about the engagement @ctx (may be NULL): to the journal with the fields
 * above when log_to_journal(), else with g_log(). The text is the caller's;
 * it must already be safe (log_safe() for outside bytes).
 */
void log_line (GLogLevelFlags level, const LogContext *ctx, const char *format,
    ...) G_GNUC_PRINTF (3, 4);

} // namespace zhost
