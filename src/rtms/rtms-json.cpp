/* zoomrtms — bounded JSON input. See rtms-json.h. */
#include "rtms-json.h"

#include "rtms-messages.h"

#include <glib/gstdio.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

namespace rtms {

namespace {

bool
refuse (GError **error, gsize at, const char *what)
{
  g_set_error (error, RTMS_ERROR, ERROR_PARSE, "invalid JSON at byte %"
      G_GSIZE_FORMAT ": %s", at, what);
  return false;
}

inline bool
is_ws (char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

inline int
hex_value (char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Reads 4 hex digits at @p (bounds checked by the caller). -1 if not hex. */
inline int
hex4 (const char *p)
{
  int v = 0;
  for (int i = 0; i < 4; i++) {
    int h = hex_value (p[i]);
    if (h < 0)
      return -1;
    v = v * 16 + h;
  }
  return v;
}

/* A string starting after its opening quote at @i; on success @i is past the
 * closing quote. UTF-8 was validated for the whole document already, so only
 * bytes < 0x20, `"` and `\` need looking at. */
bool
scan_string (const char *d, gsize len, gsize *i, GError **error)
{
  gsize p = *i;
  while (p < len) {
    unsigned char c = static_cast<unsigned char> (d[p]);
    if (c == '"') {
      *i = p + 1;
      return true;
    }
    if (c < 0x20)
      return refuse (error, p, "control character in a string");
    if (c != '\\') {
      p++;
      continue;
    }
    if (p + 1 >= len)
      break;
    char e = d[p + 1];
    if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' ||
        e == 'n' || e == 'r' || e == 't') {
      p += 2;
      continue;
    }
    if (e != 'u')
      return refuse (error, p, "escape that JSON does not have");
    if (p + 6 > len)
      break;
    int u = hex4 (d + p + 2);
    if (u < 0)
      return refuse (error, p, "bad \\u escape");
    if (u == 0)
      return refuse (error, p, "\\u0000 in a string");
    if (u >= 0xDC00 && u <= 0xDFFF)
      return refuse (error, p, "lone low surrogate");
    if (u >= 0xD800 && u <= 0xDBFF) {
      if (p + 12 > len || d[p + 6] != '\\' || d[p + 7] != 'u')
        return refuse (error, p, "lone high surrogate");
      int lo = hex4 (d + p + 8);
      if (lo < 0xDC00 || lo > 0xDFFF)
        return refuse (error, p, "lone high surrogate");
      p += 12;
      continue;
    }
    p += 6;
  }
  return refuse (error, len, "unterminated string");
}

/* A number starting at @i (RFC 8259 §6); on success @i is past it. */
bool
scan_number (const char *d, gsize len, gsize *i, GError **error)
{
  const gsize start = *i;
  gsize p = start;
  bool integer = true;
  if (p < len && d[p] == '-')
    p++;
  if (p >= len || !g_ascii_isdigit (d[p]))
    return refuse (error, start, "bad number");
  if (d[p] == '0') {
    p++;
    if (p < len && g_ascii_isdigit (d[p]))
      return refuse (error, start, "number with a leading zero");
  } else {
    while (p < len && g_ascii_isdigit (d[p]))
      p++;
  }
  if (p < len && d[p] == '.') {
    integer = false;
    p++;
    if (p >= len || !g_ascii_isdigit (d[p]))
      return refuse (error, start, "bad number");
    while (p < len && g_ascii_isdigit (d[p]))
      p++;
  }
  if (p < len && (d[p] == 'e' || d[p] == 'E')) {
    integer = false;
    p++;
    if (p < len && (d[p] == '+' || d[p] == '-'))
      p++;
    if (p >= len || !g_ascii_isdigit (d[p]))
      return refuse (error, start, "bad number");
    while (p < len && g_ascii_isdigit (d[p]))
      p++;
  }
  /* json-glib stores integers in gint64 and wraps silently, and turns a
   * double overflow into inf: both refused. */
  const std::string token (d + start, p - start);
  bool in_range;
  if (integer) {
    errno = 0;
    (void) g_ascii_strtoll (token.c_str (), nullptr, 10);
    in_range = errno != ERANGE;
  } else {
    in_range = std::isfinite (g_ascii_strtod (token.c_str (), nullptr)); /* underflow → 0 is fine */
  }
  if (!in_range)
    return refuse (error, start, "number out of range");
  *i = p;
  return true;
}

} // namespace

bool
json_validate (const char *data, gsize len, const JsonLimits &limits,
    GError **error)
{
  if (len > limits.max_bytes) {
    g_set_error (error, RTMS_ERROR, ERROR_TOO_LARGE, "JSON document of %"
        G_GSIZE_FORMAT " bytes over the limit of %" G_GSIZE_FORMAT, len,
        limits.max_bytes);
    return false;
  }
  if (!data)
    return refuse (error, 0, "empty document");
  const gchar *bad = nullptr;
  if (!g_utf8_validate_len (data, len, &bad))
    return refuse (error, static_cast<gsize> (bad - data),
        "not UTF-8 (or a NUL byte)");

  /* One bit per open container: 1 = object, 0 = array. */
  std::vector<guint64> kinds ((limits.max_depth + 63) / 64 + 1, 0);
  guint depth = 0;
  enum { VALUE, VALUE_OR_CLOSE, KEY, KEY_OR_CLOSE, COLON, COMMA_OR_CLOSE, END }
      state = VALUE;
  auto in_object = [&] () {
    return (kinds[(depth - 1) / 64] >> ((depth - 1) % 64)) & 1;
  };
  gsize i = 0;
  while (true) {
    while (i < len && is_ws (data[i]))
      i++;
    if (i >= len)
      break;
    char c = data[i];
    switch (state) {
      case END:
        return refuse (error, i, "data after the document");
      case COLON:
        if (c != ':')
          return refuse (error, i, "expected ':'");
        i++;
        state = VALUE;
        continue;
      case COMMA_OR_CLOSE:
        if (c == ',') {
          i++;
          state = in_object () ? KEY : VALUE;
          continue;
        }
        if (c != (in_object () ? '}' : ']'))
          return refuse (error, i, "expected ',' or the end of the container");
        i++;
        depth--;
        state = depth ? COMMA_OR_CLOSE : END;
        continue;
      case KEY_OR_CLOSE:
      case KEY:
        if (c == '}' && state == KEY_OR_CLOSE) {
          i++;
          depth--;
          state = depth ? COMMA_OR_CLOSE : END;
          continue;
        }
        if (c != '"')
          return refuse (error, i, "expected a member name");
        i++;
        if (!scan_string (data, len, &i, error))
          return false;
        state = COLON;
        continue;
      case VALUE_OR_CLOSE:
      case VALUE:
        break;
    }
    /* a value, or ']' closing an empty array */
    if (c == ']' && state == VALUE_OR_CLOSE) {
      i++;
      depth--;
      state = depth ? COMMA_OR_CLOSE : END;
      continue;
    }
    if (c == '{' || c == '[') {
      if (depth >= limits.max_depth)
        return refuse (error, i, "nested too deep");
      guint64 bit = G_GUINT64_CONSTANT (1) << (depth % 64);
      if (c == '{')
        kinds[depth / 64] |= bit;
      else
        kinds[depth / 64] &= ~bit;
      depth++;
      i++;
      state = c == '{' ? KEY_OR_CLOSE : VALUE_OR_CLOSE;
      continue;
    }
    if (c == '"') {
      i++;
      if (!scan_string (data, len, &i, error))
        return false;
    } else if (c == '-' || g_ascii_isdigit (c)) {
      if (!scan_number (data, len, &i, error))
        return false;
    } else if (len - i >= 4 && memcmp (data + i, "true", 4) == 0) {
      i += 4;
    } else if (len - i >= 5 && memcmp (data + i, "false", 5) == 0) {
      i += 5;
    } else if (len - i >= 4 && memcmp (data + i, "null", 4) == 0) {
      i += 4;
    } else {
      return refuse (error, i, "expected a value");
    }
    state = depth ? COMMA_OR_CLOSE : END;
  }
  if (state != END)
    return refuse (error, len, len == 0 ? "empty document" : "truncated document");
  return true;
}

JsonNode *
json_load (JsonParser *parser, const char *data, gsize len,
    const JsonLimits &limits, GError **error)
{
  if (!json_validate (data, len, limits, error))
    return nullptr;
  GError *err = nullptr;
  if (!json_parser_load_from_data (parser, data, static_cast<gssize> (len), &err)) {
    g_set_error (error, RTMS_ERROR, ERROR_PARSE, "invalid JSON: %s", err->message);
    g_error_free (err);
    return nullptr;
  }
  JsonNode *root = json_parser_get_root (parser);
  if (!root)
    g_set_error (error, RTMS_ERROR, ERROR_PARSE, "empty document");
  return root;
}

JsonNode *
json_load_file (JsonParser *parser, const char *path, const JsonLimits &limits,
    GError **error)
{
  int fd = g_open (path, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) {
    int e = errno;
    g_set_error (error, RTMS_ERROR, ERROR_IO, "cannot open %s: %s", path,
        g_strerror (e));
    return nullptr;
  }
  JsonNode *root = json_load_fd (parser, fd, path, limits, error);
  close (fd);
  return root;
}

JsonNode *
json_load_fd (JsonParser *parser, int fd, const char *path, const JsonLimits &limits,
    GError **error)
{
  std::string buf;
  char chunk[65536];
  bool failed = false;
  int e = 0;
  while (buf.size () <= limits.max_bytes) {
    ssize_t n = read (fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      e = errno;
      failed = true;
      break;
    }
    if (n == 0)
      break;
    buf.append (chunk, static_cast<gsize> (n));
  }
  if (failed) {
    g_set_error (error, RTMS_ERROR, ERROR_IO, "cannot read %s: %s", path,
        g_strerror (e));
    return nullptr;
  }
  if (buf.size () > limits.max_bytes) {
    g_set_error (error, RTMS_ERROR, ERROR_TOO_LARGE, "%s is over the limit of %"
        G_GSIZE_FORMAT " bytes", path, limits.max_bytes);
    return nullptr;
  }
  return json_load (parser, buf.data (), buf.size (), limits, error);
}

} // namespace rtms
