/* zoomrtms-host — configuration.
 *
 * Layers, lowest first (design.md "Conventions"): built-in defaults → the
 * GKeyFile given with --config → a `.env` file in the working directory →
 * the process environment → command-line options. Environment names are
 * those of Zoom's sample apps: ZOOM_APP_CLIENT_ID, ZOOM_APP_CLIENT_SECRET,
 * ZOOM_SECRET_TOKEN, PORT.
 *
 * GKeyFile keys:
 *   [server]    address, port
 *   [recording] output-root, pipeline-dir, default-pipeline,
 *               pipeline-for-<event or product> (e.g.
 *               pipeline-for-meeting.rtms_started=record-opus or
 *               pipeline-for-contact_center=record-all)
 *   [limits]    max-body-bytes, max-engagements (0 = unlimited, the default),
 *               stop-timeout-ms, stop-grace-ms, webhook-window-s
 *   [host]      state-dir (journal of live engagements; default
 *               $STATE_DIRECTORY/journal, else <output-root>/.state), rejoin-window-s
 *               (60: Zoom's signaling grace, docs/protocol.md §4.9)
 *   [health]    min-free-bytes (/health is "degraded" when the output root, or
 *               the storage of an engagement, has less free space; default
 *               256 MiB, 0 = no minimum)
 *   [tls]       ca-file (PEM CA for wss:// to a Zoom side with a private CA)
 *   [rtp]       host, port (values of ${RTP_HOST}, ${RTP_PORT})
 *   [http]      api-token (Bearer token of /engagements, /metrics and the
 *               status data, host-status.h; env ZOOMRTMS_API_TOKEN
 *               wins), backlog (0 = SOMAXCONN), max-connections (0 = derived
 *               from RLIMIT_NOFILE, host-http.h default_max_connections()),
 *               request-timeout-s (accept → complete request, default 10)
 *   [cluster]   redis-url (redis://[[USER]:PASSWORD@]HOST:PORT[/DB], percent-encoded; env ZOOMRTMS_REDIS_URL wins;
 *               set = cluster mode, host-cluster.h; unset = standalone),
 *               node-id (default <host name>:<port>), capacity (engagements
 *               this node claims, default 250), lease-ms (ownership lease,
 *               default 5000)
 * The keys are one table in host-config.cpp (kConfigKeys): a key or group
 * that is not in it is warned about with the file and line
 * (lint_config_text()), e.g. a misspelled [limit] or max-engagement.
 *   [actions], [upload], [retention]  after the call (issue 13): exec hook,
 *               upload to S3-compatible storage, retention; keys and
 *               credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 *               AWS_SESSION_TOKEN) in host-actions-config.h
 * Secrets are only read from the environment, `.env` or (the API token) the
 * config file, never from argv, and never logged.
 */
#pragma once

#include "host-actions-config.h"

#include <glib.h>

#include <map>
#include <string>
#include <vector>

namespace zhost {

struct HostConfig {
  std::string address = "127.0.0.1";
  int port = 8080;                       /* 0 = ephemeral */
  std::string output_root = "recordings";
  std::string pipeline_dir;              /* default: default_pipeline_dir() */
  std::string default_pipeline = "record-wav";
  std::map<std::string, std::string> pipeline_for;  /* event/product → name */
  gsize max_body_bytes = 64 * 1024;
  /* 0 = unlimited (design.md "Never refuse a call": a 503 is a call never
   * recorded, docs/protocol.md §2.6) */
  int max_engagements = 0;
  int stop_timeout_ms = 10000;
  /* after a stopped webhook, how long the element may take to reach its
   * own EOS (msg 8 TERMINATED, media drained) before the host sends EOS */
  int stop_grace_ms = 3000;
  int webhook_window_s = 300;
  std::string ca_file;
  std::string rtp_host = "127.0.0.1";
  int rtp_port = 5004;
  /* [host] the journal of live engagements (host-journal.h): default
   * $STATE_DIRECTORY/journal (systemd StateDirectory=), else <output-root>/.state */
  std::string state_dir;
  /* [host] how long after a previous host's last journal update (crash) or
   * detach a journal entry is rejoined: Zoom's signaling grace, ≈60 s
   * (docs/protocol.md §4.9 row 2) */
  int rejoin_window_s = 60;
  /* secrets: never logged */
  std::string client_id;
  std::string client_secret;
  std::string secret_token;
  /* [http]: the management API's Bearer token; empty = loopback clients only */
  std::string api_token;
  int http_backlog = 0;                  /* 0 = SOMAXCONN */
  int max_connections = 0;               /* 0 = default_max_connections() */
  int request_timeout_s = 10;            /* seconds */
  /* [cluster] (host-cluster.h, docs/deploying.md): empty redis_url =
   * standalone. In cluster mode the default state_dir is
   * <output-root>/.state (it must be on the shared output root). */
  std::string redis_url;
  std::string node_id;                   /* default <host name>:<port> */
  int capacity = 250;                    /* engagements this node claims */
  int lease_ms = 5000;                   /* ownership lease, renewed every lease/3 */
  /* [health] below this many free bytes on the output root (or an
   * engagement's storage) /health says "degraded"; 0 = no minimum */
  guint64 min_free_bytes = 256 * 1024 * 1024;
  /* what the configuration file's check found (lint_config_text()): one
   * "FILE:LINE: …" line each; logged as warnings at start and reload */
  std::vector<std::string> config_warnings;
  /* [actions], [upload], [retention] (host-actions-config.h) */
  ActionsConfig actions;
  /* run-time options */
  std::string ready_file;
  std::string summary_dir;
};

/* Values given on the command line; empty / negative = not given. */
struct CliOptions {
  std::string config_file;
  std::string address;
  int port = -1;
  std::string output_root;
  std::string pipeline_dir;
  std::string pipeline;
  std::string ca_file;
  std::string ready_file;
  std::string summary_dir;
  std::string state_dir;
  int stop_timeout_ms = -1;
};

using EnvMap = std::map<std::string, std::string>;

/** parse_dotenv:
 * Parses `.env` text: KEY=VALUE lines, blank lines and lines starting with
 * '#' ignored, an optional leading "export ", values optionally in single or
 * double quotes (quotes removed), surrounding blanks trimmed.
 * Returns: false with ZHOST_ERROR_CONFIG naming the line number for a line
 * that is not KEY=VALUE (the line's content is not echoed: it may hold a
 * secret).
 */
bool parse_dotenv (const std::string &text, EnvMap *out, GError **error);

/** load_config_file:
 * Applies the GKeyFile @path on top of @cfg (see the key list above) and
 * appends what lint_config_text() finds to cfg->config_warnings.
 * Returns: false with ZHOST_ERROR_CONFIG for an unreadable file or a value of
 * the wrong type or range (the message names the file and the key).
 */
bool load_config_file (const std::string &path, HostConfig *cfg, GError **error);

/** lint_config_text:
 * Checks the configuration text @text (of the file @path, for messages)
 * against the known keys: a group that is not known, a key that is not
 * known in its group (with the closest known name, or the group it belongs
 * in), a key given twice in a group. GKeyFile gives no line numbers, so
 * the text is scanned line by line here.
 * Returns: one "PATH:LINE: what" message per finding (names from the file
 * escaped with log_safe()), in file order; empty when all is known.
 */
std::vector<std::string> lint_config_text (const std::string &path,
    const std::string &text);

/** config_key_names:
 * Returns: every known key as "[group] key" ("[recording] pipeline-for-*"
 * for the prefix key); with @include_other, also the keys other parts of
 * the host read ([cluster] …). For documentation checks.
 */
std::vector<std::string> config_key_names (bool include_other);

/** resolve_config:
 * Builds the final configuration from @cli, the `.env` values @dotenv and
 * the environment @env (which wins over @dotenv), then @cli over both.
 * Makes output_root absolute. Does not check secrets (see check_secrets).
 * Returns: false with ZHOST_ERROR_CONFIG.
 */
bool resolve_config (const CliOptions &cli, const EnvMap &dotenv,
    const EnvMap &env, HostConfig *cfg, GError **error);

/** check_secrets:
 * Returns: false with ZHOST_ERROR_CONFIG naming the missing variables
 * (never their values) if the secret token or client credentials are empty.
 */
bool check_secrets (const HostConfig &cfg, GError **error);

/** default_pipeline_dir:
 * Returns: ZOOMRTMS_DATADIR/pipelines if it exists, else the source tree's
 * pipelines/ directory.
 */
std::string default_pipeline_dir ();

/** pipeline_for_event:
 * Returns: the pipeline name configured for @event (exact event name first,
 * then its product prefix before the first '.'), else default_pipeline.
 */
std::string pipeline_for_event (const HostConfig &cfg, const std::string &event);

/** environ_map:
 * Returns: the process environment as a map.
 */
EnvMap environ_map ();

} // namespace zhost
