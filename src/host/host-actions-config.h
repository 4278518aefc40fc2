/* zoomrtms-host — configuration of what happens after a call (issue 13):
 * on-finish actions (exec hook, upload to S3-compatible storage), their
 * durable queue, and retention. See host-actions.h for the behaviour.
 *
 * GKeyFile keys (all optional; nothing configured = no action runs):
 *   [actions]   exec (a command line, split with g_shell_parse_argv — no
 *               shell runs it), exec-timeout-s (60), retry-min-s (2),
 *               retry-max-s (300: exponential backoff between them)
 *   [upload]    endpoint (http(s)://host[:port] of the S3 API), bucket,
 *               region (us-east-1), prefix (""), path-style (true: the
 *               bucket in the path, else in the host name),
 *               part-size-bytes (8 MiB, at least 5 MiB: S3's minimum part),
 *               multipart-threshold-bytes (16 MiB: larger files go in parts),
 *               verify-download-max-bytes (16 MiB: objects up to this size
 *               are downloaded again and their SHA-256 compared),
 *               delete-local-after-upload (false), ca-file,
 *               timeout-s (per request without progress, 60)
 *   [retention] max-age-days (0 = none), max-bytes (0 = none),
 *               interval-s (3600)
 * Credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and optional
 * AWS_SESSION_TOKEN) from the environment, `.env`, or the systemd
 * credentials aws-access-key-id / aws-secret-access-key (host-systemd.h);
 * never from the config file, never logged.
 */
#pragma once

#include <glib.h>

#include <string>
#include <vector>

namespace zhost {

struct ActionsConfig {
  /* [actions] */
  std::vector<std::string> exec_argv;    /* empty = no hook */
  int exec_timeout_s = 60;
  int retry_min_s = 2;
  int retry_max_s = 300;
  /* [upload] */
  std::string endpoint, bucket, region = "us-east-1", prefix;
  bool path_style = true;
  guint64 part_size = 8 * 1024 * 1024;              /* bytes, ≥ 5 MiB */
  guint64 multipart_threshold = 16 * 1024 * 1024;   /* bytes */
  guint64 verify_download_max = 16 * 1024 * 1024;   /* bytes */
  bool delete_local_after_upload = false;
  std::string ca_file;
  int timeout_s = 60;
  /* secrets (environment / systemd credential only) */
  std::string access_key, secret_key, session_token;
  /* [retention] */
  double max_age_days = 0;                          /* 0 = no age limit */
  guint64 max_bytes = 0;                            /* 0 = no size limit */
  int retention_interval_s = 3600;

  bool upload_enabled () const { return !endpoint.empty () && !bucket.empty (); }
  bool retention_enabled () const { return max_age_days > 0 || max_bytes > 0; }
  bool any () const { return !exec_argv.empty () || upload_enabled (); }

  /* SIGHUP: the running queue keeps its configuration (host-daemon.h) */
  bool operator== (const ActionsConfig &o) const
  {
    return exec_argv == o.exec_argv && exec_timeout_s == o.exec_timeout_s &&
        retry_min_s == o.retry_min_s && retry_max_s == o.retry_max_s &&
        endpoint == o.endpoint && bucket == o.bucket && region == o.region &&
        prefix == o.prefix && path_style == o.path_style && part_size == o.part_size &&
        multipart_threshold == o.multipart_threshold &&
        verify_download_max == o.verify_download_max &&
        delete_local_after_upload == o.delete_local_after_upload &&
        ca_file == o.ca_file && timeout_s == o.timeout_s &&
        access_key == o.access_key && secret_key == o.secret_key &&
        session_token == o.session_token && max_age_days == o.max_age_days &&
        max_bytes == o.max_bytes && retention_interval_s == o.retention_interval_s;
  }
  bool operator!= (const ActionsConfig &o) const { return !(*this == o); }
};

/** load_actions_config:
 * Reads the [actions], [upload] and [retention] keys of @kf (list above)
 * into @c. Returns: false with ZHOST_ERROR_CONFIG naming the key for a
 * value of the wrong type or range, an exec line that does not parse, or a
 * part size under 5 MiB (S3's minimum part, except the last).
 */
bool load_actions_config (GKeyFile *kf, ActionsConfig *c, GError **error);

} // namespace zhost
