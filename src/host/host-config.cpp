/* zoomrtms-host — configuration. See host-config.h. */
#include "host-config.h"

#include "host-common.h"

#include "config.h"

#include <cstdlib>
#include <cstring>

namespace zhost {

static std::string
trim (const std::string &s)
{
  gsize a = 0, b = s.size ();
  while (a < b && g_ascii_isspace (s[a]))
    a++;
  while (b > a && g_ascii_isspace (s[b - 1]))
    b--;
  return s.substr (a, b - a);
}

bool
parse_dotenv (const std::string &text, EnvMap *out, GError **error)
{
  g_auto (GStrv) lines = g_strsplit (text.c_str (), "\n", -1);
  int lineno = 0;
  for (gchar **l = lines; *l; l++) {
    lineno++;
    std::string line = trim (*l);
    if (line.empty () || line[0] == '#')
      continue;
    if (g_str_has_prefix (line.c_str (), "export ") ||
        g_str_has_prefix (line.c_str (), "export\t"))
      line = trim (line.substr (7));
    gsize eq = line.find ('=');
    std::string key = eq == std::string::npos ? "" : trim (line.substr (0, eq));
    bool ok = !key.empty () && (g_ascii_isalpha (key[0]) || key[0] == '_');
    for (char c : key)
      ok = ok && (g_ascii_isalnum (c) || c == '_');
    if (!ok) {
      g_set_error (error, ZHOST_ERROR, ERROR_CONFIG,
          ".env line %d is not KEY=VALUE", lineno);
      return false;
    }
    std::string value = trim (line.substr (eq + 1));
    if (value.size () >= 2 && (value[0] == '"' || value[0] == '\'') &&
        value.back () == value[0])
      value = value.substr (1, value.size () - 2);
    else {
      /* unquoted: a " #" starts a comment */
      gsize hash = value.find (" #");
      if (hash != std::string::npos)
        value = trim (value.substr (0, hash));
    }
    (*out)[key] = value;
  }
  return true;
}

static bool
get_string (GKeyFile *kf, const char *group, const char *key, std::string *out,
    GError **error)
{
  if (!g_key_file_has_key (kf, group, key, nullptr))
    return true;
  GError *err = nullptr;
  g_autofree gchar *v = g_key_file_get_string (kf, group, key, &err);
  if (!v) {
    g_set_error (error, ZHOST_ERROR, ERROR_CONFIG, "[%s] %s: %s", group, key,
        err->message);
    g_error_free (err);
    return false;
  }
  *out = trim (v);
  return true;
}

static bool
get_int (GKeyFile *kf, const char *group, const char *key, gint64 min,
    gint64 max, gint64 *out, GError **error)
{
  if (!g_key_file_has_key (kf, group, key, nullptr))
    return true;
  GError *err = nullptr;
  gint64 v = g_key_file_get_int64 (kf, group, key, &err);
  if (err || v < min || v > max) {
    g_set_error (error, ZHOST_ERROR, ERROR_CONFIG,
        "[%s] %s must be an integer %" G_GINT64_FORMAT "-%" G_GINT64_FORMAT,
        group, key, min, max);
    g_clear_error (&err);
    return false;
  }
  *out = v;
  return true;
}

bool
load_config_file (const std::string &path, HostConfig *cfg, GError **error)
{
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  GError *err = nullptr;
  if (!g_key_file_load_from_file (kf, path.c_str (), G_KEY_FILE_NONE, &err)) {
    g_set_error (error, ZHOST_ERROR, ERROR_CONFIG, "config %s: %s",
        path.c_str (), err->message);
    g_error_free (err);
    return false;
  }
  gint64 v;
  if (!get_string (kf, "server", "address", &cfg->address, error))
    return false;
  v = cfg->port;
  if (!get_int (kf, "server", "port", 0, 65535, &v, error))
    return false;
  cfg->port = static_cast<int> (v);
  if (!get_string (kf, "recording", "output-root", &cfg->output_root, error) ||
      !get_string (kf, "recording", "pipeline-dir", &cfg->pipeline_dir, error) ||
      !get_string (kf, "recording", "default-pipeline", &cfg->default_pipeline,
          error))
    return false;
  if (g_key_file_has_group (kf, "recording")) {
    g_auto (GStrv) keys = g_key_file_get_keys (kf, "recording", nullptr, nullptr);
    for (gchar **k = keys; k && *k; k++) {
      if (g_str_has_prefix (*k, "pipeline-for-")) {
        std::string val;
        if (!get_string (kf, "recording", *k, &val, error))
          return false;
        cfg->pipeline_for[*k + strlen ("pipeline-for-")] = val;
      }
    }
  }
  v = static_cast<gint64> (cfg->max_body_bytes);
  if (!get_int (kf, "limits", "max-body-bytes", 256, 64 * 1024 * 1024, &v, error))
    return false;
  cfg->max_body_bytes = static_cast<gsize> (v);
  v = cfg->max_engagements;
  if (!get_int (kf, "limits", "max-engagements", 0, 1000000, &v, error))
    return false;
  cfg->max_engagements = static_cast<int> (v);
  if (!get_string (kf, "host", "state-dir", &cfg->state_dir, error))
    return false;
  v = cfg->rejoin_window_s;
  if (!get_int (kf, "host", "rejoin-window-s", 0, 3600, &v, error))
    return false;
  cfg->rejoin_window_s = static_cast<int> (v);
  v = cfg->stop_timeout_ms;
  if (!get_int (kf, "limits", "stop-timeout-ms", 100, 600000, &v, error))
    return false;
  cfg->stop_timeout_ms = static_cast<int> (v);
  v = cfg->stop_grace_ms;
  if (!get_int (kf, "limits", "stop-grace-ms", 0, 600000, &v, error))
    return false;
  cfg->stop_grace_ms = static_cast<int> (v);
  v = cfg->webhook_window_s;
  if (!get_int (kf, "limits", "webhook-window-s", 1, 86400, &v, error))
    return false;
  cfg->webhook_window_s = static_cast<int> (v);
  if (!get_string (kf, "tls", "ca-file", &cfg->ca_file, error) ||
      !get_string (kf, "rtp", "host", &cfg->rtp_host, error))
    return false;
  v = cfg->rtp_port;
  if (!get_int (kf, "rtp", "port", 1, 65535, &v, error))
    return false;
  cfg->rtp_port = static_cast<int> (v);
  if (!get_string (kf, "http", "api-token", &cfg->api_token, error))
    return false;
  v = cfg->http_backlog;
  if (!get_int (kf, "http", "backlog", 0, 65535, &v, error))
    return false;
  cfg->http_backlog = static_cast<int> (v);
  v = cfg->max_connections;
  if (!get_int (kf, "http", "max-connections", 0, 1000000, &v, error))
    return false;
  cfg->max_connections = static_cast<int> (v);
  /* [cluster] (issue 10, host-cluster.h) */
  if (!get_string (kf, "cluster", "redis-url", &cfg->redis_url, error) ||
      !get_string (kf, "cluster", "node-id", &cfg->node_id, error))
    return false;
  v = cfg->capacity;
  if (!get_int (kf, "cluster", "capacity", 1, 1000000, &v, error))
    return false;
  cfg->capacity = static_cast<int> (v);
  v = cfg->lease_ms;
  if (!get_int (kf, "cluster", "lease-ms", 1000, 600000, &v, error))
    return false;
  cfg->lease_ms = static_cast<int> (v);
  v = cfg->request_timeout_s;
  if (!get_int (kf, "http", "request-timeout-s", 1, 3600, &v, error))
    return false;
  cfg->request_timeout_s = static_cast<int> (v);
  return true;
}

static const std::string *
lookup (const EnvMap &env, const EnvMap &dotenv, const char *key)
{
  auto it = env.find (key);
  if (it != env.end () && !it->second.empty ())
    return &it->second;
  it = dotenv.find (key);
  if (it != dotenv.end () && !it->second.empty ())
    return &it->second;
  return nullptr;
}

bool
resolve_config (const CliOptions &cli, const EnvMap &dotenv, const EnvMap &env,
    HostConfig *cfg, GError **error)
{
  if (!cli.config_file.empty () && !load_config_file (cli.config_file, cfg, error))
    return false;
  if (auto *s = lookup (env, dotenv, "ZOOM_APP_CLIENT_ID"))
    cfg->client_id = *s;
  if (auto *s = lookup (env, dotenv, "ZOOM_APP_CLIENT_SECRET"))
    cfg->client_secret = *s;
  if (auto *s = lookup (env, dotenv, "ZOOM_SECRET_TOKEN"))
    cfg->secret_token = *s;
  if (auto *s = lookup (env, dotenv, "ZOOMRTMS_API_TOKEN"))
    cfg->api_token = *s;
  if (auto *s = lookup (env, dotenv, "PORT")) {
    gint64 p = 0;
    if (!g_ascii_string_to_signed (s->c_str (), 10, 0, 65535, &p, nullptr)) {
      g_set_error (error, ZHOST_ERROR, ERROR_CONFIG,
          "PORT must be an integer 0-65535");
      return false;
    }
    cfg->port = static_cast<int> (p);
  }
  if (!cli.address.empty ())
    cfg->address = cli.address;
  if (cli.port >= 0) {
    if (cli.port > 65535) {
      g_set_error (error, ZHOST_ERROR, ERROR_CONFIG, "--port must be 0-65535");
      return false;
    }
    cfg->port = cli.port;
  }
  if (!cli.output_root.empty ())
    cfg->output_root = cli.output_root;
  if (!cli.pipeline_dir.empty ())
    cfg->pipeline_dir = cli.pipeline_dir;
  if (!cli.pipeline.empty ())
    cfg->default_pipeline = cli.pipeline;
  if (!cli.ca_file.empty ())
    cfg->ca_file = cli.ca_file;
  if (!cli.ready_file.empty ())
    cfg->ready_file = cli.ready_file;
  if (!cli.summary_dir.empty ())
    cfg->summary_dir = cli.summary_dir;
  if (cli.stop_timeout_ms >= 0)
    cfg->stop_timeout_ms = cli.stop_timeout_ms;
  if (cfg->pipeline_dir.empty ())
    cfg->pipeline_dir = default_pipeline_dir ();
  if (cfg->output_root.empty ()) {
    g_set_error (error, ZHOST_ERROR, ERROR_CONFIG, "output-root is empty");
    return false;
  }
  g_autofree gchar *abs = g_canonicalize_filename (cfg->output_root.c_str (), nullptr);
  cfg->output_root = abs;
  if (!cli.state_dir.empty ())
    cfg->state_dir = cli.state_dir;
  if (auto *s = lookup (env, dotenv, "ZOOMRTMS_REDIS_URL"))
    cfg->redis_url = *s;
  /* cluster mode: the journal is shared by the fleet (host-cluster.h) */
  if (cfg->state_dir.empty () && !cfg->redis_url.empty ())
    cfg->state_dir = cfg->output_root + "/.state";
  if (cfg->state_dir.empty ()) {
    /* systemd StateDirectory=zoomrtms sets $STATE_DIRECTORY (a ':'-separated
     * list when the unit names several: the first is ours) */
    auto sd = env.find ("STATE_DIRECTORY");
    if (sd != env.end () && !sd->second.empty ())
      cfg->state_dir = sd->second.substr (0, sd->second.find (':')) + "/journal";
    else
      cfg->state_dir = cfg->output_root + "/.state";
  }
  g_autofree gchar *sabs = g_canonicalize_filename (cfg->state_dir.c_str (), nullptr);
  cfg->state_dir = sabs;
  return true;
}

bool
check_secrets (const HostConfig &cfg, GError **error)
{
  std::string missing;
  auto add = [&missing] (const char *n) {
    if (!missing.empty ())
      missing += ", ";
    missing += n;
  };
  if (cfg.secret_token.empty ())
    add ("ZOOM_SECRET_TOKEN");
  if (cfg.client_id.empty ())
    add ("ZOOM_APP_CLIENT_ID");
  if (cfg.client_secret.empty ())
    add ("ZOOM_APP_CLIENT_SECRET");
  if (missing.empty ())
    return true;
  g_set_error (error, ZHOST_ERROR, ERROR_CONFIG,
      "missing %s: set them in the environment or in a .env file in the "
      "working directory (the secret token verifies Zoom's webhooks, the "
      "client credentials sign the RTMS handshakes)", missing.c_str ());
  return false;
}

std::string
default_pipeline_dir ()
{
  g_autofree gchar *installed = g_build_filename (ZOOMRTMS_DATADIR, "pipelines",
      nullptr);
  if (g_file_test (installed, G_FILE_TEST_IS_DIR))
    return installed;
  g_autofree gchar *src = g_build_filename (ZOOMRTMS_SOURCE_DIR, "pipelines",
      nullptr);
  return src;
}

std::string
pipeline_for_event (const HostConfig &cfg, const std::string &event)
{
  auto it = cfg.pipeline_for.find (event);
  if (it != cfg.pipeline_for.end ())
    return it->second;
  gsize dot = event.find ('.');
  if (dot != std::string::npos) {
    it = cfg.pipeline_for.find (event.substr (0, dot));
    if (it != cfg.pipeline_for.end ())
      return it->second;
  }
  return cfg.default_pipeline;
}

EnvMap
environ_map ()
{
  EnvMap m;
  g_auto (GStrv) env = g_get_environ ();
  for (gchar **e = env; *e; e++) {
    const char *eq = strchr (*e, '=');
    if (eq)
      m[std::string (*e, eq - *e)] = eq + 1;
  }
  return m;
}

} // namespace zhost
