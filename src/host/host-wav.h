/* zoomrtms-host — repair of WAV files left by a killed host.
 *
 * design.md "End of stream": a host killed with SIGKILL leaves files that are
 * repaired on restart. wavenc writes its header first with placeholder sizes
 * and rewrites it on EOS (gstreamer-guide.md §6.3); without EOS the RIFF and
 * data sizes are wrong. The samples themselves are all on disk.
 */
#pragma once

#include <glib.h>

namespace zhost {

/** wav_repair:
 * @path: a RIFF/WAVE file
 * @changed: (out) (optional): TRUE if the header was rewritten
 *
 * Walks the chunks after "WAVE" to the "data" chunk and sets the data size
 * to (file size − data offset) rounded down to the fmt block align (bytes),
 * and the RIFF size to (data offset + data size − 8). Bytes after a trailing
 * partial sample frame are left in place. A file whose sizes are already
 * right is left untouched.
 * Returns: false with ZHOST_ERROR_WAV if the file is not RIFF/WAVE, has no
 * fmt or data chunk header, or cannot be read or written.
 */
bool wav_repair (const char *path, gboolean *changed, GError **error);

} // namespace zhost

#include <string>
#include <vector>

namespace zhost {

/* The format and size of a RIFF/WAVE file's data chunk. */
struct WavInfo {
  int channels = 0, rate = 0, bits = 0, block_align = 0;
  guint64 data_offset = 0;   /* bytes from the file start */
  guint64 data_bytes = 0;    /* whole frames on disk (the file, not the header) */
  guint64 frames () const { return block_align ? data_bytes / block_align : 0; }
};

/** wav_info:
 * Reads the fmt chunk and the position of the data chunk; data_bytes is
 * what the file holds after the data header, rounded down to block_align
 * (so a file killed before EOS reads right too).
 * Returns: false with ZHOST_ERROR_WAV (not RIFF/WAVE, no fmt/data, I/O).
 */
bool wav_info (const char *path, WavInfo *info, GError **error);

/** wav_concat:
 * Writes @out: the header of @parts[0] then the PCM of every part in order,
 * with the RIFF and data sizes set (wav_repair()). Every part must have the
 * same channels, rate and bits. Written to @out + ".tmp" then renamed.
 * Returns: false with ZHOST_ERROR_WAV (format mismatch, I/O); @out is then
 * untouched.
 */
bool wav_concat (const std::vector<std::string> &parts, const std::string &out,
    GError **error);

/** wav_leading_zero_frames:
 * Returns: how many sample frames at the start of the data are all zero
 * (every channel), -1 if the file cannot be read.
 */
gint64 wav_leading_zero_frames (const char *path);

} // namespace zhost
