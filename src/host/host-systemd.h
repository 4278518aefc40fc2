/* zoomrtms-host — running as a systemd service: credentials passed with
 * LoadCredential= and the sd_notify protocol (Type=notify).
 *
 * Both are optional: outside systemd ($CREDENTIALS_DIRECTORY and
 * $NOTIFY_SOCKET unset) every function here does nothing. The notify part
 * uses libsystemd's sd_notify(3) when the build found libsystemd
 * (HAVE_LIBSYSTEMD); without it the functions are no-ops and the unit is
 * generated with Type=simple (data/meson.build).
 */
#pragma once

#include "host-config.h"

#include <glib.h>

#include <string>
#include <vector>

namespace zhost {

/** Credential file names (under $CREDENTIALS_DIRECTORY) and the variables
 * they stand for. The unit loads them with `LoadCredential=NAME`, i.e. from
 * /etc/credstore/NAME (or /run/credstore/NAME) when that file exists. */
struct CredentialName {
  const char *credential;   /* e.g. "zoom-client-secret" */
  const char *variable;     /* e.g. "ZOOM_APP_CLIENT_SECRET" */
};
extern const CredentialName kCredentialNames[5];

/** load_credentials:
 * If $CREDENTIALS_DIRECTORY is set, reads zoom-client-id, zoom-client-secret,
 * zoom-secret-token, aws-access-key-id and aws-secret-access-key from it
 * (each optional; one trailing "\n" or "\r\n" removed) into @env as
 * ZOOM_APP_CLIENT_ID, ZOOM_APP_CLIENT_SECRET, ZOOM_SECRET_TOKEN,
 * AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, over any value the environment had: a credential is the
 * more protected source. @loaded gets the credential names read (never their
 * values). Without $CREDENTIALS_DIRECTORY: returns true, @env unchanged.
 * Returns: false with ZHOST_ERROR_CONFIG if a credential file exists but
 * cannot be read or is empty (the message names the file, not its content).
 */
bool load_credentials (EnvMap *env, std::vector<std::string> *loaded,
    GError **error);

/** service_notify_ready:
 * Call once the server listens. Sends "READY=1" and "STATUS=@status" to
 * $NOTIFY_SOCKET; if the manager asked for a watchdog ($WATCHDOG_USEC, see
 * sd_watchdog_enabled(3)), sends "WATCHDOG=1" from the default main context
 * every WATCHDOG_USEC/2, so a stuck main loop (the one that serves webhooks
 * and drives every pipeline) gets the service restarted; and watches
 * SIGINT/SIGTERM to send "STOPPING=1" as the shutdown begins (the daemon's
 * own handlers run as well: GLib dispatches every watch of a signal).
 * Returns: whether the notification was sent (false outside systemd or
 * without libsystemd).
 */
bool service_notify_ready (const std::string &status);

/** service_notify_stopping:
 * Sends "STOPPING=1" (once; later calls do nothing). The watchdog pings go
 * on while the main loop drains the pipelines (bounded by stop-timeout-ms),
 * so a long drain is not taken for a hang. Called by the signal watch above
 * and again before exit.
 */
void service_notify_stopping ();

} // namespace zhost
