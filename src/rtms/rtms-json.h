/* zoomrtms — bounded JSON input: every JSON document zoomrtms reads from
 * outside (RTMS WebSocket frames, webhook bodies, files read back from the
 * output root) passes json_validate() before json-glib sees it.
 *
 * Why (design.md "Rules that matter", issue "Hostile and unusual input"):
 * json-glib's parser and json-glib-based re-serialisation recurse once per
 * nesting level (a 300,000-deep `[[[…` frame overflows the stack), accept
 * non-JSON escapes (`\377`, `\x41`, `\'`) that produce invalid UTF-8, cut
 * strings at `\u0000`, accept `01`, `1.` and `.5`, and wrap integers outside
 * the int64 range silently (99999999999999999999 → -1). The msg 14 fast path
 * (simdjson, rtms-audio-fast.cpp) refuses all of these, so without this check
 * the two paths of parse_message() disagree.
 *
 * json_validate() is a strict RFC 8259 recogniser with no recursion: time is
 * O(len), memory is O(max_depth) bits. On top of RFC 8259 it refuses what
 * json-glib cannot represent faithfully: `\u0000` in a string (a NUL cannot
 * live in the C strings json-glib returns), integers (no fraction, no
 * exponent) outside [-2^63, 2^63 − 1], and numbers that overflow a double
 * (simdjson refuses the latter and keeps the former as uint64: the msg 14
 * fast path refuses uint64 values in any field).
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

namespace rtms {

/* Limits of one JSON document. */
struct JsonLimits {
  gsize max_bytes = 1024 * 1024;  /* document size, bytes */
  guint max_depth = 32;           /* nested arrays/objects; the root object
                                     or array is depth 1. simdjson counts
                                     differently (an empty container is not
                                     counted, a non-empty one needs one more
                                     level), so the msg 14 fast path with the
                                     same number declines some documents
                                     nested exactly this deep: they take the
                                     slow path, with the same result. */
};

/* The limits for one RTMS message (a WebSocket text or binary frame,
 * docs/protocol.md §4.7): 4 MiB — the largest audio or transcript message
 * is a few KiB; video and screen-share messages (msg 15/16), which zoomrtms
 * does not subscribe to, are skipped above this size. Depth 32: the deepest
 * RTMS message (msg 2 media_server.server_urls) is depth 3. */
constexpr gsize kMessageMaxBytes = 4 * 1024 * 1024;
constexpr guint kMessageMaxDepth = 32;

/** json_validate:
 * @data, @len: the document (need not be NUL-terminated)
 * @limits: size and depth limits
 *
 * Returns: true if @data is one JSON value (any type, surrounded by optional
 * whitespace), valid UTF-8, at most @limits.max_bytes long and nested at most
 * @limits.max_depth deep, with none of the refusals listed at the top of
 * this header. False with RTMS_ERROR_TOO_LARGE (size) or RTMS_ERROR_PARSE
 * ("… at byte N"); the message never quotes the input.
 */
bool json_validate (const char *data, gsize len, const JsonLimits &limits,
    GError **error);

/** json_load:
 * json_validate(), then json_parser_load_from_data() on @parser.
 * Returns: the root node (owned by @parser), or nullptr with the error of
 * json_validate() (or RTMS_ERROR_PARSE if json-glib still refuses).
 */
JsonNode *json_load (JsonParser *parser, const char *data, gsize len,
    const JsonLimits &limits, GError **error);

/** json_load_file:
 * Reads at most @limits.max_bytes of @path (a larger file is refused with
 * RTMS_ERROR_TOO_LARGE without reading it all) and json_load()s it.
 * Returns: the root node (owned by @parser), or nullptr with RTMS_ERROR_IO
 * (cannot open or read), RTMS_ERROR_TOO_LARGE or RTMS_ERROR_PARSE.
 */
JsonNode *json_load_file (JsonParser *parser, const char *path,
    const JsonLimits &limits, GError **error);

/** json_load_fd:
 * json_load_file() on an open file descriptor @fd (not closed; read from its
 * current offset); @what names it in errors (a path).
 */
JsonNode *json_load_fd (JsonParser *parser, int fd, const char *what,
    const JsonLimits &limits, GError **error);

} // namespace rtms
