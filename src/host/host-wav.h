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
