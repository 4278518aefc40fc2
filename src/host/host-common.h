/* zoomrtms-host — shared helpers: error domain, debug category, time and
 * JSON helpers (design.md "Components and boundaries": src/host/).
 */
#pragma once

#include <gst/gst.h>
#include <json-glib/json-glib.h>

#include "rtms-json.h"

#include <memory>
#include <string>

GST_DEBUG_CATEGORY_EXTERN (zoomrtms_host_debug);

namespace zhost {

#define ZHOST_ERROR (zhost::error_quark ())
GQuark error_quark ();

enum ErrorCode {
  ERROR_TEMPLATE = 1,   /* a pipeline template is broken or a variable is bad */
  ERROR_CONFIG,         /* configuration file, option or environment is bad */
  ERROR_IO,             /* a file could not be read or written */
  ERROR_WAV,            /* a WAV file cannot be repaired */
};

/** debug_init:
 * Registers the `zoomrtms-host` debug category (GST_DEBUG drives it). Call
 * once after gst_init(). Idempotent.
 */
void debug_init ();

/** iso8601_utc:
 * @epoch_us: microseconds since the epoch (g_get_real_time())
 * Returns: "2026-05-01T12:34:56.789Z".
 */
std::string iso8601_utc (gint64 epoch_us);

/** json_to_compact:
 * Returns: compact JSON text of @node (no trailing newline). Takes no ownership.
 */
std::string json_to_compact (JsonNode *node, bool pretty = false);

/** json_error_body:
 * Returns: the body of an HTTP error answer, {"error": @text} (compact).
 */
std::string json_error_body (const char *text);

/** structure_to_json:
 * Adds every field of @s as a member of the object being built by @b
 * (which must be inside begin_object). Field names have '-' replaced by '_'.
 * Integers, booleans, doubles and strings keep their JSON type; anything else
 * is serialised with gst_value_serialize().
 */
void structure_to_json (const GstStructure *s, JsonBuilder *b);

/** file_json_limits:
 * Limits for the JSON files the host reads back from the output root
 * (engagement.json, one transcript.jsonl line): 4 MiB, depth 32 (rtms-json.h;
 * the files are ours, but a killed host or a user may have left anything).
 */
inline rtms::JsonLimits
file_json_limits ()
{
  rtms::JsonLimits l;
  l.max_bytes = 4 * 1024 * 1024;
  l.max_depth = 32;
  return l;
}

/** log_safe:
 * @text, @len: bytes from outside (a webhook field, a header, a path), not
 *   necessarily UTF-8 or NUL-terminated; @len -1 = NUL-terminated; NULL = "(none)"
 * @max_bytes: how many input bytes to show at most (default 120)
 *
 * design.md "Webhooks": nothing from an unauthenticated request reaches the log
 * unescaped. Printable ASCII other than `\` and `"` is kept; `\n`, `\r`,
 * `\t`, `\\`, `\"` are escaped as in C, every other byte (controls, DEL,
 * non-ASCII, invalid UTF-8, ESC of terminal sequences) becomes `\xHH`. Longer
 * input is cut and ends in "…(N bytes)". The result is one line of ASCII.
 * Returns: the escaped text, without quotes.
 */
std::string log_safe (const char *text, gssize len = -1, gsize max_bytes = 120);
inline std::string
log_safe (const std::string &text, gsize max_bytes = 120)
{
  return log_safe (text.data (), static_cast<gssize> (text.size ()), max_bytes);
}

/** open_confined:
 * @root: a directory (the output root); @dir: one name in it; @file: one name
 *   in @dir
 * Opens @root/@dir/@file read-only without following a symlink at @dir or
 * @file (openat() from @root's fd with O_NOFOLLOW), so nothing outside
 * @root is reached through a link placed in it. Names that are empty, start
 * with '.', hold '/' or NUL, or are 256 bytes or longer are refused.
 * Returns: an fd of a regular file (the caller closes it), or -1 with errno
 * (ENOENT for a refused name or something other than a regular file, ELOOP
 * or ENOTDIR for a symlink).
 */
int open_confined (const std::string &root, const std::string &dir, const std::string &file);

/** lstat_is_dir: TRUE if @path is a directory itself, not a symlink to one. */
bool lstat_is_dir (const std::string &path);

struct GObjectUnref {
  void operator() (gpointer p) const { if (p) g_object_unref (p); }
};
struct GstObjectUnref {
  void operator() (gpointer p) const { if (p) gst_object_unref (p); }
};

} // namespace zhost
