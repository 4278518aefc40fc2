/* zoomrtms-sim — hostile WebSocket frames (--hostile-frame), for testing how
 * a client survives what a broken or malicious RTMS server may send
 * (issue 8 "Hostile and unusual input"; docs/protocol.md §4.7 framing).
 *
 * A hostile frame is sent in addition to the call: it never replaces or
 * carries audio of a real channel, so a client that skips it loses nothing
 * and must reproduce the --dump-dir PCM exactly.
 */
#pragma once

#include <glib.h>

#include <string>

namespace sim {

/* One --hostile-frame [signaling:]KIND[:BYTES]@MS. */
struct HostileFrame {
  std::string kind;      /* one of hostile_frame_kinds() */
  gint64 at_ms = 0;      /* call time: sent just before the first packet whose
                            frame starts at or after @at_ms (ms from the call
                            start, like --mute), so --speed 0 places it too */
  gsize bytes = 0;       /* "oversize": total frame size in bytes */
  bool signaling = false; /* on the signaling socket instead of the media
                             socket carrying audio */
};

/* Default size of an "oversize" frame: 8 MiB, the frame of the original
 * report (over the client's old 4 MiB libsoup limit). */
constexpr gsize HOSTILE_OVERSIZE_DEFAULT = 8 * 1024 * 1024;
/* Nesting depth of "deep" / "deep-msg" (the report's frame). */
constexpr gsize HOSTILE_DEPTH = 300000;

/** hostile_frame_kinds:
 * Returns: the kinds with a one-line description each, for --help and the
 *   error message of a bad spec.
 */
const char *hostile_frame_kinds ();

/** parse_hostile_frame:
 * @spec: "[signaling:]KIND[:BYTES]@MS", e.g. "deep@2000",
 *   "oversize:2097152@1000", "signaling:deep-msg@500"; BYTES only for
 *   "oversize" (64 bytes to 1 GiB).
 * Returns: false (nothing set) for an unknown kind or a bad number.
 */
bool parse_hostile_frame (const char *spec, HostileFrame *out);

/** build_hostile_frame:
 * @stamp: the RTMS timestamp (epoch ms) to put in message-shaped frames
 * @binary: set to true if the frame must go as a binary frame (its bytes
 *   are not valid UTF-8, which libsoup refuses to send as text — RFC 6455
 *   §8.1 makes the receiver fail the connection for that)
 * Returns: the frame's payload.
 */
std::string build_hostile_frame (const HostileFrame &h, gint64 stamp,
    bool *binary);

} // namespace sim
