/* zoomrtms-host — configuration. See host-config.h. */
#include "host-config.h"

#include "host-common.h"

#include "config.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

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

/* ---- the known keys: one entry each (issue 11 "Config hygiene") ---- */

namespace {

enum class KeyType { STRING, INT, PREFIX, OTHER };

using Setter = void (*) (HostConfig *cfg, const std::string &key,
    const std::string &s, gint64 v);

struct ConfigKey {
  const char *group;
  const char *key;       /* for PREFIX: the prefix, the rest is free */
  KeyType type;
  gint64 min, max;       /* INT: the accepted range */
  Setter set;            /* nullptr: known, read elsewhere (OTHER) */
};

#define SET_STR(member) \
  [] (HostConfig *c, const std::string &, const std::string &s, gint64) { c->member = s; }
#define SET_INT(member, type) \
  [] (HostConfig *c, const std::string &, const std::string &, gint64 v) { \
    c->member = static_cast<type> (v); }

/* Every key of the configuration file. A new key is one line here (and a
 * line in host-config.h's comment, data/zoomrtms-host.conf.example and the
 * man page). OTHER: a key another part of the host reads from the file
 * itself; listed so it is not warned about. */
const ConfigKey kConfigKeys[] = {
  {"server", "address", KeyType::STRING, 0, 0, SET_STR (address)},
  {"server", "port", KeyType::INT, 0, 65535, SET_INT (port, int)},
  {"recording", "output-root", KeyType::STRING, 0, 0, SET_STR (output_root)},
  {"recording", "pipeline-dir", KeyType::STRING, 0, 0, SET_STR (pipeline_dir)},
  {"recording", "default-pipeline", KeyType::STRING, 0, 0, SET_STR (default_pipeline)},
  {"recording", "pipeline-for-", KeyType::PREFIX, 0, 0,
    [] (HostConfig *c, const std::string &k, const std::string &s, gint64) {
      c->pipeline_for[k.substr (strlen ("pipeline-for-"))] = s; }},
  {"limits", "max-body-bytes", KeyType::INT, 256, 64 * 1024 * 1024,
    SET_INT (max_body_bytes, gsize)},
  {"limits", "max-engagements", KeyType::INT, 0, 1000000, SET_INT (max_engagements, int)},
  {"limits", "stop-timeout-ms", KeyType::INT, 100, 600000, SET_INT (stop_timeout_ms, int)},
  {"limits", "stop-grace-ms", KeyType::INT, 0, 600000, SET_INT (stop_grace_ms, int)},
  {"limits", "webhook-window-s", KeyType::INT, 1, 86400, SET_INT (webhook_window_s, int)},
  {"host", "state-dir", KeyType::STRING, 0, 0, SET_STR (state_dir)},
  {"host", "rejoin-window-s", KeyType::INT, 0, 3600, SET_INT (rejoin_window_s, int)},
  {"health", "min-free-bytes", KeyType::INT, 0, G_MAXINT64,
    SET_INT (min_free_bytes, guint64)},
  {"tls", "ca-file", KeyType::STRING, 0, 0, SET_STR (ca_file)},
  {"rtp", "host", KeyType::STRING, 0, 0, SET_STR (rtp_host)},
  {"rtp", "port", KeyType::INT, 1, 65535, SET_INT (rtp_port, int)},
  {"http", "api-token", KeyType::STRING, 0, 0, SET_STR (api_token)},
  {"http", "backlog", KeyType::INT, 0, 65535, SET_INT (http_backlog, int)},
  {"http", "max-connections", KeyType::INT, 0, 1000000, SET_INT (max_connections, int)},
  {"http", "request-timeout-s", KeyType::INT, 1, 3600, SET_INT (request_timeout_s, int)},
  /* cluster mode (issue 10, host-cluster.h, docs/deploying.md) */
  {"cluster", "redis-url", KeyType::STRING, 0, 0, SET_STR (redis_url)},
  {"cluster", "node-id", KeyType::STRING, 0, 0, SET_STR (node_id)},
  {"cluster", "capacity", KeyType::INT, 1, 1000000, SET_INT (capacity, int)},
  {"cluster", "lease-ms", KeyType::INT, 1000, 600000, SET_INT (lease_ms, int)},
  /* after the call (issue 13): parsed by load_actions_config() */
  {"actions", "exec", KeyType::OTHER, 0, 0, nullptr},
  {"actions", "exec-timeout-s", KeyType::OTHER, 0, 0, nullptr},
  {"actions", "retry-min-s", KeyType::OTHER, 0, 0, nullptr},
  {"actions", "retry-max-s", KeyType::OTHER, 0, 0, nullptr},
  {"upload", "endpoint", KeyType::OTHER, 0, 0, nullptr},
  {"upload", "bucket", KeyType::OTHER, 0, 0, nullptr},
  {"upload", "region", KeyType::OTHER, 0, 0, nullptr},
  {"upload", "prefix", KeyType::OTHER, 0, 0, nullptr},
  {"upload", "ca-file", KeyType::OTHER, 0, 0, nullptr},
  {"upload", "path-style", KeyType::OTHER, 0, 0, nullptr},
  {"upload", "delete-local-after-upload", KeyType::OTHER, 0, 0, nullptr},
  {"upload", "part-size-bytes", KeyType::OTHER, 0, 0, nullptr},
  {"upload", "multipart-threshold-bytes", KeyType::OTHER, 0, 0, nullptr},
  {"upload", "verify-download-max-bytes", KeyType::OTHER, 0, 0, nullptr},
  {"upload", "timeout-s", KeyType::OTHER, 0, 0, nullptr},
  {"retention", "max-age-days", KeyType::OTHER, 0, 0, nullptr},
  {"retention", "max-bytes", KeyType::OTHER, 0, 0, nullptr},
  {"retention", "interval-s", KeyType::OTHER, 0, 0, nullptr},
};

#undef SET_STR
#undef SET_INT

bool
key_matches (const ConfigKey &k, const char *group, const char *key)
{
  if (!g_str_equal (k.group, group))
    return false;
  if (k.type == KeyType::PREFIX)
    return g_str_has_prefix (key, k.key) && strlen (key) > strlen (k.key);
  return g_str_equal (k.key, key);
}

const ConfigKey *
find_key (const char *group, const char *key)
{
  for (const auto &k : kConfigKeys)
    if (key_matches (k, group, key))
      return &k;
  return nullptr;
}

bool
known_group (const std::string &group)
{
  for (const auto &k : kConfigKeys)
    if (group == k.group)
      return true;
  return false;
}

/* Levenshtein distance, for "did you mean" (short strings only). */
gsize
edit_distance (const std::string &a, const std::string &b)
{
  std::vector<gsize> prev (b.size () + 1), cur (b.size () + 1);
  for (gsize j = 0; j <= b.size (); j++)
    prev[j] = j;
  for (gsize i = 1; i <= a.size (); i++) {
    cur[0] = i;
    for (gsize j = 1; j <= b.size (); j++) {
      gsize sub = prev[j - 1] + (g_ascii_tolower (a[i - 1]) ==
          g_ascii_tolower (b[j - 1]) ? 0 : 1);
      cur[j] = std::min ({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap (prev, cur);
  }
  return prev[b.size ()];
}

/* The closest of @candidates within a third of @word's length (at least
 * 2 edits), else "". */
std::string
closest (const std::string &word, const std::vector<std::string> &candidates)
{
  gsize best = G_MAXSIZE;
  std::string pick;
  for (const auto &c : candidates) {
    gsize d = edit_distance (word, c);
    if (d < best) {
      best = d;
      pick = c;
    }
  }
  gsize limit = std::max<gsize> (2, word.size () / 3);
  return best <= limit ? pick : "";
}

} // namespace

std::vector<std::string>
config_key_names (bool include_other)
{
  std::vector<std::string> v;
  for (const auto &k : kConfigKeys)
    if (include_other || k.type != KeyType::OTHER)
      v.push_back (std::string ("[") + k.group + "] " + k.key +
          (k.type == KeyType::PREFIX ? "*" : ""));
  return v;
}

std::vector<std::string>
lint_config_text (const std::string &path, const std::string &text)
{
  std::vector<std::string> out;
  std::string group;
  bool group_known = true;
  /* "group\nkey" → line, for keys given twice */
  std::map<std::string, int> seen;
  g_auto (GStrv) lines = g_strsplit (text.c_str (), "\n", -1);
  int lineno = 0;
  for (gchar **l = lines; *l; l++) {
    lineno++;
    std::string line = trim (*l);
    if (line.empty () || line[0] == '#')
      continue;
    std::string where = path + ":" + std::to_string (lineno) + ": ";
    if (line[0] == '[') {
      gsize close = line.find (']');
      group = line.substr (1, close == std::string::npos ? std::string::npos : close - 1);
      group_known = known_group (group);
      if (!group_known) {
        std::vector<std::string> groups;
        for (const auto &k : kConfigKeys)
          if (std::find (groups.begin (), groups.end (), k.group) == groups.end ())
            groups.push_back (k.group);
        std::string hint = closest (group, groups);
        out.push_back (where + "unknown group [" + log_safe (group, 60) + "], its keys "
            "are ignored" + (hint.empty () ? "" : " (did you mean [" + hint + "]?)"));
      }
      continue;
    }
    gsize eq = line.find ('=');
    if (eq == std::string::npos || !group_known)
      continue;                 /* GKeyFile refuses such a line itself */
    std::string key = trim (line.substr (0, eq));
    /* a translation, key[locale]=…, is the key's */
    gsize br = key.find ('[');
    if (br != std::string::npos)
      key = key.substr (0, br);
    if (!find_key (group.c_str (), key.c_str ())) {
      std::vector<std::string> keys;
      std::string elsewhere;
      for (const auto &k : kConfigKeys) {
        if (group == k.group)
          keys.push_back (k.key);
        else if (key_matches (k, k.group, key.c_str ()))
          elsewhere = std::string (" (it belongs in [") + k.group + "])";
      }
      std::string hint = closest (key, keys);
      out.push_back (where + "unknown key \"" + log_safe (key, 60) + "\" in [" +
          group + "], ignored" + (!elsewhere.empty () ? elsewhere : hint.empty () ?
              "" : " (did you mean " + hint + "?)"));
      continue;
    }
    std::string id = group + "\n" + key;
    auto it = seen.find (id);
    if (it != seen.end ())
      out.push_back (where + "[" + group + "] " + log_safe (key, 60) +
          " given again (first on line " + std::to_string (it->second) +
          "): this one counts");
    else
      seen[id] = lineno;
  }
  return out;
}

bool
load_config_file (const std::string &path, HostConfig *cfg, GError **error)
{
  g_autofree gchar *text = nullptr;
  gsize len = 0;
  GError *err = nullptr;
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  if (!g_file_get_contents (path.c_str (), &text, &len, &err) ||
      !g_key_file_load_from_data (kf, text, len, G_KEY_FILE_NONE, &err)) {
    g_set_error (error, ZHOST_ERROR, ERROR_CONFIG, "config %s: %s",
        path.c_str (), err->message);
    g_error_free (err);
    return false;
  }
  for (const auto &k : kConfigKeys) {
    if (!k.set || !g_key_file_has_group (kf, k.group))
      continue;
    g_auto (GStrv) keys = g_key_file_get_keys (kf, k.group, nullptr, nullptr);
    for (gchar **key = keys; key && *key; key++) {
      if (!key_matches (k, k.group, *key))
        continue;
      if (k.type == KeyType::INT) {
        gint64 v = g_key_file_get_int64 (kf, k.group, *key, &err);
        if (err || v < k.min || v > k.max) {
          g_set_error (error, ZHOST_ERROR, ERROR_CONFIG,
              "config %s: [%s] %s must be an integer %" G_GINT64_FORMAT "-%"
              G_GINT64_FORMAT, path.c_str (), k.group, *key, k.min, k.max);
          g_clear_error (&err);
          return false;
        }
        k.set (cfg, *key, "", v);
      } else {
        g_autofree gchar *v = g_key_file_get_string (kf, k.group, *key, &err);
        if (!v) {
          g_set_error (error, ZHOST_ERROR, ERROR_CONFIG, "config %s: [%s] %s: %s",
              path.c_str (), k.group, *key, err->message);
          g_error_free (err);
          return false;
        }
        k.set (cfg, *key, trim (v), 0);
      }
    }
  }
  std::vector<std::string> lint = lint_config_text (path, std::string (text, len));
  cfg->config_warnings.insert (cfg->config_warnings.end (), lint.begin (), lint.end ());
  /* issue 13: after the call (host-actions-config.h) */
  if (!load_actions_config (kf, &cfg->actions, error))
    return false;
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
  /* [upload] credentials: the AWS SDKs' variable names */
  if (auto *s = lookup (env, dotenv, "AWS_ACCESS_KEY_ID"))
    cfg->actions.access_key = *s;
  if (auto *s = lookup (env, dotenv, "AWS_SECRET_ACCESS_KEY"))
    cfg->actions.secret_key = *s;
  if (auto *s = lookup (env, dotenv, "AWS_SESSION_TOKEN"))
    cfg->actions.session_token = *s;
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
