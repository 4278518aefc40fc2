/* zoomrtms-host — merging the Ogg/Opus parts of a continued recording.
 *
 * A host restarted mid-call continues the recording (design.md "Lifetimes"):
 * its outputs so far become parts (audio.part1.opus, …) and the new pipeline
 * writes audio.opus from the timeline position where the parts end. At the
 * end the parts become one file. Opus packets cannot simply be appended
 * (each part is its own logical Ogg stream with its own pre-skip and end
 * trimming), so the parts are decoded and encoded again:
 *
 *   filesrc ! oggdemux ! opusdec ─┐   (one branch per part, in order)
 *   filesrc ! oggdemux ! opusdec ─┤
 *                                 concat ! audioconvert ! audioresample
 *                                   ! opusenc ! oggmux ! filesink (temp file)
 *
 * opusdec drops each part's pre-skip (RFC 7845 §4.2) and oggdemux's clipping
 * meta trims each part's end padding (§4.4), so the decoded timeline is the
 * sum of the parts, sample for sample; the merged file is encoded once more
 * (one more lossy generation). audioconvert/audioresample are passthrough
 * unless the parts' formats differ.
 */
#pragma once

#include <glib.h>

#include <string>
#include <vector>

namespace zhost {

/** ogg_opus_encoder_settings:
 * @pipeline_text: a pipeline description (a template's text, comments
 *   stripped), or ""
 *
 * Returns: the property assignments given to the first `opusenc` of
 * @pipeline_text ("audio-type=voice bitrate=32000"): the tokens after the
 * word `opusenc` up to the next `!` that have the form key=value; "" when
 * there is no opusenc (then the merge uses opusenc's defaults).
 */
std::string ogg_opus_encoder_settings (const std::string &pipeline_text);

/** ogg_opus_concat:
 * @parts: Ogg files each holding one Opus stream (the first logical stream
 *   that is Opus is used), in timeline order; at least one
 * @out: the file to write (replaced atomically)
 * @encoder_settings: key=value assignments for opusenc separated by blanks
 *   (see ogg_opus_encoder_settings()); "" for opusenc's defaults
 * @timeout_ms: how long the pipeline may run (milliseconds) before it is
 *   stopped and the merge fails; 0 means a bound from the parts' size
 *   (10 s + 1 s per 32 KiB: at 64 kbit/s, 4 s of audio, a re-encode runs far faster)
 * @duration_ns: (out) (optional): the decoded duration written
 *   (nanoseconds: decoded sample frames × 10⁹ / rate)
 *
 * Decodes every part and encodes them as one Ogg/Opus stream into
 * @out + ".merge.tmp" (same directory), fsyncs it, renames it over @out and
 * fsyncs the directory. Blocks the calling thread until the pipeline ends
 * (its bus is polled; no main context is iterated); the pipeline is set to
 * NULL on every path. The parts are not removed.
 * Returns: false with ZHOST_ERROR_IO when a part is missing, holds no Opus
 * stream or cannot be decoded, a setting is not an opusenc property, the
 * pipeline posts an error, the timeout passes, or the file cannot be
 * written; @out is then untouched and the temporary file removed.
 */
bool ogg_opus_concat (const std::vector<std::string> &parts, const std::string &out,
    const std::string &encoder_settings, guint timeout_ms, guint64 *duration_ns,
    GError **error);

} // namespace zhost
