/* zoomrtms-host — receives Zoom's RTMS webhooks and records each engagement
 * with a pipeline from pipelines/NAME.pipeline (design.md, issue 4).
 *
 *   zoomrtms-host [--config host.conf] [--port N] [--output-root DIR]
 *                 [--pipeline-dir DIR] [--pipeline NAME] [--ca-file PEM]
 *                 [--ready-file FILE]
 *   zoomrtms-host --summary DIR
 *   zoomrtms-host --check [--config host.conf] [--pipeline-dir DIR] …
 *
 * SIGTERM/SIGINT detach every live engagement (no msg 21; the next host
 * rejoins them from the journal, host-journal.h; in cluster mode, [cluster]
 * redis-url or ZOOMRTMS_REDIS_URL, the other hosts of the fleet take them
 * over at once: host-cluster.h); SIGHUP reloads the configuration and
 * pipeline files (live engagements keep theirs).
 *
 * --check validates the configuration (values, unknown keys and groups with
 * their file and line) and every pipeline file (parse, build with dummy
 * values, caps negotiation of what zoomrtmssrc will output), prints a short
 * summary and exits 0, or prints the reasons and exits 2. Missing secrets are
 * only noted: under systemd they come from the unit's credentials.
 *
 * Exit status: 0 after a clean shutdown (SIGINT/SIGTERM), 1 on a start-up
 * failure (cannot listen), 2 on a configuration error (missing secrets, bad
 * option, config or pipeline file, zoomrtmssrc not installed): the systemd
 * unit does not restart on 2. Under systemd: secrets from LoadCredential=,
 * sd_notify READY/STOPPING/WATCHDOG (host-systemd.h).
 */
#include "host-cluster.h"
#include "host-common.h"
#include "host-config.h"
#include "host-daemon.h"
#include "host-health.h"
#include "host-plugin.h"
#include "host-summary.h"
#include "host-systemd.h"
#include "host-template.h"

#include "config.h"

#include <glib/gstdio.h>
#include <gst/gst.h>

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <functional>
#include <map>

using namespace zhost;

using Loader = std::function<bool (HostConfig *, std::shared_ptr<const TemplateStore> *,
    bool, GError **)>;

/* zoomrtms-host --check: exit 0 with a summary, or 2 with the reasons. */
static int
run_check (const CliOptions &cli, const Loader &load)
{
  HostConfig cfg;
  std::shared_ptr<const TemplateStore> templates;
  GError *err = nullptr;
  const char *cfg_name = cli.config_file.empty () ? "(no --config: defaults)" :
      cli.config_file.c_str ();
  if (!load (&cfg, &templates, false, &err)) {
    g_printerr ("zoomrtms-host --check: FAILED: %s\n", err->message);
    g_error_free (err);
    return 2;
  }
  std::vector<std::string> problems;
  for (const auto &w : cfg.config_warnings)
    problems.push_back ("config " + w);
  std::map<std::string, std::string> caps;
  templates->check_caps (&problems, &caps);
  /* a CA file the host cannot read fails every wss:// call */
  if (!cfg.ca_file.empty () && g_access (cfg.ca_file.c_str (), R_OK) != 0)
    problems.push_back ("[tls] ca-file " + cfg.ca_file + ": " + g_strerror (errno));
  if (!problems.empty ()) {
    for (const auto &p : problems)
      g_printerr ("zoomrtms-host --check: %s\n", p.c_str ());
    g_printerr ("zoomrtms-host --check: FAILED: %zu problem(s) in %s and %s\n",
        problems.size (), cfg_name, cfg.pipeline_dir.c_str ());
    return 2;
  }
  g_print ("configuration %s: ok\n", cfg_name);
  for (const auto &n : templates->names ()) {
    const PipelineTemplate *t = templates->find (n);
    g_print ("pipeline %s (%s): ok, zoomrtmssrc outputs %s\n", n.c_str (),
        t->path.c_str (), caps[n].c_str ());
  }
  /* the output root as this user sees it (the service's user may differ) */
  StorageStatus st = check_storage (cfg.output_root, cfg.min_free_bytes);
  if (!st.problem.empty ())
    g_print ("note: output root %s: %s\n", cfg.output_root.c_str (), st.problem.c_str ());
  GError *serr = nullptr;
  if (!check_secrets (cfg, &serr)) {
    g_print ("note: %s\n", serr->message);
    g_error_free (serr);
  }
  g_print ("check passed: %zu pipeline(s), default %s, output root %s\n",
      templates->names ().size (), cfg.default_pipeline.c_str (),
      cfg.output_root.c_str ());
  return 0;
}

int
main (int argc, char **argv)
{
  CliOptions cli;
  gchar *config_file = nullptr, *address = nullptr, *output_root = nullptr,
      *pipeline_dir = nullptr, *pipeline = nullptr, *ca_file = nullptr,
      *ready_file = nullptr, *summary = nullptr, *state_dir = nullptr;
  gint port = -1, stop_timeout = -1;
  gboolean version = FALSE, check = FALSE;
  GOptionEntry entries[] = {
    {"config", 'c', 0, G_OPTION_ARG_FILENAME, &config_file,
        "GKeyFile configuration (see data/zoomrtms-host.conf.example)", "FILE"},
    {"address", 0, 0, G_OPTION_ARG_STRING, &address,
        "Listen address (default 127.0.0.1)", "ADDR"},
    {"port", 'p', 0, G_OPTION_ARG_INT, &port,
        "Listen port; 0 = ephemeral (default 8080, env PORT)", "N"},
    {"output-root", 'o', 0, G_OPTION_ARG_FILENAME, &output_root,
        "Directory for the engagement directories (default ./recordings)", "DIR"},
    {"pipeline-dir", 0, 0, G_OPTION_ARG_FILENAME, &pipeline_dir,
        "Directory of *.pipeline templates", "DIR"},
    {"pipeline", 0, 0, G_OPTION_ARG_STRING, &pipeline,
        "Default pipeline template name (default record-wav)", "NAME"},
    {"ca-file", 0, 0, G_OPTION_ARG_FILENAME, &ca_file,
        "PEM CA for wss:// to an RTMS server with a private CA", "FILE"},
    {"ready-file", 0, 0, G_OPTION_ARG_FILENAME, &ready_file,
        "Write {\"port\":N} here once listening", "FILE"},
    {"state-dir", 0, 0, G_OPTION_ARG_FILENAME, &state_dir,
        "Journal of live engagements, rejoined after a restart (default "
        "$STATE_DIRECTORY/journal, else OUTPUT_ROOT/.state)", "DIR"},
    {"stop-timeout-ms", 0, 0, G_OPTION_ARG_INT, &stop_timeout,
        "How long to wait for EOS after a stop (default 10000)", "MS"},
    {"summary", 0, 0, G_OPTION_ARG_FILENAME, &summary,
        "Print what was recorded under DIR and exit", "DIR"},
    {"check", 0, 0, G_OPTION_ARG_NONE, &check,
        "Validate the configuration and every pipeline file (caps included), "
        "print a summary and exit: 0 valid, 2 not", nullptr},
    {"version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version", nullptr},
    {nullptr, 0, 0, G_OPTION_ARG_NONE, nullptr, nullptr, nullptr},
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new (
      "- record Zoom RTMS engagements announced by webhooks");
  g_option_context_add_main_entries (ctx, entries, nullptr);
  g_option_context_add_group (ctx, gst_init_get_option_group ());
  g_option_context_set_description (ctx,
      "Environment: ZOOM_APP_CLIENT_ID, ZOOM_APP_CLIENT_SECRET, ZOOM_SECRET_TOKEN, "
      "PORT, ZOOMRTMS_REDIS_URL (cluster mode, docs/deploying.md) "
      "(a .env file in the working directory is read too; the environment "
      "wins over .env, options over both). Under systemd, the credentials "
      "zoom-client-id, zoom-client-secret and zoom-secret-token in "
      "$CREDENTIALS_DIRECTORY (LoadCredential=) win over the environment.\n");
  GError *err = nullptr;
  if (!g_option_context_parse (ctx, &argc, &argv, &err)) {
    g_printerr ("zoomrtms-host: %s\n", err->message);
    g_error_free (err);
    return 2;
  }
  if (version) {
    g_print ("zoomrtms-host %s\n", VERSION);
    return 0;
  }
  gst_init (&argc, &argv);
  debug_init ();

  auto take = [] (gchar *s) {
    std::string r = s ? s : "";
    g_free (s);
    return r;
  };
  cli.config_file = take (config_file);
  cli.address = take (address);
  cli.port = port;
  cli.output_root = take (output_root);
  cli.pipeline_dir = take (pipeline_dir);
  cli.pipeline = take (pipeline);
  cli.ca_file = take (ca_file);
  cli.ready_file = take (ready_file);
  cli.summary_dir = take (summary);
  cli.state_dir = take (state_dir);
  cli.stop_timeout_ms = stop_timeout;

  if (!cli.summary_dir.empty ())
    return print_summary (cli.summary_dir) < 0 ? 1 : 0;

  /* configuration and pipeline files: at start, and again on SIGHUP */
  /* @secrets_needed false (--check): missing secrets are left to the caller */
  auto load_with = [&cli] (HostConfig *out, std::shared_ptr<const TemplateStore> *store,
      bool secrets_needed, GError **error) -> bool {
    EnvMap dotenv;
    g_autofree gchar *dotenv_text = nullptr;
    gsize dotenv_len = 0;
    if (g_file_get_contents (".env", &dotenv_text, &dotenv_len, nullptr) &&
        !parse_dotenv (std::string (dotenv_text, dotenv_len), &dotenv, error))
      return false;
    /* systemd LoadCredential= (host-systemd.h) over the environment */
    EnvMap env = environ_map ();
    std::vector<std::string> credentials;
    if (!load_credentials (&env, &credentials, error))
      return false;
    for (const auto &c : credentials)
      g_message ("secret from systemd credential %s", c.c_str ());
    HostConfig cfg;
    if (!resolve_config (cli, dotenv, env, &cfg, error) ||
        (secrets_needed && !check_secrets (cfg, error)))
      return false;
    /* cluster mode (host-cluster.h): a bad URL is a configuration error */
    RedisUrl redis;
    if (!cfg.redis_url.empty () && !parse_redis_url (cfg.redis_url, &redis, error))
      return false;
    auto templates = std::make_shared<TemplateStore> ();
    GError *terr = nullptr;
    if (!templates->load_dir (cfg.pipeline_dir, &terr)) {
      g_set_error (error, ZHOST_ERROR, ERROR_TEMPLATE,
          "broken pipeline template: %s", terr->message);
      g_error_free (terr);
      return false;
    }
    std::vector<std::pair<std::string, std::string>> wanted = {
      {"default-pipeline", cfg.default_pipeline}};
    for (const auto &kv : cfg.pipeline_for)
      wanted.push_back ({"pipeline-for-" + kv.first, kv.second});
    for (const auto &w : wanted) {
      if (!templates->find (w.second)) {
        std::string have;
        for (const auto &n : templates->names ())
          have += (have.empty () ? "" : ", ") + n;
        g_set_error (error, ZHOST_ERROR, ERROR_TEMPLATE,
            "%s \"%s\" has no %s/%s.pipeline (have: %s)", w.first.c_str (),
            w.second.c_str (), cfg.pipeline_dir.c_str (), w.second.c_str (),
            have.c_str ());
        return false;
      }
    }
    *out = std::move (cfg);
    *store = std::move (templates);
    return true;
  };
  /* at start and on SIGHUP: unknown keys and caps that cannot be
   * negotiated are warned about, not fatal (--check fails on them) */
  auto load = [&load_with] (HostConfig *out,
      std::shared_ptr<const TemplateStore> *store, GError **error) -> bool {
    if (!load_with (out, store, true, error))
      return false;
    for (const auto &w : out->config_warnings)
      g_warning ("config %s", w.c_str ());
    std::vector<std::string> problems;
    (*store)->check_caps (&problems);
    for (const auto &p : problems)
      g_warning ("%s: every engagement with this pipeline will fail "
          "(zoomrtms-host --check)", p.c_str ());
    return true;
  };

  if (!ensure_zoomrtms_plugin (ZOOMRTMS_PLUGINDIR, &err)) {
    g_printerr ("zoomrtms-host: %s\n", err->message);
    g_error_free (err);
    return 2;                   /* an installation error: restarting won't help */
  }
  HostConfig cfg;
  std::shared_ptr<const TemplateStore> templates;
  if (check)
    return run_check (cli, load_with);
  if (!load (&cfg, &templates, &err)) {
    /* a configuration error (see the systemd unit: no restart on 2) */
    g_printerr ("zoomrtms-host: %s%s\n", g_error_matches (err, ZHOST_ERROR,
            ERROR_TEMPLATE) ? "refusing to start: " : "", err->message);
    g_error_free (err);
    return 2;
  }

  Daemon daemon (cfg, templates);
  daemon.set_reloader (load);
  if (!daemon.start (&err)) {
    g_printerr ("zoomrtms-host: %s\n", err->message);
    g_error_free (err);
    return 1;
  }
  service_notify_ready ("listening on " + cfg.address + ":" +
      std::to_string (daemon.port ()));
  int status = daemon.run ();
  service_notify_stopping ();
  g_message ("exiting");
  return status;
}
