/* zoomrtms-host — `--summary DIR`: what was recorded under an output root. */
#pragma once

#include <string>

namespace zhost {

/** print_summary:
 * Prints, per engagement directory of @output_root (sorted by name): the ids,
 * state and stop reason from engagement.json, every file with its size and,
 * for audio (.wav, .opus, .ogg), its duration and format from GstDiscoverer,
 * the transcript line count and the first @first_lines transcript lines.
 * Returns: the number of engagements found, or -1 if @output_root cannot be
 * read.
 */
int print_summary (const std::string &output_root, int first_lines = 3);

} // namespace zhost
