/* zoomrtms-host — shared helpers. */
#include "host-common.h"
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib/gstdio.h>

GST_DEBUG_CATEGORY (zoomrtms_host_debug);

namespace zhost {

static bool
confined_name (const std::string &n)
{
  return !n.empty () && n[0] != '.' && n.find ('/') == std::string::npos &&
      n.find ('\0') == std::string::npos && n.size () < 256;
}

int
open_confined (const std::string &root, const std::string &dir,
    const std::string &file)
{
  if (!confined_name (dir) || !confined_name (file)) {
    errno = ENOENT;
    return -1;
  }
  int rfd = open (root.c_str (), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rfd < 0)
    return -1;
  int dfd = openat (rfd, dir.c_str (), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  int e = errno;
  close (rfd);
  if (dfd < 0) {
    errno = e;
    return -1;
  }
  int fd = openat (dfd, file.c_str (), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  e = errno;
  close (dfd);
  if (fd < 0) {
    errno = e;
    return -1;
  }
  struct stat st;
  if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode)) {
    close (fd);
    errno = ENOENT;
    return -1;
  }
  return fd;
}

bool
lstat_is_dir (const std::string &path)
{
  GStatBuf st;
  return g_lstat (path.c_str (), &st) == 0 && S_ISDIR (st.st_mode);
}

GQuark
error_quark ()
{
  return g_quark_from_static_string ("zoomrtms-host-error");
}

void
debug_init ()
{
  static gsize once = 0;
  if (g_once_init_enter (&once)) {
    GST_DEBUG_CATEGORY_INIT (zoomrtms_host_debug, "zoomrtms-host", 0,
        "zoomrtms-host daemon");
    g_once_init_leave (&once, 1);
  }
}

std::string
iso8601_utc (gint64 epoch_us)
{
  g_autoptr (GDateTime) dt = g_date_time_new_from_unix_utc (epoch_us / G_USEC_PER_SEC);
  if (!dt)
    return "";
  g_autofree gchar *base = g_date_time_format (dt, "%Y-%m-%dT%H:%M:%S");
  int ms = static_cast<int> ((epoch_us % G_USEC_PER_SEC) / 1000);
  g_autofree gchar *s = g_strdup_printf ("%s.%03dZ", base, ms < 0 ? 0 : ms);
  return s;
}

std::string
json_to_compact (JsonNode *node, bool pretty)
{
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  json_generator_set_root (gen, node);
  json_generator_set_pretty (gen, pretty);
  gsize len = 0;
  g_autofree gchar *txt = json_generator_to_data (gen, &len);
  return std::string (txt, len);
}

std::string
json_error_body (const char *text)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "error");
  json_builder_add_string_value (b, text);
  json_builder_end_object (b);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  return json_to_compact (root);
}

static void add_value (JsonBuilder *b, const GValue *v);

static gboolean
add_field (GQuark field, const GValue *v, gpointer user_data)
{
  auto *b = static_cast<JsonBuilder *> (user_data);
  std::string name = g_quark_to_string (field);
  for (char &c : name)
    if (c == '-')
      c = '_';
  json_builder_set_member_name (b, name.c_str ());
  add_value (b, v);
  return TRUE;
}

static void
add_value (JsonBuilder *b, const GValue *v)
{
  GType t = G_VALUE_TYPE (v);
  if (t == G_TYPE_INT)
    json_builder_add_int_value (b, g_value_get_int (v));
  else if (t == G_TYPE_UINT)
    json_builder_add_int_value (b, g_value_get_uint (v));
  else if (t == G_TYPE_INT64)
    json_builder_add_int_value (b, g_value_get_int64 (v));
  else if (t == G_TYPE_UINT64)
    json_builder_add_int_value (b, static_cast<gint64> (g_value_get_uint64 (v)));
  else if (t == G_TYPE_LONG)
    json_builder_add_int_value (b, g_value_get_long (v));
  else if (t == G_TYPE_BOOLEAN)
    json_builder_add_boolean_value (b, g_value_get_boolean (v));
  else if (t == G_TYPE_DOUBLE)
    json_builder_add_double_value (b, g_value_get_double (v));
  else if (t == G_TYPE_FLOAT)
    json_builder_add_double_value (b, g_value_get_float (v));
  else if (t == G_TYPE_STRING) {
    const gchar *s = g_value_get_string (v);
    json_builder_add_string_value (b, s ? s : "");
  } else if (G_TYPE_IS_ENUM (t))
    json_builder_add_int_value (b, g_value_get_enum (v));
  else if (GST_VALUE_HOLDS_ARRAY (v) || GST_VALUE_HOLDS_LIST (v)) {
    bool arr = GST_VALUE_HOLDS_ARRAY (v);
    guint n = arr ? gst_value_array_get_size (v) : gst_value_list_get_size (v);
    json_builder_begin_array (b);
    for (guint i = 0; i < n; i++)
      add_value (b, arr ? gst_value_array_get_value (v, i) :
          gst_value_list_get_value (v, i));
    json_builder_end_array (b);
  } else if (GST_VALUE_HOLDS_STRUCTURE (v)) {
    const GstStructure *s = gst_value_get_structure (v);
    json_builder_begin_object (b);
    if (s)
      gst_structure_foreach (s, add_field, b);
    json_builder_end_object (b);
  } else {
    g_autofree gchar *s = gst_value_serialize (v);
    json_builder_add_string_value (b, s ? s : "");
  }
}

void
structure_to_json (const GstStructure *s, JsonBuilder *b)
{
  gst_structure_foreach (s, add_field, b);
}

std::string
log_safe (const char *text, gssize len, gsize max_bytes)
{
  if (!text)
    return "(none)";
  gsize n = len < 0 ? strlen (text) : static_cast<gsize> (len);
  gsize shown = MIN (n, max_bytes);
  std::string out;
  out.reserve (shown + 16);
  static const char hex[] = "0123456789abcdef";
  for (gsize i = 0; i < shown; i++) {
    auto c = static_cast<guchar> (text[i]);
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c >= 0x20 && c < 0x7f) {
          out += static_cast<char> (c);
        } else {
          out += "\\x";
          out += hex[c >> 4];
          out += hex[c & 0xf];
        }
    }
  }
  if (shown < n)
    out += "...(" + std::to_string (n) + " bytes)";
  return out;
}

} // namespace zhost
