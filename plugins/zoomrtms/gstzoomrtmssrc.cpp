/* zoomrtms — zoomrtmssrc, the live source of Zoom RTMS audio.
 *
 * Threads (design.md "Threads", gstreamer-guide.md §2.4; the model of
 * gst-plugins-rs generic/threadshare): the element has no streaming thread
 * of its own. The rtms::Client lives on one of the process-wide I/O
 * contexts (rtms::IoContext, one thread per core); its callbacks queue the
 * packets (bounded, under qlock) and, when a packet may complete an output
 * block, ask for a pump() at the end of that I/O iteration
 * (IoContext::defer: no GSource, no syscall, no thread hand-off). pump()
 * runs on the same thread: it feeds the Aligner (zoomrtms-aligner.h), turns
 * its blocks into buffers and pushes them downstream, holding the src
 * pad's stream lock as a GstTask would. A plain GstElement does what
 * GstBaseSrc did for a live source (change_state: NO_PREROLL, output only
 * in PLAYING, flush at PAUSED→READY; stream-start, caps, segment, EOS, the
 * flow-error rule). Other threads (state changes, an application EOS, a
 * detach) ask for a pump with IoContext::invoke_async; the ZCC role hold's
 * deadlines are a timer on the I/O context. $ZOOMRTMS_CONTEXT_WAIT batches
 * wake-ups (threadshare's context-wait; docs/benchmarks.md "Shared
 * threads" has the figures and the latency it adds).
 */

/**
 * SECTION:element-zoomrtmssrc
 * @title: zoomrtmssrc
 *
 * zoomrtmssrc receives one Zoom Realtime Media Stream (a Zoom Contact Center
 * engagement or a meeting): it runs the signaling and media handshakes of
 * the RTMS protocol v1, answers keep-alives, and outputs the audio as a live
 * stream.
 *
 * With codec=l16 the output is `audio/x-raw, format=S16LE`. Every RTMS
 * channel (a ZCC `channel_id`, a meeting `user_id`) is placed on one timeline
 * by its RTMS timestamps, never by arrival order: gaps (mute, hold, pause)
 * become silence of the exact length (buffers flagged GAP when every channel
 * is silent), duplicated or replayed packets are dropped, and every
 * correction is counted in #GstZoomRtmsSrc:stats. The output waits up to
 * #GstZoomRtmsSrc:align-hold for a channel that is behind (a sender's stall
 * and burst, a replayed backlog, a party joining later), so such audio is
 * placed at its timestamps; only audio later than that is dropped, counted,
 * and reported with a zoomrtms/late-audio message and a warning. Timestamps
 * more than 1 h from the stream's timeline are refused the same way, never
 * buffered. layout=mix sums the channels into one; layout=stereo
 * puts the customer (participant_mode "caller") left and the agent ("callee")
 * right; for a Contact Center engagement the output starts only once the
 * participant events told which channel is which, or after
 * #GstZoomRtmsSrc:role-timeout, and the audio of a channel that appears
 * later without a role (a failover's new channel_ids, a party joining)
 * waits the same way. A pause of every channel longer than #GstZoomRtmsSrc:max-gap-fill is
 * not filled: the timestamps jump, the next buffer is flagged DISCONT and a
 * warning is posted.
 *
 * Output buffers are one RTMS packet long (20 ms) by default;
 * #GstZoomRtmsSrc:block-ms makes them longer (the recording templates use
 * 100 ms): fewer buffers per second, at the price of that much more
 * latency (docs/benchmarks.md has the figures per setting).
 *
 * ## Threads
 *
 * The element has no streaming thread: downstream elements run on one of
 * the process's shared I/O threads (one per core, at most 4;
 * $ZOOMRTMS_IO_THREADS), which also read the sockets of every other stream
 * of that thread. An element downstream that blocks (a sink with
 * sync=true and a clock far ahead, a full queue, a disk that stalls) holds
 * up those streams as well; put a `queue` right after the source in such
 * pipelines, as with threadshare elements. $ZOOMRTMS_CONTEXT_WAIT (ms,
 * default 10; 0 = off) makes each I/O thread wake at most once per that
 * many ms while busy, handling what arrived meanwhile in one go (fewer
 * wake-ups, larger reads), at the price of up to that much more latency.
 *
 * layout=packets (codec=l16) is for zoomrtmsdemux, one aligned stream per
 * participant (a meeting with data-opt=multi, a Contact Center engagement):
 * every RTMS packet is output as received, one buffer each, unaligned and
 * not deduplicated, as `application/x-zoomrtms-packets` with its channel key
 * and RTMS timestamp in a GstZoomRtmsPacketMeta (zoomrtms-packet-meta.h);
 * PTS = the first packet's arrival running time + (timestamp − the first
 * packet's timestamp). zoomrtmsdemux documents why this is a separate
 * element rather than sometimes pads here.
 *
 * With codec=opus the Opus packets are passed through as `audio/x-opus`
 * (with an OpusHead/OpusTags streamheader), one packet per buffer. Opus
 * packets cannot be mixed without decoding, so only the first channel key
 * seen is output; packets of other channels are counted as dropped
 * (`frames-dropped` in the stats). Use meeting data-opt=mixed with Opus.
 *
 * Buffer timestamps come from the RTMS timestamps: PTS = the running time at
 * which the first packet arrived + (position on the RTMS timeline); OFFSET
 * and OFFSET_END are sample positions on that timeline (arrival times never
 * stamp a buffer). The latency query answers a minimum of one output block
 * (send-rate or #GstZoomRtmsSrc:block-ms, plus $ZOOMRTMS_CONTEXT_WAIT) and a
 * maximum of #GstZoomRtmsSrc:align-hold. (The element is not a GstBaseSrc
 * since issue 12: it has none of that class's properties, such as
 * do-timestamp or num-buffers.)
 *
 * The stream ends with EOS when Zoom stops it (STREAM_STATE_UPDATE
 * TERMINATED, SESSION_STATE_UPDATE STOPPED), after the received audio is
 * drained. An application EOS (`gst-launch-1.0 -e`, gst_element_send_event())
 * always finishes: the audio received until then is output first (nothing
 * held for alignment is dropped), then EOS; with #GstZoomRtmsSrc:eos-action
 * "stop" (the default) the element then asks Zoom to close the stream
 * (STREAM_CLOSE_REQ, msg 21: stop reason 20, the stream is over for good).
 *
 * ## Detach is not stop
 *
 * To end this pipeline but not the stream (a restart, an upgrade, handing
 * the stream to another host: design.md "Lifetimes"), send the custom
 * upstream event named "zoomrtms/detach" (public API,
 * GST_ZOOM_RTMS_DETACH_EVENT), at any time, from any thread:
 * |[
 * gst_element_send_event (src, gst_event_new_custom (GST_EVENT_CUSTOM_UPSTREAM,
 *     gst_structure_new_empty ("zoomrtms/detach")));
 * ]|
 * (or set #GstZoomRtmsSrc:eos-action to "detach" and send EOS). The element
 * closes both WebSockets at once WITHOUT msg 21 — Zoom holds the stream for
 * its grace window (docs/protocol.md §4.9) —, outputs everything received
 * (the audio held by align-hold too), posts zoomrtms/detached and pushes
 * EOS, so muxers finalize their files. The event returns FALSE when the
 * element is not running.
 *
 * ## Continuing a recording
 *
 * A pipeline that continues a stream recorded in part by an earlier one
 * (the host after a restart or a crash) sets #GstZoomRtmsSrc:timeline-origin
 * (from zoomrtms/timeline or zoomrtms/detached) and
 * #GstZoomRtmsSrc:timeline-offset (the samples the earlier parts hold):
 * its output starts at that timeline position, exact silence up to the
 * first packet, and whatever arrives for earlier positions (Zoom's
 * buffer_data backlog, a replay) is dropped as duplicate. With
 * #GstZoomRtmsSrc:packet-log every packet is also written to a write-ahead
 * log, which the next pipeline replays (#GstZoomRtmsSrc:replay-log) to
 * recover the audio a crash never let reach the file.
 *
 * ## Reconnection and superseded streams
 *
 * A lost connection is retried until Zoom's grace window has run out
 * (#GstZoomRtmsSrc:media-grace, #GstZoomRtmsSrc:signaling-grace, attempts at
 * most 5 s apart near the end, the last one 1 s before it); each outage
 * posts zoomrtms/interruption at its start and end and a warning.
 * Deliberate stops (§2.7) are never retried. When another consumer's newer
 * signaling handshake takes the stream over (a server that kicks the older
 * connection, §3.4), the element does not reconnect (that would kick the
 * other one in turn): it posts a warning and zoomrtms/superseded, outputs
 * what it received and pushes EOS.
 *
 * Handshake and connection failures post an ERROR with
 * the details fields `rtms-status-code` (gint, -1 if none), `rtms-stop-reason`
 * (gint, -1 if none) and `rtms-stream-id` (string): RESOURCE/NOT_AUTHORIZED
 * for a rejected signature, RESOURCE/OPEN_READ when the connection or the
 * handshakes fail, RESOURCE/READ when an established stream is lost,
 * STREAM/FORMAT when the negotiated media parameters cannot be output,
 * RESOURCE/SETTINGS for missing properties.
 *
 * Setting #GstZoomRtmsSrc:server-urls while running is a failover
 * (docs/protocol.md §4.9 row 1): the element runs the full handshake against
 * the new server and continues the same output stream; audio replayed by the
 * new server is dropped as duplicate. Setting it to the signaling URL already
 * in use (a duplicated or late webhook) is a no-op (logged at INFO): the
 * healthy connection stays.
 *
 * ## Element messages
 *
 * When #GstZoomRtmsSrc:post-messages is TRUE (the default) the element posts
 * these element messages on the bus (from its I/O thread):
 *
 * "zoomrtms/transcript" (msg 17 MEDIA_DATA_TRANSCRIPT; needs transcripts=true):
 * - "channel" G_TYPE_STRING: the ZCC channel_id or the meeting user_id.
 * - "participant-mode" G_TYPE_STRING: "caller", "callee", … or "" if unknown.
 * - "speaker" G_TYPE_STRING: display name (ZCC participant_info) or
 *   user_name, may be "".
 * - "text" G_TYPE_STRING: the UTF-8 text.
 * - "sentence-id" G_TYPE_INT64: sentence id, -1 if absent; a later message
 *   with the same id revises the text.
 * - "attribute" G_TYPE_INT: 1 = new sentence.
 * - "language" G_TYPE_INT: RTMS_TRANSCRIPT_LANGUAGE id, -1 if absent.
 * - "timestamp", "start-time", "end-time" G_TYPE_INT64: epoch ms (0 = absent).
 * - "running-time" G_TYPE_UINT64: running time (ns) of start-time (or
 *   timestamp) on the audio's timeline, GST_CLOCK_TIME_NONE before audio.
 *
 * "zoomrtms/participant" (msg 6 EVENT_UPDATE; one message per participant):
 * - "event-type" G_TYPE_INT, "event-name" G_TYPE_STRING: e.g. 8
 *   "CONSUMER_ANSWERED" (ZCC) or 3 "PARTICIPANT_JOIN" (meetings).
 * - "timestamp" G_TYPE_INT64: epoch ms of the event.
 * - "channel", "participant-mode", "user-id", "display-name", "queue-name"
 *   G_TYPE_STRING: from participant_info (ZCC) or the participant (meetings),
 *   "" when absent.
 *
 * "zoomrtms/stream-state" (msg 8 STREAM_STATE_UPDATE):
 * - "state" G_TYPE_INT, "state-name" G_TYPE_STRING: RTMS_STREAM_STATE.
 * - "reason" G_TYPE_INT, "reason-name" G_TYPE_STRING: RTMS_STOP_REASON.
 *
 * "zoomrtms/session-state" (msg 9 SESSION_STATE_UPDATE):
 * - "state" G_TYPE_INT, "state-name" G_TYPE_STRING: RTMS_SESSION_STATE.
 * - "stop-reason" G_TYPE_INT, "reason-name" G_TYPE_STRING: RTMS_STOP_REASON.
 * - "rtms-session-id" G_TYPE_STRING.
 *
 * "zoomrtms/late-audio" (a packet, or part of one, that was received but not
 * output; one message per packet, and a GST_ELEMENT_WARNING for the first
 * one of each reason and then every 100th):
 * - "channel" G_TYPE_STRING: the ZCC channel_id or the meeting user_id.
 * - "participant-mode" G_TYPE_STRING: "caller", "callee", … or "".
 * - "reason" G_TYPE_STRING: "late" (more than align-hold behind the most
 *   advanced channel: its audio was already output) or "out-of-range" (a
 *   timestamp below 0, or more than 1 h from the newest accepted one;
 *   after 100 such packets in a row that agree, the timeline follows them
 *   with a DISCONT).
 * - "timestamp" G_TYPE_INT64: the packet's RTMS timestamp, epoch ms.
 * - "dropped-samples" G_TYPE_UINT64, "dropped-ms" G_TYPE_DOUBLE: how much
 *   of its audio was dropped (part of it when it straddles the output).
 * - "align-hold" G_TYPE_UINT: the hold in force, ms.
 *
 * "zoomrtms/timeline" (once, with the first output buffer, when the
 * timeline's origin is fixed; the host journals it to continue the
 * recording):
 * - "timeline-origin" G_TYPE_INT64: RTMS timestamp (epoch ms) of timeline
 *   position 0.
 * - "rate" G_TYPE_INT: output sample rate, Hz.
 * - "channels" G_TYPE_INT: output channels.
 *
 * "zoomrtms/detached" (after a zoomrtms/detach event, or an EOS with
 * eos-action=detach, just before EOS, from the I/O thread):
 * - "timeline-origin" G_TYPE_INT64: epoch ms of timeline position 0 (-1 if
 *   no audio was received).
 * - "samples" G_TYPE_UINT64: timeline position (samples at the output rate)
 *   of the end of the last output sample: the next pipeline's
 *   timeline-offset.
 *
 * "zoomrtms/superseded" (another consumer's newer signaling handshake took
 * the stream over; posted just before EOS, with a GST_ELEMENT_WARNING):
 * - "rtms-stream-id" G_TYPE_STRING.
 *
 * "zoomrtms/interruption" (a lost connection, docs/protocol.md §4.9; at the
 * start of the outage, with a GST_ELEMENT_WARNING, and at its end):
 * - "cause" G_TYPE_STRING: "media" (media only) or "signaling" (signaling
 *   and media); at the end the widest loss during the outage.
 * - "start" G_TYPE_INT64: epoch ms (wall clock) when it started.
 * - "end" G_TYPE_INT64 (end message only): epoch ms when it ended.
 * - "recovered" G_TYPE_BOOLEAN (end message only): streaming again; FALSE
 *   when the grace window ran out, the stream was superseded, detached or
 *   stopped.
 *
 * "zoomrtms/stats" (every #GstZoomRtmsSrc:stats-interval ms of output, and
 * the value of #GstZoomRtmsSrc:stats):
 * - "frames-received" G_TYPE_UINT64: audio packets (msg 14) received.
 * - "frames-duplicated" G_TYPE_UINT64: dropped as duplicate or replay.
 * - "frames-late" G_TYPE_UINT64: dropped because their audio was already
 *   pushed (more than align-hold late).
 * - "late-samples" G_TYPE_UINT64: samples of received audio dropped as
 *   late (whole and partly late packets).
 * - "frames-out-of-range" G_TYPE_UINT64: packets refused for a timestamp
 *   far from the timeline.
 * - "frames-malformed" G_TYPE_UINT64: frames skipped (bad JSON, base64, size).
 * - "frames-dropped" G_TYPE_UINT64: dropped by queue overflow, Opus
 *   packets of a second channel, or packets received after an application
 *   EOS.
 * - "frames-replayed" G_TYPE_UINT64: packets read from replay-log and fed
 *   to the aligner (not in frames-received; those before timeline-offset
 *   are in frames-duplicated).
 * - "silence-samples" G_TYPE_UINT64: samples of silence inserted for gaps
 *   inside channels (per channel, summed).
 * - "samples-out" G_TYPE_UINT64: samples (per channel) pushed downstream.
 * - "channels" G_TYPE_INT: RTMS channels (channel_id / user_id) seen.
 * - "resyncs" G_TYPE_UINT64: timeline jumps (gaps over max-gap-fill).
 * - "channel-stats" GST_TYPE_ARRAY of "zoomrtms/channel" structures with
 *   "channel", "participant-mode" (strings), "frames", "duplicates", "late",
 *   "late-samples", "out-of-range", "silence-samples" (G_TYPE_UINT64).
 * - "latency-p50-ms", "latency-p99-ms", "latency-max-ms" G_TYPE_DOUBLE: the
 *   latency of the output buffers (see "Latency measurement" below); the
 *   percentiles are the upper edges of 1 ms histogram buckets, 0 before any
 *   buffer was measured.
 * - "latency-samples" G_TYPE_UINT64: buffers in the histogram.
 * - "latency-histogram-ms" G_TYPE_STRING: the sparse histogram,
 *   "BUCKET:COUNT,…" with BUCKET the lower edge in ms of a 1 ms bucket;
 *   bucket 2000 holds every latency of 2000 ms or more. Histograms of
 *   several streams add up exactly.
 *
 * ## Latency measurement
 *
 * Every output buffer carries a #GstReferenceTimestampMeta with the caps
 * `timestamp/x-unix`: its timestamp is the RTMS epoch time (ns since
 * 1970-01-01 UTC) of the buffer's first sample, i.e. the RTMS timestamp of
 * the newest packet that went into it (t0 + position × 1000 / rate ms; for
 * Opus the packet's own timestamp), its duration the buffer's. When a buffer
 * leaves the source pad (a pad probe: the moment it is handed to the next
 * element, which for a pipeline without a queue is the moment the sink gets
 * it), latency = g_get_real_time () − that epoch time. Against Zoom this
 * includes the clock offset between Zoom's servers and this machine; against
 * zoomrtms-sim at --speed 1 on the same machine the RTMS timestamp is the
 * packet's scheduled send time, so it is "sim send time → sink". The first
 * blocks of a stream are held back on purpose (200 ms, or align-hold if
 * smaller, so that a channel whose first packet comes a little later still
 * sets the start; longer while a channel is behind), and for a Contact
 * Center stereo capture until the participant roles are known
 * (#GstZoomRtmsSrc:role-timeout); those start-up blocks (the burst emitted
 * with the first block, at least 200 ms / send-rate + 1) are left out of
 * the histogram. While a channel is muted or behind, the others
 * are output up to align-hold late, and the histogram shows it.
 *
 * ## Example launch line
 * |[
 * ZOOM_APP_CLIENT_ID=… ZOOM_APP_CLIENT_SECRET=… gst-launch-1.0 -e \
 *   zoomrtmssrc server-urls=wss://…/signaling engagement-id=… rtms-stream-id=… \
 *   layout=stereo ! wavenc ! filesink location=call.wav
 * ]| Records a ZCC engagement: customer left, agent right.
 */

#include "config.h"

#include "gstzoomrtmssrc.h"
#include "gstzoomrtmselements.h"
#include "zoomrtms-aligner.h"
#include "zoomrtms-packet-meta.h"
#include "zoomrtms-packet-log.h"

#include <gst/audio/audio.h>
#include <gst/pbutils/pbutils.h>
#include <gst/tag/tag.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "rtms-client.h"

GST_DEBUG_CATEGORY_STATIC (gst_zoom_rtms_src_debug);
#define GST_CAT_DEFAULT gst_zoom_rtms_src_debug

#define DEFAULT_CODEC GST_ZOOM_RTMS_CODEC_L16
#define DEFAULT_RATE 16000
#define DEFAULT_SEND_RATE 20
#define DEFAULT_DATA_OPT GST_ZOOM_RTMS_DATA_OPT_MIXED
#define DEFAULT_LAYOUT GST_ZOOM_RTMS_LAYOUT_MIX
#define DEFAULT_MAX_GAP_FILL 60000
#define DEFAULT_TRANSCRIPTS TRUE
#define DEFAULT_BUFFER_DATA TRUE
#define DEFAULT_POST_MESSAGES TRUE
#define DEFAULT_STATS_INTERVAL 0
/* Contact Center, layout=stereo: longest wait (wall clock, ms after the
 * first audio packet) for the participant events that say which channel is
 * the customer and which the agent (#GstZoomRtmsSrc:role-timeout). */
#define DEFAULT_ROLE_TIMEOUT 2000
/* #GstZoomRtmsSrc:align-hold: how long (ms) the output waits for a channel
 * that is behind (zoomrtms-aligner.h "the hold"). */
#define DEFAULT_ALIGN_HOLD 1000
/* #GstZoomRtmsSrc:block-ms: output buffer length, ms; 0 = one packet. */
#define DEFAULT_BLOCK_MS 0
#define MAX_BLOCK_MS 1000
/* Output buffers kept in the element's buffer pool (more in flight are
 * allocated and freed as usual). */
#define POOL_BUFFERS 4
#define DEFAULT_EOS_ACTION GST_ZOOM_RTMS_EOS_ACTION_STOP
#define DEFAULT_TIMELINE_ORIGIN -1
#define DEFAULT_TIMELINE_OFFSET 0
#define DEFAULT_PACKET_LOG_FLUSH_MS 200
#define DEFAULT_MEDIA_GRACE 30000
#define DEFAULT_SIGNALING_GRACE 60000
/* replay-log: records fed per produce() before looking for output */
#define REPLAY_BATCH 64
#define MIN_ALIGN_HOLD 20
#define MAX_ALIGN_HOLD 600000
/* Bounded queue between the client's callbacks and pump(): 60 s of
 * buffer_data backlog of 4 channels at 50 packets/s fits (≈ 13 MB of L16
 * at 16 kHz). Past it the oldest packets are dropped with a warning. */
#define MAX_QUEUE_ITEMS 12000
#define CLOSE_WAIT_MS 1000
/* OpusHead pre-skip for the passthrough streamheader: RTMS does not say how
 * its packets were encoded; 312 samples (6.5 ms at 48 kHz) is libopus's
 * encoder look-ahead, what opusenc writes. */
#define OPUS_PRE_SKIP 312
/* Latency histogram: 1 ms buckets 0..LATENCY_BUCKETS-1, then one overflow
 * bucket. */
#define LATENCY_BUCKETS 2000
/* zoomrtms/late-audio: a GST_ELEMENT_WARNING for the first dropped packet
 * of each kind, then one per this many. */
#define LATE_WARNING_EVERY 100

/* The reference of the GstReferenceTimestampMeta on every output buffer. */
static GstCaps *unix_ts_caps = nullptr;

enum
{
  PROP_0,
  PROP_SERVER_URLS,
  PROP_RTMS_STREAM_ID,
  PROP_ENGAGEMENT_ID,
  PROP_MEETING_UUID,
  PROP_WEBINAR_UUID,
  PROP_SESSION_ID,
  PROP_CLIENT_ID,
  PROP_CLIENT_SECRET,
  PROP_SIGNATURE,
  PROP_CA_FILE,
  PROP_CODEC,
  PROP_RATE,
  PROP_SEND_RATE,
  PROP_DATA_OPT,
  PROP_LAYOUT,
  PROP_MAX_GAP_FILL,
  PROP_TRANSCRIPTS,
  PROP_BUFFER_DATA,
  PROP_POST_MESSAGES,
  PROP_STATS_INTERVAL,
  PROP_STATS,
  PROP_ROLE_TIMEOUT,
  PROP_ALIGN_HOLD,
  PROP_EOS_ACTION,
  PROP_TIMELINE_ORIGIN,
  PROP_TIMELINE_OFFSET,
  PROP_PACKET_LOG,
  PROP_PACKET_LOG_FLUSH_MS,
  PROP_REPLAY_LOG,
  PROP_MEDIA_GRACE,
  PROP_SIGNALING_GRACE,
  PROP_BLOCK_MS,
};

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC,
    GST_PAD_ALWAYS,
    GST_STATIC_CAPS ("audio/x-raw, format = (string) S16LE, "
        "layout = (string) interleaved, "
        "rate = (int) { 8000, 16000, 32000, 48000 }, "
        "channels = (int) [ 1, 2 ]; "
        "audio/x-opus, channel-mapping-family = (int) 0, "
        "channels = (int) [ 1, 2 ]; "
        ZOOMRTMS_PACKETS_CAPS_NAME ", format = (string) S16LE, "
        "rate = (int) { 8000, 16000, 32000, 48000 }, "
        "packet-ms = (int) [ 1, 1000 ]"));

/* *INDENT-OFF* */
namespace {

struct Settings {
  std::string server_urls;
  std::string rtms_stream_id;
  std::string engagement_id;
  std::string meeting_uuid;
  std::string webinar_uuid;
  std::string session_id;
  std::string client_id;
  std::string client_secret;
  std::string signature;
  std::string ca_file;
  GstZoomRtmsCodec codec = DEFAULT_CODEC;
  guint rate = DEFAULT_RATE;
  guint send_rate = DEFAULT_SEND_RATE;
  GstZoomRtmsDataOpt data_opt = DEFAULT_DATA_OPT;
  GstZoomRtmsLayout layout = DEFAULT_LAYOUT;
  guint max_gap_fill = DEFAULT_MAX_GAP_FILL;
  gboolean transcripts = DEFAULT_TRANSCRIPTS;
  gboolean buffer_data = DEFAULT_BUFFER_DATA;
  guint stats_interval = DEFAULT_STATS_INTERVAL;
  guint role_timeout = DEFAULT_ROLE_TIMEOUT;
  guint align_hold = DEFAULT_ALIGN_HOLD;
  guint block_ms = DEFAULT_BLOCK_MS;
  GstZoomRtmsEosAction eos_action = DEFAULT_EOS_ACTION;
  gint64 timeline_origin = DEFAULT_TIMELINE_ORIGIN;
  guint64 timeline_offset = DEFAULT_TIMELINE_OFFSET;
  std::string packet_log;
  guint packet_log_flush_ms = DEFAULT_PACKET_LOG_FLUSH_MS;
  std::string replay_log;
  guint media_grace = DEFAULT_MEDIA_GRACE;
  guint signaling_grace = DEFAULT_SIGNALING_GRACE;
};

/* What the client's callbacks hand to pump() (both on the I/O thread;
 * qlock also serves the application's threads). */
struct Item {
  enum Kind { READY, AUDIO, FIRST_TS, MODE, EXPECT } kind = AUDIO;
  const std::string *keyp = nullptr; /* AUDIO: interned channel key */
  std::string key;                   /* MODE, EXPECT */
  std::string mode;
  gint64 ts = 0;
  std::vector<guint8> data;
  rtms::AudioParams params;
};

} // namespace

struct GstZoomRtmsSrcPrivate {
  /* settings, guarded by lock */
  std::mutex lock;
  Settings settings;
  std::atomic<bool> post_messages { DEFAULT_POST_MESSAGES };

  /* client callbacks → pump(), guarded by qlock. A pump is asked for
   * only when pump() waits (consumer_waiting) and either a packet advanced the oldest
   * of the channels' newest timestamps (it may complete a block), or
   * 2 × channels packets are queued (a muted channel: the aligner's hold
   * window decides), or for any other item: about once per block, not once
   * per packet. */
  std::mutex qlock;
  std::condition_variable qcond;
  std::vector<Item> queue;
  std::vector<Item> spare;          /* pump(): swapped with queue */
  std::vector<std::vector<guint8>> data_pool; /* recycled packet buffers */
  bool consumer_waiting = false;
  size_t queued_audio = 0;
  /* packets per output block (block-ms / send-rate, at least 1) and the
   * block in ms: a pump is asked for about once per block (set at
   * negotiation) */
  std::atomic<int> wake_packets { 1 };
  std::atomic<gint64> wake_block_ms { 0 };
  std::atomic<gint64> wake_packet_ms { 0 };
  /* channel keys, interned by the I/O thread (never shrinks while running;
   * items point into it) */
  std::deque<std::string> keys;
  std::vector<gint64> keys_last_ts; /* newest timestamp per key */
  /* per key: its entry in participants (nullptr until there is one), so
   * the packet log's participant_mode costs no lookup per packet */
  std::vector<const rtms::ParticipantInfo *> keys_info;
  bool flushing = false;            /* PAUSED→READY until the next start */
  /* the shared-thread model ("Threads" at the top of this file): pump()
   * runs on the client's I/O thread. playing: between PAUSED→PLAYING and
   * PLAYING→PAUSED (a live source outputs only then); ended: EOS (or an
   * error and EOS) was pushed, nothing more until the next start */
  bool playing = false;
  bool ended = false;
  bool closed = false;              /* on_closed fired */
  /* application EOS (send_event): output what was received, then EOS;
   * audio arriving after it is not queued */
  bool app_eos = false;
  bool app_eos_draining = false;
  bool have_error = false;
  rtms::ClientError error;
  /* zoomrtms/detach (or an application EOS with eos-action=detach): the
   * client was detached, the output drains as after an application EOS,
   * then zoomrtms/detached and EOS */
  bool detach_requested = false;
  /* the client was kicked by a newer signaling handshake: drain, then
   * zoomrtms/superseded and EOS */
  bool superseded = false;
  bool end_message_posted = false;
  bool ever_ready = false;
  bool discont_pending = false;     /* queue overflow */
  GstClockTime anchor = GST_CLOCK_TIME_NONE; /* running time of 1st packet */
  bool have_first_audio = false;
  std::chrono::steady_clock::time_point first_audio; /* arrival, 1st packet */

  /* counters written by the I/O thread */
  std::atomic<guint64> frames_received { 0 }; /* incremented under qlock */
  std::atomic<guint64> frames_malformed { 0 };
  std::atomic<guint64> frames_dropped { 0 };
  std::atomic<gint64> t0_ms { G_MININT64 };
  /* timeline-offset in ms (transcript running times), set at start */
  std::atomic<gint64> offset_ms { 0 };
  /* write-ahead packet log (packet-log): appended on the I/O thread (and
   * by the replay), written by the I/O context's tick; plog_lock */
  std::mutex plog_lock;
  zoomrtms::PacketLogWriter plog;
  guint plog_tick = 0;              /* the tick's id (I/O thread) */
  gint64 plog_flush_us = 0;         /* packet-log-flush-ms */
  gint64 plog_next_flush_us = 0;    /* monotonic; I/O thread */
  bool plog_warned = false;
  /* ZCC participant_info by channel_id, for transcripts (I/O thread only) */
  std::map<std::string, rtms::ParticipantInfo> participants;

  /* I/O thread only: a pump() is deferred to the end of the I/O
   * iteration (IoContext::defer); the timer that runs pump() at a deadline
   * (the ZCC role hold, a detach in progress) and that deadline */
  bool pump_deferred = false;
  GSource *wake_timer = nullptr;
  gint64 wake_timer_at = 0;         /* monotonic, µs */
  /* src pad state, guarded by the pad's stream lock */
  bool stream_start_pushed = false;
  bool segment_pushed = false;

  /* the client: created and destroyed on the I/O thread; the pointer is
   * guarded by lock */
  std::shared_ptr<rtms::IoContext> io;
  std::unique_ptr<rtms::Client> client;
  /* between start() and stop(): the client exists or is being created
   * on the I/O thread (guarded by lock) */
  bool started = false;
  std::string stream_id;
  bool zcc = true;
  bool multi = false;               /* meeting data_opt multi */

  /* streaming-thread state; slock guards it against the stats getter */
  std::mutex slock;
  std::unique_ptr<zoomrtms::Aligner> aligner;
  bool negotiated = false;
  rtms::AudioParams params;
  bool opus = false;
  bool packets = false;        /* layout=packets (zoomrtms-packet-meta.h) */
  int rate = 0;
  int channels = 1;
  guint64 samples_out = 0;
  /* continuation (timeline-offset): the first output position, samples */
  guint64 pts_offset = 0;
  /* OFFSET_END of the last output buffer (timeline position, samples) */
  guint64 last_end = 0;
  bool timeline_posted = false;
  /* replay-log, read by pump() */
  std::unique_ptr<zoomrtms::PacketLogReader> replay;
  zoomrtms::PacketLogRecord replay_rec;
  std::string replay_warning;       /* torn/garbled tail, posted unlocked */
  guint64 frames_replayed = 0;
  rtms::AudioParams requested;      /* what start() asked for (msg 3) */
  guint64 next_stats_ms = 0;
  guint stats_interval = 0;
  /* Opus passthrough */
  std::deque<GstBuffer *> opus_out;
  std::string opus_key;
  gint64 opus_t0 = G_MININT64;
  gint64 opus_last_ts = G_MININT64;
  guint64 opus_frames = 0, opus_duplicates = 0, opus_late = 0;
  bool opus_discont = true;
  bool overflow_discont = false;    /* packets were dropped: next DISCONT */
  /* start-up hold for the ZCC roles (zoomrtms-aligner.h), ms; 0 = none */
  guint role_timeout = 0;
  bool hold_timed_out = false;
  /* the role hold of channels that appear later (zoomrtms-aligner.h): when
   * produce() first saw each pending channel (wall clock; its deadline is
   * role_timeout later), and the aligner's overflows already reported */
  std::map<std::string, std::chrono::steady_clock::time_point> role_waits;
  guint64 role_overflows_seen = 0;
  /* the aligner's hold, ms, as negotiated (latency query) */
  guint align_hold = 0;
  /* packets the aligner dropped (late, out of range), posted as
   * zoomrtms/late-audio after slock is released */
  struct LateReport {
    std::string channel, mode, reason;
    gint64 timestamp;
    guint64 samples;
  };
  std::vector<LateReport> late_reports;
  guint64 late_reported = 0, oor_reported = 0;
  zoomrtms::AlignedBlock out_block;   /* reused by take_output_locked */
  /* output buffers of a whole block (L16): recycled once downstream
   * releases them, so steady state allocates no sample memory */
  GstBufferPool *pool = nullptr;
  gsize pool_size = 0;                /* bytes per pooled buffer */
  guint block_ms = 0;                 /* output block in force, ms */
  /* latency of buffers leaving the src pad (pad probe, in pump()) */
  std::vector<guint32> latency_hist; /* LATENCY_BUCKETS + 1, lazily sized */
  guint64 latency_samples = 0;
  guint64 latency_skipped = 0;      /* start-up blocks not in the histogram */
  double latency_max_ms = 0;
};
/* *INDENT-ON* */

struct _GstZoomRtmsSrc
{
  GstElement parent;
  GstPad *srcpad;
  GstZoomRtmsSrcPrivate *priv;
};

#define gst_zoom_rtms_src_parent_class parent_class
G_DEFINE_TYPE (GstZoomRtmsSrc, gst_zoom_rtms_src, GST_TYPE_ELEMENT);
GST_ELEMENT_REGISTER_DEFINE (zoomrtmssrc, "zoomrtmssrc", GST_RANK_NONE,
    GST_TYPE_ZOOM_RTMS_SRC);

/* ---------------------------------------------------------------- enums */

GType
gst_zoom_rtms_codec_get_type (void)
{
  static GType type = 0;
  static std::once_flag once;
  std::call_once (once,[&]() {
        static const GEnumValue values[] = {
          {GST_ZOOM_RTMS_CODEC_L16, "L16 raw PCM (S16LE)", "l16"},
          {GST_ZOOM_RTMS_CODEC_OPUS, "Opus (48 kHz, passed through)", "opus"},
          {0, nullptr, nullptr},
        };
        type = g_enum_register_static ("GstZoomRtmsCodec", values);
      });
  return type;
}

GType
gst_zoom_rtms_data_opt_get_type (void)
{
  static GType type = 0;
  static std::once_flag once;
  std::call_once (once,[&]() {
        static const GEnumValue values[] = {
          {GST_ZOOM_RTMS_DATA_OPT_MIXED, "One mixed stream (data_opt 1)",
              "mixed"},
          {GST_ZOOM_RTMS_DATA_OPT_MULTI,
              "One stream per participant (data_opt 2)", "multi"},
          {0, nullptr, nullptr},
        };
        type = g_enum_register_static ("GstZoomRtmsDataOpt", values);
      });
  return type;
}

GType
gst_zoom_rtms_layout_get_type (void)
{
  static GType type = 0;
  static std::once_flag once;
  std::call_once (once,[&]() {
        static const GEnumValue values[] = {
          {GST_ZOOM_RTMS_LAYOUT_MIX, "Mono: the sum of every channel", "mix"},
          {GST_ZOOM_RTMS_LAYOUT_STEREO,
              "Stereo: customer (caller) left, agent (callee) right",
              "stereo"},
          {GST_ZOOM_RTMS_LAYOUT_AUTO,
              "By product: stereo for Contact Center, mix for meetings, "
              "webinars and sessions", "auto"},
          {GST_ZOOM_RTMS_LAYOUT_PACKETS,
              "Every packet unaligned with its participant key, for "
              "zoomrtmsdemux (one stream per participant)", "packets"},
          {0, nullptr, nullptr},
        };
        type = g_enum_register_static ("GstZoomRtmsLayout", values);
      });
  return type;
}

GType
gst_zoom_rtms_eos_action_get_type (void)
{
  static GType type = 0;
  static std::once_flag once;
  std::call_once (once,[&]() {
        static const GEnumValue values[] = {
          {GST_ZOOM_RTMS_EOS_ACTION_STOP,
              "Stop: drain, then STREAM_CLOSE_REQ (Zoom ends the stream)",
              "stop"},
          {GST_ZOOM_RTMS_EOS_ACTION_DETACH,
              "Detach: close the sockets without STREAM_CLOSE_REQ (Zoom keeps "
              "the stream for its grace window), then drain", "detach"},
          {0, nullptr, nullptr},
        };
        type = g_enum_register_static ("GstZoomRtmsEosAction", values);
      });
  return type;
}

/* -------------------------------------------------------------- helpers */

static GstClockTime
current_running_time (GstZoomRtmsSrc * self)
{
  GstClock *clock = gst_element_get_clock (GST_ELEMENT (self));
  if (!clock)
    return GST_CLOCK_TIME_NONE;
  GstClockTime now = gst_clock_get_time (clock);
  gst_object_unref (clock);
  GstClockTime base = gst_element_get_base_time (GST_ELEMENT (self));
  return now >= base ? now - base : 0;
}

static void
post_element_message (GstZoomRtmsSrc * self, GstStructure * s)
{
  if (!self->priv->post_messages.load ()) {
    gst_structure_free (s);
    return;
  }
  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self), s));
}

/* Upper edge (ms) of the bucket holding the @q quantile (0..1). Caller
 * holds slock. */
static double
latency_quantile_locked (GstZoomRtmsSrcPrivate * priv, double q)
{
  if (priv->latency_samples == 0)
    return 0;
  guint64 rank = (guint64) (q * (double) priv->latency_samples + 0.999999);
  if (rank < 1)
    rank = 1;
  guint64 cum = 0;
  for (size_t b = 0; b < priv->latency_hist.size (); b++) {
    cum += priv->latency_hist[b];
    if (cum >= rank)
      return b < LATENCY_BUCKETS ? (double) (b + 1) : priv->latency_max_ms;
  }
  return priv->latency_max_ms;
}

/* Adds the latency fields to @s (see "Latency measurement" in the SECTION
 * comment). Caller holds slock. */
static void
add_latency_stats_locked (GstZoomRtmsSrc * self, GstStructure * s)
{
  auto priv = self->priv;
  std::string hist;
  char tmp[48];
  for (size_t b = 0; b < priv->latency_hist.size (); b++) {
    if (!priv->latency_hist[b])
      continue;
    g_snprintf (tmp, sizeof tmp, "%s%u:%u", hist.empty ()? "" : ",",
        (guint) b, priv->latency_hist[b]);
    hist += tmp;
  }
  gst_structure_set (s,
      "latency-p50-ms", G_TYPE_DOUBLE, latency_quantile_locked (priv, 0.50),
      "latency-p99-ms", G_TYPE_DOUBLE, latency_quantile_locked (priv, 0.99),
      "latency-max-ms", G_TYPE_DOUBLE, priv->latency_max_ms,
      "latency-samples", G_TYPE_UINT64, priv->latency_samples,
      "latency-histogram-ms", G_TYPE_STRING, hist.c_str (), nullptr);
}

/* Builds the zoomrtms/stats structure. Caller holds slock. */
static GstStructure *
build_stats_locked (GstZoomRtmsSrc * self)
{
  auto priv = self->priv;
  guint64 dup = 0, late = 0, late_samples = 0, oor = 0, silence = 0,
      resyncs = 0;
  gint n_channels = 0;
  GValue arr = G_VALUE_INIT;
  g_value_init (&arr, GST_TYPE_ARRAY);
  if (priv->aligner) {
    for (const auto &c:priv->aligner->stats ()) {
      dup += c.duplicates;
      late += c.late;
      late_samples += c.late_samples;
      oor += c.out_of_range;
      silence += c.silence_samples;
      n_channels++;
      GValue v = G_VALUE_INIT;
      g_value_init (&v, GST_TYPE_STRUCTURE);
      GstStructure *cs = gst_structure_new ("zoomrtms/channel",
          "channel", G_TYPE_STRING, c.key.c_str (),
          "participant-mode", G_TYPE_STRING, c.participant_mode.c_str (),
          "frames", G_TYPE_UINT64, (guint64) c.frames,
          "duplicates", G_TYPE_UINT64, (guint64) c.duplicates,
          "late", G_TYPE_UINT64, (guint64) c.late,
          "late-samples", G_TYPE_UINT64, (guint64) c.late_samples,
          "out-of-range", G_TYPE_UINT64, (guint64) c.out_of_range,
          "silence-samples", G_TYPE_UINT64, (guint64) c.silence_samples,
          nullptr);
      g_value_take_boxed (&v, cs);
      gst_value_array_append_and_take_value (&arr, &v);
    }
    resyncs = priv->aligner->resyncs ();
  } else if (priv->opus) {
    dup = priv->opus_duplicates;
    late = priv->opus_late;
    n_channels = priv->opus_key.empty ()? 0 : 1;
  }
  GstStructure *s = gst_structure_new ("zoomrtms/stats",
      "frames-received", G_TYPE_UINT64, priv->frames_received.load (),
      "frames-duplicated", G_TYPE_UINT64, dup,
      "frames-late", G_TYPE_UINT64, late,
      "late-samples", G_TYPE_UINT64, late_samples,
      "frames-out-of-range", G_TYPE_UINT64, oor,
      "frames-malformed", G_TYPE_UINT64, priv->frames_malformed.load (),
      "frames-dropped", G_TYPE_UINT64, priv->frames_dropped.load (),
      "frames-replayed", G_TYPE_UINT64, priv->frames_replayed,
      "silence-samples", G_TYPE_UINT64, silence,
      "samples-out", G_TYPE_UINT64, priv->samples_out,
      "channels", G_TYPE_INT, n_channels,
      "resyncs", G_TYPE_UINT64, resyncs, nullptr);
  gst_structure_take_value (s, "channel-stats", &arr);
  add_latency_stats_locked (self, s);
  return s;
}

/* ------------------------------------------------- I/O thread callbacks */

/* Queues @item; caller holds qlock. Returns: whether to ask for a pump()
 * (request_pump() after unlocking). */
static void request_pump (GstZoomRtmsSrc * self);

static bool
push_item_locked (GstZoomRtmsSrc * self, Item && item, bool completes = true)
{
  auto priv = self->priv;
  if (item.kind == Item::AUDIO && priv->queue.size () >= MAX_QUEUE_ITEMS) {
    for (auto it = priv->queue.begin (); it != priv->queue.end (); ++it) {
      if (it->kind == Item::AUDIO) {
        priv->queue.erase (it);
        priv->queued_audio--;
        break;
      }
    }
    if (priv->frames_dropped.fetch_add (1) == 0)
      GST_ELEMENT_WARNING (self, RESOURCE, READ,
          ("Audio arrives faster than the pipeline takes it"),
          ("queue of %d packets full, dropping the oldest", MAX_QUEUE_ITEMS));
    priv->discont_pending = true;
  }
  bool audio = item.kind == Item::AUDIO;
  priv->queue.push_back (std::move (item));
  if (audio)
    priv->queued_audio++;
  if (!priv->consumer_waiting)
    return false;
  if (audio && !completes && priv->queued_audio < 2 * priv->keys.size () *
      (size_t) MAX (1, priv->wake_packets.load (std::memory_order_relaxed)))
    return false;
  priv->consumer_waiting = false;
  return true;
}

static void
push_item (GstZoomRtmsSrc * self, Item && item)
{
  auto priv = self->priv;
  bool wake;
  {
    std::lock_guard < std::mutex > lk (priv->qlock);
    wake = push_item_locked (self, std::move (item));
  }
  if (wake)
    request_pump (self);
}

static void
on_ready (GstZoomRtmsSrc * self, const rtms::AudioParams & p)
{
  GST_INFO_OBJECT (self, "media handshake done: codec %s, sample_rate %d, "
      "channel %d, send_rate %d ms", rtms::codec_name (p.codec),
      rtms::sample_rate_hz (p.sample_rate), p.channel, p.send_rate);
  Item it;
  it.kind = Item::READY;
  it.params = p;
  {
    std::lock_guard < std::mutex > lk (self->priv->qlock);
    self->priv->ever_ready = true;
  }
  push_item (self, std::move (it));
}

/* @priv: self's (passed in so that a packet does not read the element's
 * instance, a cache line of its own, just for it) */
static void
on_audio (GstZoomRtmsSrc * self, GstZoomRtmsSrcPrivate * priv,
    const rtms::AudioFrame & f)
{
  if (priv->t0_ms.load (std::memory_order_relaxed) == G_MININT64) {
    gint64 unset = G_MININT64;
    priv->t0_ms.compare_exchange_strong (unset, f.timestamp_ms);
  }
  Item it;
  it.kind = Item::AUDIO;
  it.ts = f.timestamp_ms;
  bool wake = false;
  const rtms::ParticipantInfo *info;
  {
    std::lock_guard < std::mutex > lk (priv->qlock);
    /* counted under qlock: every packet counted before an application EOS
     * (send_event takes qlock) is queued, and output before the EOS (only
     * this thread writes it: no atomic increment needed) */
    priv->frames_received.store (priv->frames_received.load
        (std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    size_t ki = 0;
    for (; ki < priv->keys.size (); ki++)
      if (priv->keys[ki] == *f.channel_key)
        break;
    if (ki == priv->keys.size ()) {
      priv->keys.push_back (*f.channel_key);
      priv->keys_last_ts.push_back (G_MININT64);
      auto pi = priv->participants.find (*f.channel_key);
      priv->keys_info.push_back (pi != priv->participants.end ()?
          &pi->second : nullptr);
    }
    info = priv->keys_info[ki];
    if (priv->app_eos) {
      priv->frames_dropped++;   /* after the application EOS: not taken */
      goto log;
    }
    if (!GST_CLOCK_TIME_IS_VALID (priv->anchor))
      priv->anchor = current_running_time (self);
    if (!priv->have_first_audio) {
      priv->have_first_audio = true;
      priv->first_audio = std::chrono::steady_clock::now ();
    }
    it.keyp = &priv->keys[ki];
    /* does this packet advance the oldest channel? */
    gint64 old_min = G_MAXINT64, new_min = G_MAXINT64;
    for (gint64 t:priv->keys_last_ts)
      old_min = MIN (old_min, t);
    priv->keys_last_ts[ki] = MAX (priv->keys_last_ts[ki], f.timestamp_ms);
    for (gint64 t:priv->keys_last_ts)
      new_min = MIN (new_min, t);
    /* with block-ms over one packet: only when it completes a block of
     * the oldest channel (t0's grid; t0 may still move back before the
     * first block, which only makes a wake-up early or late once) */
    int ppb = priv->wake_packets.load (std::memory_order_relaxed);
    bool completes = new_min > old_min;
    gint64 t0 = priv->t0_ms.load ();
    if (ppb > 1 && completes && old_min != G_MININT64 && t0 != G_MININT64) {
      gint64 blk = priv->wake_block_ms.load (std::memory_order_relaxed);
      gint64 pkt = priv->wake_packet_ms.load (std::memory_order_relaxed);
      auto block_of =[&](gint64 t) {
        gint64 r = t + pkt - t0;
        return r >= 0 ? r / blk : -((-r + blk - 1) / blk);
      };
      completes = block_of (new_min) > block_of (old_min);
    }
    if (!priv->data_pool.empty ()) {
      it.data = std::move (priv->data_pool.back ());
      priv->data_pool.pop_back ();
    }
    it.data.assign (f.pcm, f.pcm + f.size);
    wake = push_item_locked (self, std::move (it), completes);
  }
log:
  {
    /* write-ahead packet log: every packet accepted from the wire (also
     * one not taken after an application EOS); the participant_mode known
     * now (a pointer into participants: this thread only) */
    std::lock_guard < std::mutex > lk (priv->plog_lock);
    if (priv->plog.is_open ()) {
      static const std::string none;
      priv->plog.append (*f.channel_key, info ? info->participant_mode : none,
          f.timestamp_ms, f.pcm, f.size);
    }
  }
  if (wake)
    request_pump (self);
}

static void
on_transcript (GstZoomRtmsSrc * self, const rtms::TranscriptData & t)
{
  auto priv = self->priv;
  GstClockTime rt = GST_CLOCK_TIME_NONE;
  gint64 t0 = priv->t0_ms.load ();
  GstClockTime anchor;
  {
    std::lock_guard < std::mutex > lk (priv->qlock);
    anchor = priv->anchor;
  }
  gint64 at = t.start_time > 0 ? t.start_time : t.timestamp;
  gint64 from = t0 == G_MININT64 ? G_MININT64 : t0 + priv->offset_ms.load ();
  if (GST_CLOCK_TIME_IS_VALID (anchor) && t0 != G_MININT64)
    rt = anchor + (at > from ? (GstClockTime) (at - from) * GST_MSECOND : 0);
  const std::string & channel = t.channel_id.empty ()? t.user_id : t.channel_id;
  std::string mode, speaker = t.user_name;
  auto pi = priv->participants.find (channel);
  if (pi != priv->participants.end ()) {
    mode = pi->second.participant_mode;
    if (speaker.empty ())
      speaker = pi->second.display_name;
  }
  post_element_message (self, gst_structure_new ("zoomrtms/transcript",
          "channel", G_TYPE_STRING, channel.c_str (),
          "participant-mode", G_TYPE_STRING, mode.c_str (),
          "speaker", G_TYPE_STRING, speaker.c_str (),
          "text", G_TYPE_STRING, t.text.c_str (),
          "sentence-id", G_TYPE_INT64, t.sentence_id,
          "attribute", G_TYPE_INT, t.attribute,
          "language", G_TYPE_INT, t.language,
          "timestamp", G_TYPE_INT64, t.timestamp,
          "start-time", G_TYPE_INT64, t.start_time,
          "end-time", G_TYPE_INT64, t.end_time,
          "running-time", G_TYPE_UINT64, (guint64) rt, nullptr));
}

static void
on_event (GstZoomRtmsSrc * self, const rtms::EventUpdate & e)
{
  auto priv = self->priv;
  const char *name = rtms::event_type_name (e.event_type, priv->zcc);
  if (e.event_type == rtms::EVENT_FIRST_PACKET_TIMESTAMP) {
    Item it;
    it.kind = Item::FIRST_TS;
    it.ts = e.timestamp;
    push_item (self, std::move (it));
    return;
  }
  if (e.participant_info) {
    const auto & pi = *e.participant_info;
    if (!pi.channel_id.empty ()) {
      auto & known = priv->participants[pi.channel_id];
      if (!pi.participant_mode.empty ())
        known.participant_mode = pi.participant_mode;
      if (!pi.display_name.empty ())
        known.display_name = pi.display_name;
      /* the packet log's lookup per key (on_audio) */
      std::lock_guard < std::mutex > lk (priv->qlock);
      for (size_t ki = 0; ki < priv->keys.size (); ki++)
        if (priv->keys[ki] == pi.channel_id)
          priv->keys_info[ki] = &known;
    }
    if (!pi.channel_id.empty () && !pi.participant_mode.empty ()) {
      Item it;
      it.kind = Item::MODE;
      it.key = pi.channel_id;
      it.mode = pi.participant_mode;
      push_item (self, std::move (it));
    }
    post_element_message (self, gst_structure_new ("zoomrtms/participant",
            "event-type", G_TYPE_INT, e.event_type,
            "event-name", G_TYPE_STRING, name,
            "timestamp", G_TYPE_INT64, e.timestamp,
            "channel", G_TYPE_STRING, pi.channel_id.c_str (),
            "participant-mode", G_TYPE_STRING, pi.participant_mode.c_str (),
            "user-id", G_TYPE_STRING, pi.user_id.c_str (),
            "display-name", G_TYPE_STRING, pi.display_name.c_str (),
            "queue-name", G_TYPE_STRING, pi.queue_name.c_str (), nullptr));
    return;
  }
  std::vector < rtms::Participant > people = e.participants;
  if (people.empty () && (!e.user_id.empty () || !e.user_name.empty ()))
    people.push_back ({e.user_id, e.user_name});
  if (people.empty ())
    people.push_back ({});
  if (e.event_type == rtms::EVENT_PARTICIPANT_JOIN && priv->multi) {
    /* a multi-stream participant: its audio is waited for up to the hold
     * (a late joiner's first packets keep their place) */
    for (const auto &p:people) {
      if (p.user_id.empty ())
        continue;
      Item it;
      it.kind = Item::EXPECT;
      it.key = p.user_id;
      push_item (self, std::move (it));
    }
  }
  for (const auto &p:people) {
    post_element_message (self, gst_structure_new ("zoomrtms/participant",
            "event-type", G_TYPE_INT, e.event_type,
            "event-name", G_TYPE_STRING, name,
            "timestamp", G_TYPE_INT64, e.timestamp,
            "channel", G_TYPE_STRING, p.user_id.c_str (),
            "participant-mode", G_TYPE_STRING, "",
            "user-id", G_TYPE_STRING, p.user_id.c_str (),
            "display-name", G_TYPE_STRING, p.user_name.c_str (),
            "queue-name", G_TYPE_STRING, "", nullptr));
  }
}

static void
on_stream_state (GstZoomRtmsSrc * self, const rtms::StreamStateUpdate & s)
{
  GST_INFO_OBJECT (self, "stream state %s, reason %s",
      rtms::stream_state_name (s.state), rtms::stop_reason_name (s.reason));
  post_element_message (self, gst_structure_new ("zoomrtms/stream-state",
          "state", G_TYPE_INT, s.state,
          "state-name", G_TYPE_STRING, rtms::stream_state_name (s.state),
          "reason", G_TYPE_INT, s.reason,
          "reason-name", G_TYPE_STRING, rtms::stop_reason_name (s.reason),
          nullptr));
}

static void
on_session_state (GstZoomRtmsSrc * self, const rtms::SessionStateUpdate & s)
{
  GST_INFO_OBJECT (self, "session %s state %s", s.rtms_session_id.c_str (),
      rtms::session_state_name (s.state));
  post_element_message (self, gst_structure_new ("zoomrtms/session-state",
          "state", G_TYPE_INT, s.state,
          "state-name", G_TYPE_STRING, rtms::session_state_name (s.state),
          "stop-reason", G_TYPE_INT, s.stop_reason,
          "reason-name", G_TYPE_STRING,
          rtms::stop_reason_name (s.stop_reason),
          "rtms-session-id", G_TYPE_STRING, s.rtms_session_id.c_str (),
          nullptr));
}

static void
on_malformed (GstZoomRtmsSrc * self, const std::string & what)
{
  auto priv = self->priv;
  guint64 n = priv->frames_malformed.fetch_add (1) + 1;
  GST_DEBUG_OBJECT (self, "malformed frame skipped: %s", what.c_str ());
  /* one warning for the first, then one per 100 */
  if (n == 1 || n % 100 == 0)
    GST_ELEMENT_WARNING (self, STREAM, DECODE,
        ("Skipped a malformed RTMS frame"),
        ("%s (%" G_GUINT64_FORMAT " so far)", what.c_str (), n));
}

static void
on_closed (GstZoomRtmsSrc * self, const rtms::ClientError * err)
{
  auto priv = self->priv;
  std::unique_lock < std::mutex > lk (priv->qlock);
  if (err && err->superseded) {
    GST_INFO_OBJECT (self, "superseded: %s", err->message.c_str ());
    priv->superseded = true;
  } else if (err) {
    GST_INFO_OBJECT (self, "client failed: %s", err->message.c_str ());
    priv->have_error = true;
    priv->error = *err;
  } else {
    GST_INFO_OBJECT (self, "stream ended");
  }
  priv->closed = true;
  priv->qcond.notify_all ();        /* stop() waits for it */
  lk.unlock ();
  request_pump (self);
}

/* An interruption of the connection (docs/protocol.md §4.9): posted at its
 * start and its end (I/O thread). */
static void
on_outage (GstZoomRtmsSrc * self, const rtms::Outage & o)
{
  const char *cause = rtms::outage_cause_name (o.cause);
  const char *sid = self->priv->stream_id.c_str ();
  if (!o.ended) {
    GST_ELEMENT_WARNING (self, RESOURCE, READ,
        ("Lost the %s connection of Zoom RTMS stream %s; reconnecting within "
            "the grace window", cause, sid),
        ("%s; outage started at %" G_GINT64_FORMAT " (epoch ms)",
            o.what.c_str (), o.start_ms));
    post_element_message (self, gst_structure_new ("zoomrtms/interruption",
            "cause", G_TYPE_STRING, cause,
            "start", G_TYPE_INT64, o.start_ms, nullptr));
    return;
  }
  GST_INFO_OBJECT (self, "%s outage of %" G_GINT64_FORMAT " ms ended, %s",
      cause, o.end_ms - o.start_ms, o.recovered ? "recovered" : "not recovered");
  post_element_message (self, gst_structure_new ("zoomrtms/interruption",
          "cause", G_TYPE_STRING, cause,
          "start", G_TYPE_INT64, o.start_ms,
          "end", G_TYPE_INT64, o.end_ms,
          "recovered", G_TYPE_BOOLEAN, (gboolean) o.recovered, nullptr));
}

/* The I/O context's tick (IoContext::add_tick, every 20 ms): writes the
 * packet log's buffer once packet-log-flush-ms have passed since the last
 * write (so at least every packet-log-flush-ms, to within the tick). */
static void
packet_log_tick (gpointer data)
{
  auto self = GST_ZOOM_RTMS_SRC (data);
  auto priv = self->priv;
  std::string error;
  bool failed = false;
  gint64 now = g_get_monotonic_time ();
  if (now < priv->plog_next_flush_us)
    return;
  priv->plog_next_flush_us = now + priv->plog_flush_us -
      (gint64) rtms::IoContext::kTickMs * 1000 / 2;
  {
    std::lock_guard < std::mutex > lk (priv->plog_lock);
    if (!priv->plog.flush (&error) && !priv->plog_warned) {
      priv->plog_warned = true;
      failed = true;
    }
  }
  if (failed)
    GST_ELEMENT_WARNING (self, RESOURCE, WRITE,
        ("Cannot write the packet log; it is closed, the recording goes on"),
        ("%s", error.c_str ()));
}

/* --------------------------------------------------------- streaming */

/* Posts the error for a failed client (details: rtms-status-code,
 * rtms-stop-reason, rtms-stream-id). */
static void
post_client_error (GstZoomRtmsSrc * self, const rtms::ClientError & e,
    bool ever_ready)
{
  const char *sid = self->priv->stream_id.c_str ();
  int sc = e.status_code, sr = e.stop_reason;
  /* the client classified status_code with both tables and the reason text
   * (docs/protocol.md §3.10) */
  bool auth = (e.code == rtms::ERROR_HANDSHAKE &&
      e.status_class == rtms::StatusClass::SIGNATURE) ||
      sr == rtms::STOP_AUTHENTICATION_FAILURE;
  bool format = e.code == rtms::ERROR_PARAMS ||
      (e.code == rtms::ERROR_HANDSHAKE &&
      e.status_class == rtms::StatusClass::MEDIA_PARAMS);
  if (auth) {
    GST_ELEMENT_ERROR_WITH_DETAILS (self, RESOURCE, NOT_AUTHORIZED,
        ("Zoom RTMS refused the credentials of stream %s", sid),
        ("%s", e.message.c_str ()), ("rtms-status-code", G_TYPE_INT, sc,
            "rtms-stop-reason", G_TYPE_INT, sr, "rtms-stream-id",
            G_TYPE_STRING, sid, nullptr));
  } else if (format) {
    GST_ELEMENT_ERROR_WITH_DETAILS (self, STREAM, FORMAT,
        ("Zoom RTMS media parameters cannot be used"),
        ("%s", e.message.c_str ()), ("rtms-status-code", G_TYPE_INT, sc,
            "rtms-stop-reason", G_TYPE_INT, sr, "rtms-stream-id",
            G_TYPE_STRING, sid, nullptr));
  } else if (ever_ready) {
    GST_ELEMENT_ERROR_WITH_DETAILS (self, RESOURCE, READ,
        ("Lost the Zoom RTMS stream %s", sid),
        ("%s", e.message.c_str ()), ("rtms-status-code", G_TYPE_INT, sc,
            "rtms-stop-reason", G_TYPE_INT, sr, "rtms-stream-id",
            G_TYPE_STRING, sid, nullptr));
  } else {
    GST_ELEMENT_ERROR_WITH_DETAILS (self, RESOURCE, OPEN_READ,
        ("Could not open the Zoom RTMS stream %s", sid),
        ("%s", e.message.c_str ()), ("rtms-status-code", G_TYPE_INT, sc,
            "rtms-stop-reason", G_TYPE_INT, sr, "rtms-stream-id",
            G_TYPE_STRING, sid, nullptr));
  }
}

/* layout=packets: the caps of the packet stream (zoomrtms-packet-meta.h). */
static GstCaps *
packets_caps (int rate, int send_rate)
{
  return gst_caps_new_simple (ZOOMRTMS_PACKETS_CAPS_NAME, "format",
      G_TYPE_STRING, "S16LE", "rate", G_TYPE_INT, rate, "packet-ms",
      G_TYPE_INT, send_rate, nullptr);
}

/* Deactivates and drops the output buffer pool (buffers still downstream
 * are freed when released). */
static void
release_pool (GstZoomRtmsSrcPrivate * priv)
{
  if (!priv->pool)
    return;
  gst_buffer_pool_set_active (priv->pool, FALSE);
  gst_object_unref (priv->pool);
  priv->pool = nullptr;
  priv->pool_size = 0;
}

/* The first event of the stream (before caps, a buffer or EOS), with a new
 * group id. Pad stream lock held. */
static void
ensure_stream_start (GstZoomRtmsSrc * self)
{
  auto priv = self->priv;
  if (priv->stream_start_pushed)
    return;
  priv->stream_start_pushed = true;
  gchar *stream_id = gst_pad_create_stream_id (self->srcpad,
      GST_ELEMENT (self), nullptr);
  GstEvent *ev = gst_event_new_stream_start (stream_id);
  gst_event_set_group_id (ev, gst_util_group_id_next ());
  g_free (stream_id);
  gst_pad_push_event (self->srcpad, ev);
}

/* Pushes @caps (after stream-start); FALSE if downstream refused them. Pad
 * stream lock held. */
static gboolean
push_caps (GstZoomRtmsSrc * self, GstCaps * caps)
{
  ensure_stream_start (self);
  return gst_pad_push_event (self->srcpad, gst_event_new_caps (caps));
}

/* Sets the caps from the negotiated msg 4 params. pump(), pad stream lock
 * held. */
static gboolean
negotiate_params (GstZoomRtmsSrc * self, const rtms::AudioParams & p)
{
  auto priv = self->priv;
  Settings s;
  {
    std::lock_guard < std::mutex > lk (priv->lock);
    s = priv->settings;
  }
  const char *sid = priv->stream_id.c_str ();
  if (priv->negotiated) {
    if (!(p == priv->params))
      GST_ELEMENT_WARNING (self, STREAM, FORMAT,
          ("Zoom changed the media parameters after a reconnection"),
          ("keeping the first ones (codec %d, rate %d, send_rate %d)",
              priv->params.codec, priv->params.sample_rate,
              priv->params.send_rate));
    return TRUE;
  }
  int rate = rtms::sample_rate_hz (p.sample_rate);
  bool opus = p.codec == rtms::CODEC_OPUS;
  if (rate == 0 || p.send_rate <= 0 || p.channel != rtms::CHANNEL_MONO ||
      (p.codec != rtms::CODEC_L16 && !opus)) {
    GST_ELEMENT_ERROR_WITH_DETAILS (self, STREAM, FORMAT,
        ("Zoom RTMS media parameters cannot be output"),
        ("codec %s, sample_rate %d, channel %d, send_rate %d",
            rtms::codec_name (p.codec), p.sample_rate, p.channel, p.send_rate),
        ("rtms-status-code", G_TYPE_INT, -1, "rtms-stop-reason", G_TYPE_INT,
            -1, "rtms-stream-id", G_TYPE_STRING, sid, nullptr));
    return FALSE;
  }
  GstCaps *caps;
  int channels = 1;
  if (opus) {
    guint8 mapping[1] = { 0 };
    caps = gst_codec_utils_opus_create_caps (48000, 1, 0, 1, 0, mapping);
    GstBuffer *head =
        gst_codec_utils_opus_create_header (48000, 1, 0, 1, 0, mapping,
        OPUS_PRE_SKIP, 0);
    GstTagList *tags = gst_tag_list_new_empty ();
    GstBuffer *comments = gst_tag_list_to_vorbiscomment_buffer (tags,
        (const guint8 *) "OpusTags", 8, "zoomrtms " VERSION);
    gst_tag_list_unref (tags);
    GValue array = G_VALUE_INIT, v = G_VALUE_INIT;
    g_value_init (&array, GST_TYPE_ARRAY);
    for (GstBuffer * b:{head, comments}) {
      GST_BUFFER_FLAG_SET (b, GST_BUFFER_FLAG_HEADER);
      g_value_init (&v, GST_TYPE_BUFFER);
      gst_value_set_buffer (&v, b);
      gst_value_array_append_value (&array, &v);
      g_value_unset (&v);
      gst_buffer_unref (b);
    }
    gst_caps_set_value (caps, "streamheader", &array);
    g_value_unset (&array);
  } else if (s.layout == GST_ZOOM_RTMS_LAYOUT_PACKETS) {
    caps = packets_caps (rate, p.send_rate);
  } else {
    /* layout=auto: stereo only where caller/callee exist (ZCC) */
    channels = s.layout == GST_ZOOM_RTMS_LAYOUT_STEREO ||
        (s.layout == GST_ZOOM_RTMS_LAYOUT_AUTO && !s.engagement_id.empty ()) ?
        2 : 1;
    GstAudioInfo info;
    gst_audio_info_init (&info);
    gst_audio_info_set_format (&info, GST_AUDIO_FORMAT_S16LE, rate, channels,
        nullptr);
    caps = gst_audio_info_to_caps (&info);
  }
  GST_INFO_OBJECT (self, "caps %" GST_PTR_FORMAT, caps);
  gboolean ok = push_caps (self, caps);
  gst_caps_unref (caps);
  if (!ok) {
    GST_ELEMENT_ERROR_WITH_DETAILS (self, CORE, NEGOTIATION, (nullptr),
        ("downstream refused the caps"), ("rtms-status-code", G_TYPE_INT, -1,
            "rtms-stop-reason", G_TYPE_INT, -1, "rtms-stream-id",
            G_TYPE_STRING, sid, nullptr));
    return FALSE;
  }
  guint block_ms = opus || s.block_ms == 0 ? (guint) p.send_rate :
      s.block_ms;
  bool latency_changed = p.send_rate != (int) s.send_rate ||
      block_ms != (s.block_ms ? s.block_ms : s.send_rate);
  priv->out_block = zoomrtms::AlignedBlock ();
  std::lock_guard < std::mutex > lk (priv->slock);
  priv->negotiated = true;
  priv->params = p;
  priv->rate = rate;
  priv->opus = opus;
  priv->packets = !opus && s.layout == GST_ZOOM_RTMS_LAYOUT_PACKETS;
  priv->channels = channels;
  priv->stats_interval = s.stats_interval;
  priv->next_stats_ms = s.stats_interval;
  priv->role_timeout = 0;
  priv->hold_timed_out = false;
  priv->role_waits.clear ();
  priv->role_overflows_seen = 0;
  priv->align_hold = s.align_hold;
  if (!opus && !priv->packets) {
    zoomrtms::AlignerConfig ac;
    ac.rate = rate;
    ac.packet_ms = p.send_rate;
    ac.block_ms = (int) block_ms;
    ac.layout = channels == 2 ? zoomrtms::Layout::STEREO :
        zoomrtms::Layout::MIX;
    ac.max_gap_fill_ms = s.max_gap_fill;
    ac.hold_ms = s.align_hold;
    if (s.timeline_origin >= 0) {
      /* a continuation: t0 fixed, output from timeline-offset */
      ac.origin_ms = s.timeline_origin;
      ac.start_position = (int64_t) MIN (s.timeline_offset,
          (guint64) zoomrtms::kMaxTimestampMs);
      priv->pts_offset = (guint64) ac.start_position;
    } else {
      priv->pts_offset = 0;
    }
    priv->last_end = priv->pts_offset;
    /* ZCC stereo: hold the start until the roles are known (the backlog
     * burst may come before the participant events) */
    ac.hold_for_modes = priv->zcc && channels == 2 && s.role_timeout > 0;
    if (ac.hold_for_modes)
      priv->role_timeout = s.role_timeout;
    priv->aligner = std::make_unique < zoomrtms::Aligner > (ac);
    /* a pool of at most POOL_BUFFERS whole-block buffers (a continuation's
     * shorter first block, drain's last one, and any buffer while all of
     * the pool's are downstream are allocated as before): filesink holds
     * up to 64 KiB of buffers before it writes, and an unbounded pool
     * would keep that many per engagement for good */
    release_pool (priv);
    priv->pool_size = (gsize) priv->aligner->block_frames () * channels * 2;
    priv->pool = gst_buffer_pool_new ();
    GstStructure *config = gst_buffer_pool_get_config (priv->pool);
    gst_buffer_pool_config_set_params (config, nullptr,
        (guint) priv->pool_size, 0, POOL_BUFFERS);
    if (!gst_buffer_pool_set_config (priv->pool, config) ||
        !gst_buffer_pool_set_active (priv->pool, TRUE)) {
      GST_WARNING_OBJECT (self, "no buffer pool; allocating per block");
      release_pool (priv);
    }
  }
  priv->block_ms = block_ms;
  priv->wake_block_ms = block_ms;
  priv->wake_packet_ms = p.send_rate;
  priv->wake_packets = opus || p.send_rate <= 0 ? 1 :
      (int) MAX (1u, block_ms / (guint) p.send_rate);
  if (latency_changed)
    gst_element_post_message (GST_ELEMENT (self),
        gst_message_new_latency (GST_OBJECT (self)));
  return TRUE;
}

/* layout=packets: one audio item as one buffer (its PCM as received, the
 * channel key and RTMS timestamp in a GstZoomRtmsPacketMeta), queued in
 * opus_out; no alignment, no deduplication (zoomrtmsdemux does both). A
 * FIRST_TS item (msg 6 event 1) is an empty buffer with key "" and the
 * event's timestamp (zoomrtms-packet-meta.h). PTS: (timestamp − the first
 * item's) ms, anchored in produce(). pump(), slock held. */
static void
queue_packet_locked (GstZoomRtmsSrc * self, const Item & it)
{
  auto priv = self->priv;
  if (priv->opus_t0 == G_MININT64)
    priv->opus_t0 = it.ts;
  GstBuffer *buf = it.data.empty ()? gst_buffer_new () :
      gst_buffer_new_memdup (it.data.data (), it.data.size ());
  GST_BUFFER_PTS (buf) = it.ts > priv->opus_t0 ?
      (GstClockTime) (it.ts - priv->opus_t0) * GST_MSECOND : 0;
  if (it.data.size () >= 2 && priv->rate > 0)
    GST_BUFFER_DURATION (buf) = gst_util_uint64_scale_int (it.data.size ()
        / 2, GST_SECOND, priv->rate);
  zoomrtms_packet_meta_add (buf, it.keyp ? *it.keyp : std::string (),
      it.ts);
  priv->opus_out.push_back (buf);
}

/* Feeds one queue item to the aligner or the Opus path. pump(),
 * slock held. */
static void
process_item_locked (GstZoomRtmsSrc * self, Item & it)
{
  auto priv = self->priv;
  switch (it.kind) {
    case Item::FIRST_TS:
      if (priv->aligner)
        priv->aligner->set_first_packet_timestamp (it.ts);
      else if (priv->packets)
        queue_packet_locked (self, it);
      else if (priv->opus && priv->opus_t0 == G_MININT64)
        priv->opus_t0 = it.ts;
      break;
    case Item::MODE:
      if (priv->aligner)
        priv->aligner->set_participant_mode (it.key, it.mode);
      break;
    case Item::EXPECT:
      if (priv->aligner)
        priv->aligner->expect_channel (it.key);
      break;
    case Item::AUDIO:{
      if (priv->aligner) {
        zoomrtms::PushDetail detail;
        auto r = priv->aligner->push (*it.keyp, it.ts, it.data.data (),
            it.data.size (), &detail);
        if ((r == zoomrtms::PushResult::LATE ||
                r == zoomrtms::PushResult::OUT_OF_RANGE ||
                r == zoomrtms::PushResult::ACCEPTED) &&
            detail.dropped_samples > 0) {
          /* posted as zoomrtms/late-audio once slock is released */
          GstZoomRtmsSrcPrivate::LateReport rep;
          rep.channel = *it.keyp;
          for (const auto &c:priv->aligner->stats ())
            if (c.key == rep.channel)
              rep.mode = c.participant_mode;
          rep.reason = r == zoomrtms::PushResult::OUT_OF_RANGE ?
              "out-of-range" : "late";
          rep.timestamp = it.ts;
          rep.samples = (guint64) detail.dropped_samples;
          priv->late_reports.push_back (std::move (rep));
        }
        if (r == zoomrtms::PushResult::INVALID) {
          priv->frames_malformed++;
          GST_WARNING_OBJECT (self, "packet of %" G_GSIZE_FORMAT " bytes "
              "on channel %s skipped", it.data.size (), it.keyp->c_str ());
        } else if (r == zoomrtms::PushResult::RESYNC) {
          GST_ELEMENT_WARNING (self, STREAM, FAILED,
              ("Every channel of the stream stopped for longer than "
                  "max-gap-fill; the timeline jumps"),
              ("packet at %" G_GINT64_FORMAT " ms on channel %s", it.ts,
                  it.keyp->c_str ()));
        } else if (r != zoomrtms::PushResult::ACCEPTED) {
          GST_LOG_OBJECT (self, "packet %" G_GINT64_FORMAT " of %s dropped: "
              "%s", it.ts, it.keyp->c_str (), zoomrtms::push_result_name (r));
        }
      } else if (priv->packets) {
        queue_packet_locked (self, it);
      } else if (priv->opus) {
        if (priv->opus_key.empty ())
          priv->opus_key = *it.keyp;
        if (*it.keyp != priv->opus_key) {
          priv->frames_dropped++;
          break;
        }
        if (it.ts <= priv->opus_last_ts) {
          priv->opus_duplicates++;
          break;
        }
        if (priv->opus_t0 == G_MININT64 || (priv->opus_frames == 0
                && it.ts < priv->opus_t0))
          priv->opus_t0 = it.ts;
        if (it.ts < priv->opus_t0 || it.data.empty ()) {
          priv->opus_late++;
          break;
        }
        priv->opus_last_ts = it.ts;
        priv->opus_frames++;
        GstBuffer *buf = gst_buffer_new_memdup (it.data.data (),
            it.data.size ());
        GstClockTime rel = (GstClockTime) (it.ts - priv->opus_t0) * GST_MSECOND;
        GST_BUFFER_PTS (buf) = rel;     /* anchored in produce() */
        GST_BUFFER_DURATION (buf) =
            (GstClockTime) priv->params.send_rate * GST_MSECOND;
        if (it.ts > 0)
          gst_buffer_add_reference_timestamp_meta (buf, unix_ts_caps,
              (GstClockTime) it.ts * GST_MSECOND, GST_BUFFER_DURATION (buf));
        if (priv->opus_discont) {
          GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_DISCONT);
          priv->opus_discont = false;
        }
        priv->opus_out.push_back (buf);
      }
      break;
    }
    case Item::READY:
      break;
  }
}

/* Takes one ready output buffer. pump(), slock held. */
static GstBuffer *
take_output_locked (GstZoomRtmsSrc * self, GstClockTime anchor)
{
  auto priv = self->priv;
  if (!GST_CLOCK_TIME_IS_VALID (anchor))
    anchor = 0;
  if (priv->opus || priv->packets) {
    if (priv->opus_out.empty ())
      return nullptr;
    GstBuffer *buf = priv->opus_out.front ();
    priv->opus_out.pop_front ();
    GST_BUFFER_PTS (buf) += anchor;
    priv->samples_out += priv->packets ?
        gst_buffer_get_size (buf) / 2 : (guint64) 48 * priv->params.send_rate;
    return buf;
  }
  if (!priv->aligner)
    return nullptr;
  zoomrtms::AlignedBlock & b = priv->out_block;   /* storage reused */
  if (!priv->aligner->pop (&b))
    return nullptr;
  gsize n = b.samples.size ();
  GstBuffer *buf = nullptr;
  GstBufferPoolAcquireParams nowait = { GST_FORMAT_DEFAULT, 0, 0,
    GST_BUFFER_POOL_ACQUIRE_FLAG_DONTWAIT, {nullptr}
  };
  if (priv->pool && n * 2 == priv->pool_size &&
      gst_buffer_pool_acquire_buffer (priv->pool, &buf, &nowait) !=
      GST_FLOW_OK)
    buf = nullptr;
  if (!buf)
    buf = gst_buffer_new_allocate (nullptr, n * 2, nullptr);
  GstMapInfo map;
  gst_buffer_map (buf, &map, GST_MAP_WRITE);
#if G_BYTE_ORDER == G_LITTLE_ENDIAN
  memcpy (map.data, b.samples.data (), n * 2);  /* S16LE already */
#else
  auto out = reinterpret_cast < guint16 * >(map.data);
  for (gsize i = 0; i < n; i++)
    out[i] = GUINT16_TO_LE ((guint16) b.samples[i]);
#endif
  gst_buffer_unmap (buf, &map);
  guint64 pos = (guint64) b.position, end = pos + b.frames ();
  /* PTS from running time 0 of this pipeline: a continuation's first
   * position (timeline-offset) is at the anchor */
  guint64 off = MIN (priv->pts_offset, pos);
  GstClockTime t0 = gst_util_uint64_scale_int (pos - off, GST_SECOND,
      priv->rate);
  GstClockTime t1 = gst_util_uint64_scale_int (end - off, GST_SECOND,
      priv->rate);
  GstClockTime abs0 = gst_util_uint64_scale_int (pos, GST_SECOND, priv->rate);
  GST_BUFFER_PTS (buf) = anchor + t0;
  GST_BUFFER_DURATION (buf) = t1 - t0;
  GST_BUFFER_OFFSET (buf) = pos;
  GST_BUFFER_OFFSET_END (buf) = end;
  gint64 t0_ms = priv->aligner->t0_ms ();
  if (t0_ms > 0 && b.position >= 0)
    gst_buffer_add_reference_timestamp_meta (buf, unix_ts_caps,
        (GstClockTime) t0_ms * GST_MSECOND + abs0, t1 - t0);
  if (b.discont)
    GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_DISCONT);
  if (b.gap)
    GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_GAP);
  if (priv->overflow_discont) {
    GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_DISCONT);
    priv->overflow_discont = false;
  }
  priv->samples_out += b.frames ();
  priv->last_end = end;
  return buf;
}

/* Pad probe on the src pad: the latency of a buffer handed downstream,
 * from its timestamp/x-unix reference timestamp (in pump()). */
static GstPadProbeReturn
latency_probe (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  auto self = GST_ZOOM_RTMS_SRC (user_data);
  auto priv = self->priv;
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);
  if (!buf)
    return GST_PAD_PROBE_OK;
  gpointer state = nullptr;
  GstMeta *m;
  while ((m = gst_buffer_iterate_meta_filtered (buf, &state,
              GST_REFERENCE_TIMESTAMP_META_API_TYPE))) {
    auto rm = reinterpret_cast < GstReferenceTimestampMeta * >(m);
    if (rm->reference != unix_ts_caps)
      continue;
    gint64 now_us = g_get_real_time ();
    gint64 lat_us = now_us - (gint64) (rm->timestamp / 1000);
    double lat_ms = lat_us > 0 ? lat_us / 1000.0 : 0.0;
    std::lock_guard < std::mutex > lk (priv->slock);
    guint64 startup = 1;
    if (priv->aligner)
      startup = MAX ((guint64) (priv->aligner->startup_wait_samples () /
              MAX (1, priv->aligner->block_frames ()) + 1),
          priv->aligner->startup_blocks ());
    if (priv->latency_skipped < startup) {
      priv->latency_skipped++;
      break;
    }
    if (priv->latency_hist.empty ())
      priv->latency_hist.assign (LATENCY_BUCKETS + 1, 0);
    size_t bucket = (size_t) (lat_us > 0 ? lat_us / 1000 : 0);
    priv->latency_hist[MIN (bucket, (size_t) LATENCY_BUCKETS)]++;
    priv->latency_samples++;
    priv->latency_max_ms = MAX (priv->latency_max_ms, lat_ms);
    break;
  }
  return GST_PAD_PROBE_OK;
}

/* Posts the zoomrtms/late-audio messages of the packets the aligner
 * dropped (late or out of range), and a warning for the first of each kind
 * and then one per LATE_WARNING_EVERY. pump(), no lock held. */
static void
post_late_reports (GstZoomRtmsSrc * self)
{
  auto priv = self->priv;
  std::vector < GstZoomRtmsSrcPrivate::LateReport > reports;
  int rate;
  guint hold;
  {
    std::lock_guard < std::mutex > lk (priv->slock);
    if (priv->late_reports.empty ())
      return;
    reports.swap (priv->late_reports);
    rate = priv->rate > 0 ? priv->rate : 16000;
    hold = priv->align_hold;
  }
  for (const auto &r:reports) {
    double ms = (double) r.samples * 1000.0 / rate;
    bool oor = r.reason == "out-of-range";
    guint64 n = oor ? ++priv->oor_reported : ++priv->late_reported;
    if (n == 1 || n % LATE_WARNING_EVERY == 0) {
      if (oor)
        GST_ELEMENT_WARNING (self, STREAM, DEMUX,
            ("Refused audio with a timestamp far from the stream's timeline"),
            ("channel %s, timestamp %" G_GINT64_FORMAT " ms, %.0f ms of audio "
                "(%" G_GUINT64_FORMAT " refused so far)", r.channel.c_str (),
                r.timestamp, ms, n));
      else
        GST_ELEMENT_WARNING (self, STREAM, DEMUX,
            ("Dropped audio that arrived more than align-hold late"),
            ("channel %s, timestamp %" G_GINT64_FORMAT " ms, %.0f ms of audio "
                "dropped, align-hold %u ms (%" G_GUINT64_FORMAT " packets so "
                "far)", r.channel.c_str (), r.timestamp, ms, hold, n));
    }
    GST_DEBUG_OBJECT (self, "%s packet on %s at %" G_GINT64_FORMAT
        ": %.1f ms dropped", r.reason.c_str (), r.channel.c_str (),
        r.timestamp, ms);
    post_element_message (self, gst_structure_new ("zoomrtms/late-audio",
            "channel", G_TYPE_STRING, r.channel.c_str (),
            "participant-mode", G_TYPE_STRING, r.mode.c_str (),
            "reason", G_TYPE_STRING, r.reason.c_str (),
            "timestamp", G_TYPE_INT64, r.timestamp,
            "dropped-samples", G_TYPE_UINT64, r.samples,
            "dropped-ms", G_TYPE_DOUBLE, ms,
            "align-hold", G_TYPE_UINT, hold, nullptr));
  }
}

static void
maybe_post_stats (GstZoomRtmsSrc * self, GstBuffer * buf)
{
  auto priv = self->priv;
  GstStructure *s = nullptr;
  {
    std::lock_guard < std::mutex > lk (priv->slock);
    if (priv->stats_interval == 0 || priv->rate == 0)
      return;
    guint64 out_ms = priv->opus ? priv->samples_out / 48 :
        priv->samples_out * 1000 / (guint64) priv->rate;
    if (out_ms < priv->next_stats_ms)
      return;
    while (priv->next_stats_ms <= out_ms)
      priv->next_stats_ms += priv->stats_interval;
    s = build_stats_locked (self);
  }
  (void) buf;
  post_element_message (self, s);
}

/* Posts zoomrtms/timeline once, when the origin is known (the first
 * output buffer: t0 no longer moves). pump(), no lock held. */
static void
maybe_post_timeline (GstZoomRtmsSrc * self)
{
  auto priv = self->priv;
  gint64 origin;
  int rate, channels;
  {
    std::lock_guard < std::mutex > lk (priv->slock);
    if (priv->timeline_posted || !priv->aligner)
      return;
    origin = priv->aligner->t0_ms ();
    if (origin == G_MININT64)
      return;
    priv->timeline_posted = true;
    rate = priv->rate;
    channels = priv->channels;
  }
  GST_INFO_OBJECT (self, "timeline origin %" G_GINT64_FORMAT " ms", origin);
  post_element_message (self, gst_structure_new ("zoomrtms/timeline",
          "timeline-origin", G_TYPE_INT64, origin,
          "rate", G_TYPE_INT, rate, "channels", G_TYPE_INT, channels,
          nullptr));
}

/* The end of a detach or of a superseded stream: its element message just
 * before EOS. pump(), no lock held. */
static void
post_end_message (GstZoomRtmsSrc * self, bool detached)
{
  auto priv = self->priv;
  {
    std::lock_guard < std::mutex > lk (priv->qlock);
    if (priv->end_message_posted)
      return;
    priv->end_message_posted = true;
  }
  gint64 origin;
  guint64 end;
  {
    std::lock_guard < std::mutex > lk (priv->slock);
    origin = priv->aligner ? priv->aligner->t0_ms () : G_MININT64;
    end = priv->last_end;
  }
  if (origin == G_MININT64) {
    std::lock_guard < std::mutex > lk (priv->lock);
    origin = priv->settings.timeline_origin;
  }
  const char *sid = priv->stream_id.c_str ();
  if (detached) {
    GST_INFO_OBJECT (self, "detached at timeline position %" G_GUINT64_FORMAT,
        end);
    post_element_message (self, gst_structure_new ("zoomrtms/detached",
            "timeline-origin", G_TYPE_INT64, origin,
            "samples", G_TYPE_UINT64, end, nullptr));
  } else {
    GST_ELEMENT_WARNING (self, RESOURCE, BUSY,
        ("Zoom RTMS stream %s was taken over by another consumer's newer "
            "signaling handshake; not reconnecting", sid),
        ("superseded at timeline position %" G_GUINT64_FORMAT, end));
    post_element_message (self, gst_structure_new ("zoomrtms/superseded",
            "rtms-stream-id", G_TYPE_STRING, sid, nullptr));
  }
}

/* replay-log: feeds the next records of the log into the aligner (before
 * the network's packets, design.md "Lifetimes") and takes an output buffer
 * if one is ready. Returns FALSE when the replay is over (or failed). The
 * log is streamed: REPLAY_BATCH records at most per call, and only until a
 * block is ready, so memory stays that of the aligner. pump(), no
 * lock held. */
static gboolean
replay_step (GstZoomRtmsSrc * self, GstBuffer ** outbuf, GstFlowReturn * ret)
{
  auto priv = self->priv;
  *outbuf = nullptr;
  *ret = GST_FLOW_OK;
  if (!priv->replay)
    return FALSE;
  if (!priv->negotiated) {
    /* the log's format is the one requested (checked at start) */
    if (!negotiate_params (self, priv->requested)) {
      *ret = GST_FLOW_NOT_NEGOTIATED;
      priv->replay.reset ();
      return FALSE;
    }
  }
  GstClockTime anchor;
  {
    std::lock_guard < std::mutex > lk (priv->qlock);
    if (!GST_CLOCK_TIME_IS_VALID (priv->anchor))
      priv->anchor = current_running_time (self);
    if (!priv->have_first_audio) {
      priv->have_first_audio = true;
      priv->first_audio = std::chrono::steady_clock::now ();
    }
    anchor = priv->anchor;
  }
  bool done = false;
  std::string warning;
  guint64 origin_pos = 0, start_pos = 0;
  bool fixed;
  {
    std::lock_guard < std::mutex > lk (priv->lock);
    fixed = priv->settings.timeline_origin >= 0;
    origin_pos = fixed ? (guint64) priv->settings.timeline_origin : 0;
    start_pos = priv->settings.timeline_offset;
  }
  {
    std::lock_guard < std::mutex > slk (priv->slock);
    if (!priv->aligner) {
      priv->replay.reset ();
      return FALSE;
    }
    for (int n = 0; n < REPLAY_BATCH && !priv->aligner->has_ready (); n++) {
      std::string err;
      auto st = priv->replay->next (&priv->replay_rec, &err);
      if (st != zoomrtms::PacketLogReader::Status::OK) {
        if (st != zoomrtms::PacketLogReader::Status::END)
          warning = err;
        done = true;
        break;
      }
      auto & r = priv->replay_rec;
      if (!r.mode.empty ())
        priv->aligner->set_participant_mode (r.key, r.mode);
      /* into this pipeline's own packet log too, when it is still to be
       * output: a crash of this pipeline is continued from its own log */
      gint64 end_ms = r.timestamp_ms + (gint64) (r.pcm.size () / 2) * 1000 /
          MAX (priv->rate, 1);
      if (!fixed || end_ms * priv->rate / 1000 >
          (gint64) (origin_pos * priv->rate / 1000 + start_pos)) {
        std::lock_guard < std::mutex > lk (priv->plog_lock);
        priv->plog.append (r.key, r.mode, r.timestamp_ms, r.pcm.data (),
            r.pcm.size ());
      }
      Item it;
      it.kind = Item::AUDIO;
      it.keyp = &r.key;
      it.ts = r.timestamp_ms;
      it.data.swap (r.pcm);
      process_item_locked (self, it);
      it.data.swap (r.pcm);
      priv->frames_replayed++;
    }
    *outbuf = take_output_locked (self, anchor);
    if (done) {
      GST_INFO_OBJECT (self, "replay-log: %" G_GUINT64_FORMAT " packets "
          "replayed", priv->frames_replayed);
      priv->replay.reset ();
    }
  }
  post_late_reports (self);
  if (!warning.empty ())
    GST_ELEMENT_WARNING (self, RESOURCE, READ,
        ("The end of the replay log is torn or garbled; it was ignored"),
        ("%s", warning.c_str ()));
  return *outbuf != nullptr || !done;
}

/* The role hold of channels that appear after the start-up
 * (zoomrtms-aligner.h): notes when each pending channel was first seen,
 * releases those pending for role-timeout ms (their names appended to
 * @timed_out), reports an overflow of the hold (@overflow, the channels
 * still without a mode appended), and moves *@deadline to the earliest
 * deadline left (*@wait set). produce(), slock held. */
static void
role_hold_check_locked (GstZoomRtmsSrc * self, bool *wait,
    std::chrono::steady_clock::time_point * deadline, std::string * timed_out,
    bool *overflow)
{
  auto priv = self->priv;
  auto & a = *priv->aligner;
  if (a.role_hold_overflows () != priv->role_overflows_seen) {
    priv->role_overflows_seen = a.role_hold_overflows ();
    *overflow = true;
    for (const auto &c:a.stats ())
      if (c.participant_mode.empty () && c.frames > 0)
        *timed_out += (timed_out->empty ()? "" : ", ") + c.key;
  }
  if (a.roles_pending () == 0) {
    priv->role_waits.clear ();
    return;
  }
  auto now = std::chrono::steady_clock::now ();
  for (const auto &k:a.pending_role_keys ())
    priv->role_waits.emplace (k, now);
  for (auto it = priv->role_waits.begin (); it != priv->role_waits.end ();) {
    if (!a.role_pending (it->first)) {
      it = priv->role_waits.erase (it);
      continue;
    }
    auto at = it->second + std::chrono::milliseconds (priv->role_timeout);
    if (now >= at) {
      *timed_out += (timed_out->empty ()? "" : ", ") + it->first;
      a.release_role (it->first);
      it = priv->role_waits.erase (it);
      continue;
    }
    if (!*wait || at < *deadline)
      *deadline = at;
    *wait = true;
    ++it;
  }
}

/* What produce() returns when it has no buffer now: pump() waits for the
 * next request_pump() or for *@wake_at. */
#define PRODUCE_WAIT GST_FLOW_CUSTOM_SUCCESS

/* The next output of the stream (what GstPushSrc's create() was): a buffer
 * in *@outbuf (GST_FLOW_OK), PRODUCE_WAIT when nothing is ready (then
 * *@wake_at, monotonic µs, is the deadline to look again, 0 for none: the
 * I/O side calls request_pump() when a packet may complete a block), or
 * the end: GST_FLOW_EOS, GST_FLOW_ERROR (the error message posted),
 * GST_FLOW_NOT_NEGOTIATED, GST_FLOW_FLUSHING. Never blocks. pump(), on the
 * I/O thread, pad stream lock held. */
static GstFlowReturn
produce (GstZoomRtmsSrc * self, GstBuffer ** outbuf, gint64 * wake_at)
{
  auto priv = self->priv;
  *wake_at = 0;
  std::unique_lock < std::mutex > lk (priv->qlock);
  priv->consumer_waiting = false;
  for (;;) {
    if (priv->flushing)
      return GST_FLOW_FLUSHING;
    if (priv->replay) {
      /* replay-log first, before any network packet */
      lk.unlock ();
      GstBuffer *rbuf;
      GstFlowReturn ret;
      gboolean more = replay_step (self, &rbuf, &ret);
      if (ret != GST_FLOW_OK)
        return ret;
      if (rbuf) {
        maybe_post_timeline (self);
        maybe_post_stats (self, rbuf);
        *outbuf = rbuf;
        return GST_FLOW_OK;
      }
      lk.lock ();
      if (more)
        continue;
    }
    if (priv->app_eos_draining) {
      /* after an application EOS: what the aligner still holds, then EOS;
       * audio that arrives from now on is not taken */
      priv->queue.clear ();
      priv->queued_audio = 0;
      GstBuffer *buf;
      {
        std::lock_guard < std::mutex > slk (priv->slock);
        buf = take_output_locked (self, priv->anchor);
      }
      bool detached = priv->detach_requested;
      lk.unlock ();
      if (!buf) {
        GST_INFO_OBJECT (self, "application EOS: drained");
        if (detached)
          post_end_message (self, true);
        return GST_FLOW_EOS;
      }
      maybe_post_timeline (self);
      *outbuf = buf;
      return GST_FLOW_OK;
    }
    if (!priv->queue.empty ()) {
      std::vector < Item > items;
      items.swap (priv->spare);
      items.swap (priv->queue);
      priv->queued_audio = 0;
      bool discont = priv->discont_pending;
      priv->discont_pending = false;
      lk.unlock ();
      if (discont) {
        std::lock_guard < std::mutex > slk (priv->slock);
        priv->overflow_discont = true;
      }
      {
        /* slock once for the batch, not per packet (negotiate_params()
         * takes it itself) */
        std::unique_lock < std::mutex > slk (priv->slock, std::defer_lock);
        for (auto &it:items) {
          if (it.kind == Item::READY) {
            if (slk.owns_lock ())
              slk.unlock ();
            if (!negotiate_params (self, it.params))
              return GST_FLOW_NOT_NEGOTIATED;
            continue;
          }
          if (!slk.owns_lock ())
            slk.lock ();
          process_item_locked (self, it);
        }
      }
      post_late_reports (self);
      lk.lock ();
      /* recycle the packet buffers, keep the vector's capacity */
      for (auto &it:items)
        if (it.kind == Item::AUDIO && priv->data_pool.size () < 64)
          priv->data_pool.push_back (std::move (it.data));
      items.clear ();
      priv->spare.swap (items);
    }
    if (priv->app_eos) {
      /* audio queued before the EOS (while the items above were processed)
       * goes in first; none is queued after it (on_audio) */
      if (!priv->queue.empty ())
        continue;
      /* everything received before the EOS is in the aligner now */
      priv->app_eos_draining = true;
      std::lock_guard < std::mutex > slk (priv->slock);
      if (priv->aligner)
        priv->aligner->drain ();
      continue;
    }
    /* ZCC stereo start-up hold (zoomrtms-aligner.h): it ends when the
     * roles are known, at drain, or role-timeout ms (wall clock) after the
     * first packet; the wait below ends at that deadline, so the timeout
     * fires even when nothing else arrives. The role hold of a channel
     * that appears later (a failover's new channel_ids, a party joining
     * mid-call) is the same rule, role-timeout ms after produce() first
     * saw it pending. */
    bool hold_wait = false;
    std::chrono::steady_clock::time_point hold_deadline;
    std::string timed_out_channels;
    bool hold_overflow = false;
    std::string late_role_channels;
    bool role_overflow = false;
    {
      std::lock_guard < std::mutex > slk (priv->slock);
      if (priv->aligner && priv->role_timeout > 0 && priv->have_first_audio
          && !priv->hold_timed_out && priv->aligner->startup_hold_overflowed ()) {
        /* the backlog held for the roles reached its memory bound */
        hold_overflow = true;
        for (const auto &c:priv->aligner->stats ())
          if (c.participant_mode.empty () && c.frames > 0)
            timed_out_channels += (timed_out_channels.empty ()? "" : ", ")
                + c.key;
        priv->hold_timed_out = true;
      } else if (priv->aligner && priv->role_timeout > 0
          && priv->have_first_audio && priv->aligner->holding ()) {
        hold_deadline = priv->first_audio +
            std::chrono::milliseconds (priv->role_timeout);
        if (std::chrono::steady_clock::now () >= hold_deadline) {
          for (const auto &c:priv->aligner->stats ())
            if (c.participant_mode.empty ())
              timed_out_channels += (timed_out_channels.empty ()? "" : ", ")
                  + c.key;
          priv->aligner->release_hold ();
          if (priv->hold_timed_out)
            timed_out_channels.clear ();
          priv->hold_timed_out = true;
        } else {
          hold_wait = true;
        }
      }
      if (priv->aligner && priv->role_timeout > 0)
        role_hold_check_locked (self, &hold_wait, &hold_deadline,
            &late_role_channels, &role_overflow);
    }
    if (!late_role_channels.empty ()) {
      lk.unlock ();
      GST_ELEMENT_WARNING (self, STREAM, FAILED,
          ("No participant roles from Zoom within role-timeout for a channel "
              "that appeared mid-stream; its side is guessed (right when "
              "another channel is the customer)"),
          ("%s no participant_mode for channel(s) %s", role_overflow ?
              "with the held audio at its memory bound," : "after "
              "role-timeout,", late_role_channels.c_str ()));
      lk.lock ();
      continue;
    }
    if (!timed_out_channels.empty ()) {
      lk.unlock ();
      GST_ELEMENT_WARNING (self, STREAM, FAILED,
          ("No participant roles from Zoom within role-timeout; the first "
              "channel seen is output as the customer (left)"),
          ("%s no participant_mode for channel(s) %s", hold_overflow ?
              "with the held backlog at its memory bound," : "after "
              "role-timeout,", timed_out_channels.c_str ()));
      lk.lock ();
      continue;
    }
    GstClockTime anchor = priv->anchor;
    if (!GST_CLOCK_TIME_IS_VALID (anchor) && priv->negotiated) {
      anchor = priv->anchor = current_running_time (self);
    }
    GstBuffer *buf;
    {
      std::lock_guard < std::mutex > slk (priv->slock);
      buf = take_output_locked (self, anchor);
      if (!buf && priv->closed && priv->queue.empty () && priv->aligner) {
        priv->aligner->drain ();
        buf = take_output_locked (self, anchor);
      }
    }
    if (buf) {
      lk.unlock ();
      if (priv->aligner)
        priv->t0_ms.store (priv->aligner->t0_ms ());
      maybe_post_timeline (self);
      maybe_post_stats (self, buf);
      *outbuf = buf;
      return GST_FLOW_OK;
    }
    if (priv->closed && priv->queue.empty () && priv->detach_requested &&
        !priv->app_eos) {
      /* do_detach() closed the client and sets app_eos right after (and
       * asks for a pump); look again in 100 ms at the latest */
      priv->consumer_waiting = true;
      *wake_at = g_get_monotonic_time () + 100 * 1000;
      return PRODUCE_WAIT;
    }
    if (priv->closed && priv->queue.empty ()) {
      if (priv->have_error) {
        rtms::ClientError e = priv->error;
        bool ever = priv->ever_ready;
        lk.unlock ();
        post_client_error (self, e, ever);
        return GST_FLOW_ERROR;
      }
      bool superseded = priv->superseded;
      lk.unlock ();
      if (superseded)
        post_end_message (self, false);
      GST_INFO_OBJECT (self, "remote end of stream: EOS");
      return GST_FLOW_EOS;
    }
    if (!priv->queue.empty ())
      continue;
    priv->consumer_waiting = true;
    if (hold_wait) {
      auto left = std::chrono::duration_cast < std::chrono::microseconds >
          (hold_deadline - std::chrono::steady_clock::now ()).count ();
      *wake_at = g_get_monotonic_time () + MAX ((gint64) left, (gint64) 0);
    }
    return PRODUCE_WAIT;
  }
}

/* ------------------------------------------------- the shared threads */

static void pump (GstZoomRtmsSrc * self);

static void
deferred_pump_cb (gpointer data)
{
  auto self = GST_ZOOM_RTMS_SRC (data);
  self->priv->pump_deferred = false;
  pump (self);
  gst_object_unref (self);
}

/* Asks for a pump() at the end of this I/O iteration, once however often
 * it is asked (many packets of many engagements are read in one
 * iteration; each element then aligns and pushes once). Client callbacks,
 * on the I/O thread: never pushes from inside the client's parsing. */
static void
request_pump (GstZoomRtmsSrc * self)
{
  auto priv = self->priv;
  if (priv->pump_deferred || !priv->io)
    return;
  priv->pump_deferred = true;
  priv->io->defer (deferred_pump_cb, gst_object_ref (self));
}

/* Asks for a pump() on the I/O thread from any other thread (a state
 * change, an application EOS, a detach). */
static void
request_pump_async (GstZoomRtmsSrc * self)
{
  std::shared_ptr < rtms::IoContext > io = self->priv->io;
  if (!io)
    return;
  gst_object_ref (self);
  io->invoke_async ([self]() {
        request_pump (self);
        gst_object_unref (self);
      });
}

static gboolean
wake_timer_cb (gpointer data)
{
  auto self = GST_ZOOM_RTMS_SRC (data);
  auto priv = self->priv;
  g_source_unref (priv->wake_timer);
  priv->wake_timer = nullptr;
  priv->wake_timer_at = 0;
  pump (self);
  return G_SOURCE_REMOVE;
}

/* I/O thread. */
static void
cancel_wake_timer (GstZoomRtmsSrcPrivate * priv)
{
  if (!priv->wake_timer)
    return;
  g_source_destroy (priv->wake_timer);
  g_source_unref (priv->wake_timer);
  priv->wake_timer = nullptr;
  priv->wake_timer_at = 0;
}

/* Runs pump() at @at (monotonic µs) unless it runs earlier anyway. I/O
 * thread. */
static void
arm_wake_timer (GstZoomRtmsSrc * self, gint64 at)
{
  auto priv = self->priv;
  if (priv->wake_timer && priv->wake_timer_at <= at)
    return;
  cancel_wake_timer (priv);
  gint64 ms = (at - g_get_monotonic_time () + 999) / 1000;
  priv->wake_timer = g_timeout_source_new ((guint) CLAMP (ms, 0, G_MAXINT));
  priv->wake_timer_at = at;
  g_source_set_callback (priv->wake_timer, wake_timer_cb,
      gst_object_ref (self), gst_object_unref);
  g_source_attach (priv->wake_timer, priv->io->context ());
}

/* The EOS after an error, pushed from a thread of its own (error_eos_pool,
 * one task per failed stream): after an ERROR a pipeline that was still
 * going to PLAYING never gets there, and its sink, which prerolls on this
 * EOS, holds it until the application stops the pipeline. On the I/O
 * thread that wait would stall every stream of that thread, and an
 * application waiting for that thread (a pipeline starting: invoke_sync)
 * would never get to stop it (seen in the host: HostLifecycle.
 * HostileEngagementIdsStayInsideOutputRoot deadlocked). */
static GThreadPool *error_eos_pool = nullptr;

static void
push_error_eos (gpointer data, gpointer)
{
  auto self = GST_ZOOM_RTMS_SRC (data);
  GST_PAD_STREAM_LOCK (self->srcpad);
  bool flushing;
  {
    std::lock_guard < std::mutex > lk (self->priv->qlock);
    flushing = self->priv->flushing;
  }
  if (!flushing) {
    ensure_stream_start (self);
    gst_pad_push_event (self->srcpad, gst_event_new_eos ());
  }
  GST_PAD_STREAM_UNLOCK (self->srcpad);
  gst_object_unref (self);
}

/* The end of the output, as GstBaseSrc's loop ends it: EOS pushed for
 * GST_FLOW_EOS, and for GST_FLOW_NOT_LINKED or a fatal flow return an
 * "Internal data stream error" (GST_ELEMENT_FLOW_ERROR) first, then EOS
 * (from push_error_eos()); FLUSHING ends nothing (a state change is under
 * way). Pad stream lock held. */
static void
end_output (GstZoomRtmsSrc * self, GstFlowReturn ret)
{
  auto priv = self->priv;
  if (ret == GST_FLOW_FLUSHING)
    return;
  GST_INFO_OBJECT (self, "output ends: %s", gst_flow_get_name (ret));
  {
    std::lock_guard < std::mutex > lk (priv->qlock);
    priv->ended = true;
  }
  if (ret == GST_FLOW_NOT_LINKED || ret < GST_FLOW_EOS) {
    GST_ELEMENT_FLOW_ERROR (self, ret);
    g_thread_pool_push (error_eos_pool, gst_object_ref (self), nullptr);
    return;
  }
  ensure_stream_start (self);
  gst_pad_push_event (self->srcpad, gst_event_new_eos ());
}

/* Buffers pushed per pump() before it lets the I/O thread serve the other
 * sockets (a replayed packet log or a backlog is output in slices). */
#define PUMP_BUDGET 64

/* The streaming side of the element, run on the client's I/O thread
 * (deferred after the reads, by the wake timer, or asked for by another
 * thread) instead of a streaming thread of its own: aligns what the I/O
 * callbacks queued and pushes every ready buffer downstream, holding the
 * src pad's stream lock as a GstTask would (pad deactivation waits for
 * it). Downstream runs on this thread too: an element that blocks (a
 * synchronised sink, a full queue) holds up every stream of this I/O
 * thread; put a queue after the source for such pipelines (design.md
 * "Threads"). */
static void
pump (GstZoomRtmsSrc * self)
{
  auto priv = self->priv;
  GstPad *pad = self->srcpad;
  GST_PAD_STREAM_LOCK (pad);
  for (int budget = PUMP_BUDGET;; budget--) {
    {
      std::lock_guard < std::mutex > lk (priv->qlock);
      if (priv->flushing || priv->ended || !priv->playing)
        break;
    }
    if (budget == 0) {
      request_pump (self);
      break;
    }
    GstBuffer *buf = nullptr;
    gint64 wake_at = 0;
    GstFlowReturn ret = produce (self, &buf, &wake_at);
    if (ret == PRODUCE_WAIT) {
      if (wake_at)
        arm_wake_timer (self, wake_at);
      break;
    }
    if (ret == GST_FLOW_OK) {
      if (!priv->segment_pushed) {
        GstSegment seg;
        gst_segment_init (&seg, GST_FORMAT_TIME);
        ensure_stream_start (self);
        gst_pad_push_event (pad, gst_event_new_segment (&seg));
        priv->segment_pushed = true;
      }
      ret = gst_pad_push (pad, buf);
    }
    if (ret != GST_FLOW_OK) {
      end_output (self, ret);
      break;
    }
  }
  GST_PAD_STREAM_UNLOCK (pad);
}

/* ------------------------------------------------------ the element */

/* READY→PAUSED: checks the settings, opens the packet logs, starts the
 * client on an I/O context. FALSE (an error posted) if it cannot. */
static gboolean
start (GstZoomRtmsSrc * self)
{
  auto priv = self->priv;
  Settings s;
  {
    std::lock_guard < std::mutex > lk (priv->lock);
    s = priv->settings;
  }
  if (s.client_id.empty ())
    s.client_id = g_getenv ("ZOOM_APP_CLIENT_ID") ? : "";
  if (s.client_secret.empty ())
    s.client_secret = g_getenv ("ZOOM_APP_CLIENT_SECRET") ? : "";

  std::string url = rtms::select_signaling_url (s.server_urls);
  const char *missing = nullptr;
  if (url.empty ())
    missing = "server-urls (a ws:// or wss:// signaling URL)";
  else if (s.rtms_stream_id.empty ())
    missing = "rtms-stream-id";
  else if (!s.engagement_id.empty () + !s.meeting_uuid.empty () +
      !s.webinar_uuid.empty () + !s.session_id.empty () != 1)
    missing = "exactly one of engagement-id, meeting-uuid, webinar-uuid and "
        "session-id";
  else if (s.signature.empty () &&
      (s.client_id.empty () || s.client_secret.empty ()))
    missing = "client-id and client-secret (or ZOOM_APP_CLIENT_ID and "
        "ZOOM_APP_CLIENT_SECRET), or signature";
  int rate_enum = rtms::sample_rate_enum ((int) s.rate);
  if (!missing && rate_enum < 0)
    missing = "rate as one of 8000, 16000, 32000, 48000";
  if (!missing && (s.send_rate < 20 || s.send_rate % 20 != 0))
    missing = "send-rate as a multiple of 20 ms";
  if (missing) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
        ("zoomrtmssrc needs %s", missing), (nullptr));
    return FALSE;
  }

  rtms::ClientConfig cfg;
  cfg.signaling_url = url;
  /* the product's id key in msg 1 and the signature (docs/protocol.md §3.3) */
  if (!s.engagement_id.empty ()) {
    cfg.product = rtms::Product::CONTACT_CENTER;
    cfg.id_value = s.engagement_id;
  } else if (!s.webinar_uuid.empty ()) {
    cfg.product = rtms::Product::WEBINAR;
    cfg.id_value = s.webinar_uuid;
  } else if (!s.session_id.empty ()) {
    cfg.product = rtms::Product::SESSION;
    cfg.id_value = s.session_id;
  } else {
    cfg.product = rtms::Product::MEETING;
    cfg.id_value = s.meeting_uuid;
  }
  cfg.rtms_stream_id = s.rtms_stream_id;
  cfg.client_id = s.client_id;
  cfg.client_secret = s.client_secret;
  cfg.signature = s.signature;
  cfg.ca_file = s.ca_file;
  cfg.audio.content_type = rtms::CONTENT_RAW_AUDIO;
  cfg.audio.codec = s.codec == GST_ZOOM_RTMS_CODEC_OPUS ? rtms::CODEC_OPUS :
      rtms::CODEC_L16;
  /* Opus is always 48 kHz on RTMS (docs/protocol.md §9.1) */
  cfg.audio.sample_rate = s.codec == GST_ZOOM_RTMS_CODEC_OPUS ?
      rtms::SR_48K : rate_enum;
  cfg.audio.channel = rtms::CHANNEL_MONO;
  cfg.audio.data_opt = s.data_opt == GST_ZOOM_RTMS_DATA_OPT_MULTI ?
      rtms::DATA_OPT_AUDIO_MULTI_STREAMS : rtms::DATA_OPT_AUDIO_MIXED_STREAM;
  cfg.audio.send_rate = (int) s.send_rate;
  cfg.want_audio = true;
  cfg.want_transcripts = s.transcripts;
  cfg.buffer_data = s.buffer_data;
  cfg.media_grace_ms = s.media_grace;
  cfg.signaling_grace_ms = s.signaling_grace;

  {
    std::lock_guard < std::mutex > lk (priv->qlock);
    priv->queue.clear ();
    priv->spare.clear ();
    priv->queued_audio = 0;
    priv->keys.clear ();
    priv->keys_last_ts.clear ();
    priv->keys_info.clear ();
    priv->closed = false;
    priv->app_eos = false;
    priv->app_eos_draining = false;
    priv->have_error = false;
    priv->error = rtms::ClientError ();
    priv->ever_ready = false;
    priv->discont_pending = false;
    priv->anchor = GST_CLOCK_TIME_NONE;
    priv->have_first_audio = false;
    priv->detach_requested = false;
    priv->superseded = false;
    priv->end_message_posted = false;
    priv->flushing = false;
    priv->playing = false;
    priv->ended = false;
  }
  GST_PAD_STREAM_LOCK (self->srcpad);
  priv->stream_start_pushed = false;
  priv->segment_pushed = false;
  GST_PAD_STREAM_UNLOCK (self->srcpad);
  {
    std::lock_guard < std::mutex > lk (priv->slock);
    priv->aligner.reset ();
    priv->role_timeout = 0;
    priv->hold_timed_out = false;
    priv->negotiated = false;
    priv->opus = false;
    priv->packets = false;
    priv->rate = 0;
    priv->samples_out = 0;
    for (auto b:priv->opus_out)
      gst_buffer_unref (b);
    priv->opus_out.clear ();
    priv->opus_key.clear ();
    priv->opus_t0 = priv->opus_last_ts = G_MININT64;
    priv->opus_frames = priv->opus_duplicates = priv->opus_late = 0;
    priv->opus_discont = true;
    priv->overflow_discont = false;
    priv->latency_hist.clear ();
    priv->latency_samples = priv->latency_skipped = 0;
    priv->latency_max_ms = 0;
    priv->align_hold = 0;
    priv->late_reports.clear ();
    priv->late_reported = priv->oor_reported = 0;
    priv->pts_offset = 0;
    priv->last_end = s.timeline_origin >= 0 ? s.timeline_offset : 0;
    priv->timeline_posted = false;
    priv->frames_replayed = 0;
    priv->requested = cfg.audio;
    priv->replay.reset ();
  }
  bool l16 = s.codec == GST_ZOOM_RTMS_CODEC_L16;
  if (s.timeline_offset > 0 && s.timeline_origin < 0)
    GST_ELEMENT_WARNING (self, RESOURCE, SETTINGS,
        ("timeline-offset is ignored without timeline-origin"), (nullptr));
  if (!l16 && (s.timeline_origin >= 0 || !s.packet_log.empty () ||
          !s.replay_log.empty ()))
    GST_ELEMENT_WARNING (self, RESOURCE, SETTINGS,
        ("timeline-origin, timeline-offset, packet-log and replay-log apply "
            "to codec=l16 only; ignored for Opus"), (nullptr));
  if (!s.replay_log.empty () && l16) {
    /* read before anything else opens the path (packet-log may be the
     * same file: the writer creates a new inode) */
    auto reader = std::make_unique < zoomrtms::PacketLogReader > ();
    std::string err;
    if (!reader->open (s.replay_log, &err)) {
      GST_ELEMENT_WARNING (self, RESOURCE, OPEN_READ,
          ("Cannot replay the packet log; continuing without it"),
          ("%s: %s", s.replay_log.c_str (), err.c_str ()));
    } else if (reader->header ().rate != s.rate || reader->header ().codec !=
        (guint16) rtms::CODEC_L16) {
      GST_ELEMENT_WARNING (self, RESOURCE, OPEN_READ,
          ("The packet log to replay has another format; continuing without "
              "it"), ("%s: rate %u codec %u, this pipeline rate %u L16",
              s.replay_log.c_str (), reader->header ().rate,
              reader->header ().codec, s.rate));
    } else {
      std::lock_guard < std::mutex > lk (priv->slock);
      priv->replay = std::move (reader);
    }
  }
  if (!s.packet_log.empty () && l16) {
    zoomrtms::PacketLogHeader ph;
    ph.rate = s.rate;
    ph.codec = (guint16) rtms::CODEC_L16;
    ph.send_rate = s.send_rate;
    std::string err;
    std::lock_guard < std::mutex > lk (priv->plog_lock);
    priv->plog_warned = false;
    if (!priv->plog.open (s.packet_log, ph, &err))
      GST_ELEMENT_WARNING (self, RESOURCE, OPEN_WRITE,
          ("Cannot create the packet log; recording without it"),
          ("%s: %s", s.packet_log.c_str (), err.c_str ()));
  }
  priv->frames_received = 0;
  priv->frames_malformed = 0;
  priv->frames_dropped = 0;
  priv->t0_ms = l16 && s.timeline_origin >= 0 ? s.timeline_origin : G_MININT64;
  priv->offset_ms = l16 && s.timeline_origin >= 0 ?
      (gint64) (s.timeline_offset * 1000 / MAX (s.rate, 1u)) : 0;
  priv->participants.clear ();
  priv->stream_id = s.rtms_stream_id;
  priv->zcc = cfg.product == rtms::Product::CONTACT_CENTER;
  priv->multi = !priv->zcc && s.data_opt == GST_ZOOM_RTMS_DATA_OPT_MULTI;

  rtms::ClientCallbacks cb;
  cb.on_ready =[self] (const rtms::AudioParams & p) {
    on_ready (self, p);
  };
  cb.on_audio =[self, priv] (const rtms::AudioFrame & f) {
    on_audio (self, priv, f);
  };
  cb.on_transcript =[self] (const rtms::TranscriptData & t) {
    on_transcript (self, t);
  };
  cb.on_event =[self] (const rtms::EventUpdate & e) {
    on_event (self, e);
  };
  cb.on_stream_state =[self] (const rtms::StreamStateUpdate & st) {
    on_stream_state (self, st);
  };
  cb.on_session_state =[self] (const rtms::SessionStateUpdate & st) {
    on_session_state (self, st);
  };
  cb.on_malformed =[self] (const std::string & w) {
    on_malformed (self, w);
  };
  cb.on_closed =[self] (const rtms::ClientError * e) {
    on_closed (self, e);
  };
  cb.on_outage =[self] (const rtms::Outage & o) {
    on_outage (self, o);
  };
  /* the client's log lines go through our debug category: GST_DEBUG
   * drives them (design.md "Conventions") */
  cb.on_log =[self] (GLogLevelFlags level, const std::string & line) {
    GstDebugLevel l = (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL)) ?
        GST_LEVEL_ERROR : (level & G_LOG_LEVEL_WARNING) ? GST_LEVEL_WARNING :
        (level & (G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO)) ? GST_LEVEL_INFO :
        GST_LEVEL_DEBUG;
    GST_CAT_LEVEL_LOG (gst_zoom_rtms_src_debug, l, self, "%s", line.c_str ());
  };

  GST_INFO_OBJECT (self, "connecting to %s for stream %s", url.c_str (),
      s.rtms_stream_id.c_str ());
  priv->io = rtms::IoContext::get ();
  auto io = priv->io;
  {
    std::lock_guard < std::mutex > lk (priv->lock);
    priv->started = true;
  }
  /* the client is made on its I/O thread without waiting for it: that
   * thread may be busy (hundreds of streams), and the application's
   * thread (the host's main loop, starting hundreds of calls) must not
   * wait (docs/benchmarks.md "Starting 1,000 engagements"). Calls queued
   * on one context run in order, so stop()'s invoke_sync comes after. */
  guint flush_ms = s.packet_log_flush_ms;
  auto shared_cfg = std::make_shared < rtms::ClientConfig > (std::move (cfg));
  auto shared_cb = std::make_shared < rtms::ClientCallbacks > (std::move (cb));
  gst_object_ref (self);
  io->invoke_async ([self, io, flush_ms, shared_cfg, shared_cb]() {
        auto p = self->priv;
        rtms::Client * client;
        {
          std::lock_guard < std::mutex > lk (p->lock);
          if (!p->started) {
            gst_object_unref (self);
            return;             /* stopped before it ran */
          }
          p->client = std::make_unique < rtms::Client > (io->context (),
              std::move (*shared_cfg), std::move (*shared_cb));
          client = p->client.get ();
        }
        {
          std::lock_guard < std::mutex > lk (p->plog_lock);
          if (p->plog.is_open ()) {
            p->plog_flush_us = (gint64) MAX (flush_ms, 1u) * 1000;
            p->plog_next_flush_us = g_get_monotonic_time () +
                p->plog_flush_us;
            p->plog_tick = io->add_tick (packet_log_tick, self);
          }
        }
        client->start ();
        gst_object_unref (self);
      });
  return TRUE;
}

/* PAUSED→READY, after the src pad is deactivated (no pump() is pushing):
 * closes the client (STREAM_CLOSE_REQ unless detached), the packet log and
 * the wake timer. */
static void
stop (GstZoomRtmsSrc * self)
{
  auto priv = self->priv;
  std::unique_ptr < rtms::Client > client;
  {
    std::lock_guard < std::mutex > lk (priv->lock);
    priv->started = false;
    client = std::move (priv->client);
  }
  if (client) {
    bool remote_closed;
    {
      std::lock_guard < std::mutex > lk (priv->qlock);
      remote_closed = priv->closed;
    }
    auto io = priv->io;
    bool detach;
    {
      std::lock_guard < std::mutex > lk (priv->qlock);
      detach = priv->detach_requested || priv->superseded;
    }
    {
      std::lock_guard < std::mutex > lk (priv->lock);
      detach = detach || priv->settings.eos_action ==
          GST_ZOOM_RTMS_EOS_ACTION_DETACH;
    }
    io->invoke_sync ([&]() {
          if (detach) {
            /* detach is not stop (design.md "Lifetimes"): no msg 21, Zoom
             * keeps the stream for its grace window */
            GST_INFO_OBJECT (self, "detaching the client");
            client->detach ();
            return;
          }
          /* the application ends the stream: ask Zoom to close it (§3.8) */
          bool send_close_req = !remote_closed &&
              client->state () == rtms::ClientState::STREAMING;
          GST_INFO_OBJECT (self, "closing the client%s",
              send_close_req ? " with STREAM_CLOSE_REQ" : "");
          client->close (send_close_req, CLOSE_WAIT_MS);
        });
    {
      std::unique_lock < std::mutex > lk (priv->qlock);
      priv->qcond.wait_for (lk,
          std::chrono::milliseconds (CLOSE_WAIT_MS + 500),
          [&]() { return priv->closed; });
    }
    io->invoke_sync ([&]() {
          client.reset ();
        });
  }
  if (priv->io)
    priv->io->invoke_sync ([priv]() {
          cancel_wake_timer (priv);
          if (priv->plog_tick)
            priv->io->remove_tick (priv->plog_tick);
          priv->plog_tick = 0;
        });
  {
    std::lock_guard < std::mutex > lk (priv->plog_lock);
    priv->plog.close ();
  }
  {
    std::lock_guard < std::mutex > lk (priv->qlock);
    priv->queue.clear ();
    priv->queued_audio = 0;
  }
  {
    std::lock_guard < std::mutex > lk (priv->slock);
    for (auto b:priv->opus_out)
      gst_buffer_unref (b);
    priv->opus_out.clear ();
    release_pool (priv);
  }
}

/* An application EOS (gst-launch-1.0 -e, the host's stop) while the client
 * runs: instead of GstBaseSrc's immediate EOS, which would drop the audio
 * the aligner still holds (align-hold, the ZCC role hold), produce()
 * outputs everything received so far and then returns EOS. stop() then sends
 * STREAM_CLOSE_REQ. */
/* Detach (design.md "Lifetimes: detach is not stop"): closes both
 * WebSockets at once without STREAM_CLOSE_REQ, so Zoom holds the stream for
 * its grace window (docs/protocol.md §4.9); then, like an application EOS,
 * produce() outputs everything received (the aligner's held audio too),
 * posts zoomrtms/detached and returns EOS. Any thread (from inside pump()
 * too: an upstream event sent during a push); returns FALSE if the element
 * is not running. */
static gboolean
do_detach (GstZoomRtmsSrc * self)
{
  auto priv = self->priv;
  std::shared_ptr < rtms::IoContext > io;
  {
    std::lock_guard < std::mutex > lk (priv->lock);
    if (!priv->started)
      return FALSE;
    io = priv->io;
  }
  GST_INFO_OBJECT (self, "detaching: closing the sockets without "
      "STREAM_CLOSE_REQ");
  {
    /* first: the client's on_closed must not look like a remote end */
    std::lock_guard < std::mutex > lk (priv->qlock);
    priv->detach_requested = true;
  }
  io->invoke_sync ([priv]() {
        /* the client is destroyed on this thread only */
        std::lock_guard < std::mutex > lk (priv->lock);
        if (priv->client)
          priv->client->detach ();
      });
  {
    std::lock_guard < std::mutex > lk (priv->qlock);
    priv->detach_requested = true;
    priv->app_eos = true;
  }
  request_pump_async (self);
  return TRUE;
}

static gboolean
is_detach_event (GstEvent * event)
{
  return GST_EVENT_TYPE (event) == GST_EVENT_CUSTOM_UPSTREAM &&
      gst_event_has_name (event, GST_ZOOM_RTMS_DETACH_EVENT);
}

static gboolean
gst_zoom_rtms_src_send_event (GstElement * element, GstEvent * event)
{
  auto self = GST_ZOOM_RTMS_SRC (element);
  auto priv = self->priv;
  bool detach_on_eos;
  {
    std::lock_guard < std::mutex > lk (priv->lock);
    detach_on_eos = priv->settings.eos_action ==
        GST_ZOOM_RTMS_EOS_ACTION_DETACH;
  }
  if (is_detach_event (event) || (GST_EVENT_TYPE (event) == GST_EVENT_EOS &&
          detach_on_eos)) {
    if (do_detach (self)) {
      gst_event_unref (event);
      return TRUE;
    }
    if (is_detach_event (event)) {
      GST_DEBUG_OBJECT (self, "zoomrtms/detach while not running: ignored");
      gst_event_unref (event);
      return FALSE;
    }
  }
  if (GST_EVENT_TYPE (event) == GST_EVENT_EOS) {
    bool running;
    {
      std::lock_guard < std::mutex > lk (priv->lock);
      running = priv->started;
    }
    if (running) {
      {
        std::lock_guard < std::mutex > lk (priv->qlock);
        GST_INFO_OBJECT (self, "application EOS: draining");
        priv->app_eos = true;
      }
      request_pump_async (self);
      gst_event_unref (event);
      return TRUE;
    }
  }
  return GST_ELEMENT_CLASS (gst_zoom_rtms_src_parent_class)->send_event
      (element, event);
}

/* Upstream events on the src pad: zoomrtms/detach (from a downstream
 * element or a pad probe of the application); a seek is refused (a live
 * stream); the rest as the default handler (no upstream peer). */
static gboolean
gst_zoom_rtms_src_src_event (GstPad * pad, GstObject * parent,
    GstEvent * event)
{
  auto self = GST_ZOOM_RTMS_SRC (parent);
  if (is_detach_event (event)) {
    gst_event_unref (event);
    return do_detach (self);
  }
  if (GST_EVENT_TYPE (event) == GST_EVENT_SEEK) {
    GST_DEBUG_OBJECT (self, "a live stream cannot seek");
    gst_event_unref (event);
    return FALSE;
  }
  return gst_pad_event_default (pad, parent, event);
}

/* The latency query: live, min one output block (a packet, or block-ms)
 * plus $ZOOMRTMS_CONTEXT_WAIT, max the hold (output waits that long at
 * most for a channel that is behind, zoomrtms-aligner.h). The caps are fixed only after the media
 * handshake (msg 4): until then a caps query answers the template, and no
 * caps are pushed (they would fix caps downstream, e.g. in wavenc, that
 * the real ones could not replace). */
static gboolean
gst_zoom_rtms_src_src_query (GstPad * pad, GstObject * parent,
    GstQuery * query)
{
  auto self = GST_ZOOM_RTMS_SRC (parent);
  auto priv = self->priv;
  if (GST_QUERY_TYPE (query) == GST_QUERY_LATENCY) {
    guint send_rate, hold, block_ms = 0;
    {
      std::lock_guard < std::mutex > lk (priv->slock);
      send_rate = priv->negotiated ? (guint) priv->params.send_rate : 0;
      hold = priv->negotiated ? priv->align_hold : 0;
      block_ms = priv->negotiated ? priv->block_ms : 0;
    }
    if (send_rate == 0) {
      std::lock_guard < std::mutex > lk (priv->lock);
      send_rate = priv->settings.send_rate;
      hold = priv->settings.align_hold;
      block_ms = priv->settings.block_ms;
    }
    /* + the I/O threads' throttling wait: a block may wait that long
     * after its last packet arrived */
    GstClockTime min = (GstClockTime) (MAX (send_rate, block_ms) +
        rtms::IoContext::context_wait_ms ()) * GST_MSECOND;
    GstClockTime max = MAX (min, (GstClockTime) hold * GST_MSECOND);
    GST_DEBUG_OBJECT (self, "latency min %" GST_TIME_FORMAT " max %"
        GST_TIME_FORMAT, GST_TIME_ARGS (min), GST_TIME_ARGS (max));
    gst_query_set_latency (query, TRUE, min, max);
    return TRUE;
  }
  if (GST_QUERY_TYPE (query) == GST_QUERY_SCHEDULING) {
    gst_query_set_scheduling (query, GST_SCHEDULING_FLAG_SEQUENTIAL, 1, -1,
        0);
    gst_query_add_scheduling_mode (query, GST_PAD_MODE_PUSH);
    return TRUE;
  }
  return gst_pad_query_default (pad, parent, query);
}

/* A live source's state changes (what GstBaseSrc did for it):
 * READY→PAUSED starts the client and answers NO_PREROLL; PAUSED→PLAYING
 * lets pump() output (what arrived while PAUSED is queued, up to
 * MAX_QUEUE_ITEMS); PLAYING→PAUSED stops the output (NO_PREROLL);
 * PAUSED→READY flushes (a push in progress returns FLUSHING, the pad's
 * deactivation waits for it), then stop(). */
static GstStateChangeReturn
gst_zoom_rtms_src_change_state (GstElement * element,
    GstStateChange transition)
{
  auto self = GST_ZOOM_RTMS_SRC (element);
  auto priv = self->priv;
  switch (transition) {
    case GST_STATE_CHANGE_READY_TO_PAUSED:
      if (!start (self))
        return GST_STATE_CHANGE_FAILURE;
      break;
    case GST_STATE_CHANGE_PAUSED_TO_PLAYING:{
      {
        std::lock_guard < std::mutex > lk (priv->qlock);
        priv->playing = true;
      }
      request_pump_async (self);
      break;
    }
    case GST_STATE_CHANGE_PLAYING_TO_PAUSED:{
      std::lock_guard < std::mutex > lk (priv->qlock);
      priv->playing = false;
      break;
    }
    case GST_STATE_CHANGE_PAUSED_TO_READY:{
      std::lock_guard < std::mutex > lk (priv->qlock);
      priv->flushing = true;
      priv->playing = false;
      priv->qcond.notify_all ();
      break;
    }
    default:
      break;
  }
  GstStateChangeReturn ret =
      GST_ELEMENT_CLASS (parent_class)->change_state (element, transition);
  if (ret == GST_STATE_CHANGE_FAILURE) {
    if (transition == GST_STATE_CHANGE_READY_TO_PAUSED)
      stop (self);
    return ret;
  }
  switch (transition) {
    case GST_STATE_CHANGE_READY_TO_PAUSED:
    case GST_STATE_CHANGE_PLAYING_TO_PAUSED:
      ret = GST_STATE_CHANGE_NO_PREROLL;
      break;
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      stop (self);
      break;
    default:
      break;
  }
  return ret;
}

/* ------------------------------------------------------- properties */

static void
gst_zoom_rtms_src_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  auto self = GST_ZOOM_RTMS_SRC (object);
  auto priv = self->priv;
  std::lock_guard < std::mutex > lk (priv->lock);
  auto & s = priv->settings;
  auto str =[value] () {
    const char *v = g_value_get_string (value);
    return std::string (v ? v : "");
  };
  switch (prop_id) {
    case PROP_SERVER_URLS:{
      s.server_urls = str ();
      if (priv->client && priv->io) {
        /* failover (docs/protocol.md §4.9 row 1) */
        std::string url = rtms::select_signaling_url (s.server_urls);
        if (url == priv->client->signaling_url ()) {
          /* a duplicate or late rtms_interrupted / rtms_started with the
           * same server_urls: not a failover, the connection stays */
          GST_INFO_OBJECT (self, "server-urls unchanged (%s): no failover",
              url.c_str ());
          break;
        }
        GST_INFO_OBJECT (self, "failover to %s", url.c_str ());
        GstZoomRtmsSrc *ref = GST_ZOOM_RTMS_SRC (gst_object_ref (self));
        priv->io->invoke_async ([ref, url]() {
              auto p = ref->priv;
              rtms::Client * c;
              {
                std::lock_guard < std::mutex > l (p->lock);
                c = p->client.get ();
              }
              /* the client is destroyed on this thread only, so it
               * stays valid here */
              if (c && !url.empty ())
                c->reconnect (url);
              gst_object_unref (ref);
            });
      }
      break;
    }
    case PROP_RTMS_STREAM_ID:
      s.rtms_stream_id = str ();
      break;
    case PROP_ENGAGEMENT_ID:
      s.engagement_id = str ();
      break;
    case PROP_MEETING_UUID:
      s.meeting_uuid = str ();
      break;
    case PROP_WEBINAR_UUID:
      s.webinar_uuid = str ();
      break;
    case PROP_SESSION_ID:
      s.session_id = str ();
      break;
    case PROP_CLIENT_ID:
      s.client_id = str ();
      break;
    case PROP_CLIENT_SECRET:
      s.client_secret = str ();
      break;
    case PROP_SIGNATURE:
      s.signature = str ();
      break;
    case PROP_CA_FILE:
      s.ca_file = str ();
      break;
    case PROP_CODEC:
      s.codec = (GstZoomRtmsCodec) g_value_get_enum (value);
      break;
    case PROP_RATE:
      s.rate = g_value_get_uint (value);
      break;
    case PROP_SEND_RATE:
      s.send_rate = g_value_get_uint (value);
      break;
    case PROP_DATA_OPT:
      s.data_opt = (GstZoomRtmsDataOpt) g_value_get_enum (value);
      break;
    case PROP_LAYOUT:
      s.layout = (GstZoomRtmsLayout) g_value_get_enum (value);
      break;
    case PROP_MAX_GAP_FILL:
      s.max_gap_fill = g_value_get_uint (value);
      break;
    case PROP_TRANSCRIPTS:
      s.transcripts = g_value_get_boolean (value);
      break;
    case PROP_BUFFER_DATA:
      s.buffer_data = g_value_get_boolean (value);
      break;
    case PROP_POST_MESSAGES:
      priv->post_messages = g_value_get_boolean (value);
      break;
    case PROP_STATS_INTERVAL:
      s.stats_interval = g_value_get_uint (value);
      break;
    case PROP_ROLE_TIMEOUT:
      s.role_timeout = g_value_get_uint (value);
      break;
    case PROP_ALIGN_HOLD:
      s.align_hold = g_value_get_uint (value);
      break;
    case PROP_BLOCK_MS:
      s.block_ms = g_value_get_uint (value);
      break;
    case PROP_EOS_ACTION:
      s.eos_action = (GstZoomRtmsEosAction) g_value_get_enum (value);
      break;
    case PROP_TIMELINE_ORIGIN:
      s.timeline_origin = g_value_get_int64 (value);
      break;
    case PROP_TIMELINE_OFFSET:
      s.timeline_offset = g_value_get_uint64 (value);
      break;
    case PROP_PACKET_LOG:
      s.packet_log = str ();
      break;
    case PROP_PACKET_LOG_FLUSH_MS:
      s.packet_log_flush_ms = g_value_get_uint (value);
      break;
    case PROP_REPLAY_LOG:
      s.replay_log = str ();
      break;
    case PROP_MEDIA_GRACE:
      s.media_grace = g_value_get_uint (value);
      break;
    case PROP_SIGNALING_GRACE:
      s.signaling_grace = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

static void
gst_zoom_rtms_src_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec)
{
  auto self = GST_ZOOM_RTMS_SRC (object);
  auto priv = self->priv;
  if (prop_id == PROP_STATS) {
    std::lock_guard < std::mutex > lk (priv->slock);
    g_value_take_boxed (value, build_stats_locked (self));
    return;
  }
  std::lock_guard < std::mutex > lk (priv->lock);
  const auto & s = priv->settings;
  auto set_str =[value] (const std::string & v) {
    g_value_set_string (value, v.empty ()? nullptr : v.c_str ());
  };
  switch (prop_id) {
    case PROP_SERVER_URLS:
      set_str (s.server_urls);
      break;
    case PROP_RTMS_STREAM_ID:
      set_str (s.rtms_stream_id);
      break;
    case PROP_ENGAGEMENT_ID:
      set_str (s.engagement_id);
      break;
    case PROP_MEETING_UUID:
      set_str (s.meeting_uuid);
      break;
    case PROP_WEBINAR_UUID:
      set_str (s.webinar_uuid);
      break;
    case PROP_SESSION_ID:
      set_str (s.session_id);
      break;
    case PROP_CLIENT_ID:
      set_str (s.client_id);
      break;
    case PROP_SIGNATURE:
      set_str (s.signature);
      break;
    case PROP_CA_FILE:
      set_str (s.ca_file);
      break;
    case PROP_CODEC:
      g_value_set_enum (value, s.codec);
      break;
    case PROP_RATE:
      g_value_set_uint (value, s.rate);
      break;
    case PROP_SEND_RATE:
      g_value_set_uint (value, s.send_rate);
      break;
    case PROP_DATA_OPT:
      g_value_set_enum (value, s.data_opt);
      break;
    case PROP_LAYOUT:
      g_value_set_enum (value, s.layout);
      break;
    case PROP_MAX_GAP_FILL:
      g_value_set_uint (value, s.max_gap_fill);
      break;
    case PROP_TRANSCRIPTS:
      g_value_set_boolean (value, s.transcripts);
      break;
    case PROP_BUFFER_DATA:
      g_value_set_boolean (value, s.buffer_data);
      break;
    case PROP_POST_MESSAGES:
      g_value_set_boolean (value, priv->post_messages.load ());
      break;
    case PROP_STATS_INTERVAL:
      g_value_set_uint (value, s.stats_interval);
      break;
    case PROP_ROLE_TIMEOUT:
      g_value_set_uint (value, s.role_timeout);
      break;
    case PROP_ALIGN_HOLD:
      g_value_set_uint (value, s.align_hold);
      break;
    case PROP_BLOCK_MS:
      g_value_set_uint (value, s.block_ms);
      break;
    case PROP_EOS_ACTION:
      g_value_set_enum (value, s.eos_action);
      break;
    case PROP_TIMELINE_ORIGIN:{
      /* while running: the origin in use (once known) */
      gint64 t0 = priv->client ? priv->t0_ms.load () : G_MININT64;
      g_value_set_int64 (value, t0 != G_MININT64 ? t0 : s.timeline_origin);
      break;
    }
    case PROP_TIMELINE_OFFSET:
      g_value_set_uint64 (value, s.timeline_offset);
      break;
    case PROP_PACKET_LOG:
      set_str (s.packet_log);
      break;
    case PROP_PACKET_LOG_FLUSH_MS:
      g_value_set_uint (value, s.packet_log_flush_ms);
      break;
    case PROP_REPLAY_LOG:
      set_str (s.replay_log);
      break;
    case PROP_MEDIA_GRACE:
      g_value_set_uint (value, s.media_grace);
      break;
    case PROP_SIGNALING_GRACE:
      g_value_set_uint (value, s.signaling_grace);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

/* ------------------------------------------------------ GObject */

static void
gst_zoom_rtms_src_init (GstZoomRtmsSrc * self)
{
  self->priv = new GstZoomRtmsSrcPrivate ();
  const char *id = g_getenv ("ZOOM_APP_CLIENT_ID");
  const char *secret = g_getenv ("ZOOM_APP_CLIENT_SECRET");
  self->priv->settings.client_id = id ? id : "";
  self->priv->settings.client_secret = secret ? secret : "";
  self->srcpad = gst_pad_new_from_static_template (&src_template, "src");
  gst_pad_set_event_function (self->srcpad,
      GST_DEBUG_FUNCPTR (gst_zoom_rtms_src_src_event));
  gst_pad_set_query_function (self->srcpad,
      GST_DEBUG_FUNCPTR (gst_zoom_rtms_src_src_query));
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);
  GST_OBJECT_FLAG_SET (self, GST_ELEMENT_FLAG_SOURCE);
  gst_pad_add_probe (self->srcpad, GST_PAD_PROBE_TYPE_BUFFER,
      latency_probe, self, nullptr);
}

static void
gst_zoom_rtms_src_finalize (GObject * object)
{
  auto self = GST_ZOOM_RTMS_SRC (object);
  auto priv = self->priv;
  if (priv->client && priv->io) {
    auto io = priv->io;
    io->invoke_sync ([&]() {
          priv->client.reset ();
        });
  }
  for (auto b:priv->opus_out)
    gst_buffer_unref (b);
  release_pool (priv);
  delete priv;
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_zoom_rtms_src_class_init (GstZoomRtmsSrcClass * klass)
{
  auto object_class = G_OBJECT_CLASS (klass);
  auto element_class = GST_ELEMENT_CLASS (klass);

  GST_DEBUG_CATEGORY_INIT (gst_zoom_rtms_src_debug, "zoomrtmssrc", 0,
      "Zoom RTMS source");
  /* threads made as needed, kept up to 15 s idle (g_thread_pool's
   * default), never more than the failed streams not yet stopped */
  error_eos_pool = g_thread_pool_new (push_error_eos, nullptr, -1, FALSE,
      nullptr);
  zoomrtms_packet_meta_register ();
  unix_ts_caps = gst_caps_new_empty_simple ("timestamp/x-unix");
  GST_MINI_OBJECT_FLAG_SET (unix_ts_caps, GST_MINI_OBJECT_FLAG_MAY_BE_LEAKED);

  object_class->set_property = gst_zoom_rtms_src_set_property;
  object_class->get_property = gst_zoom_rtms_src_get_property;
  object_class->finalize = gst_zoom_rtms_src_finalize;

  const auto rw = (GParamFlags) (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
  const auto rw_ready = (GParamFlags) (rw | GST_PARAM_MUTABLE_READY);

  /**
   * GstZoomRtmsSrc:server-urls:
   *
   * The webhook's `server_urls`: a comma-separated list of signaling URLs
   * (the first wss://, else ws://, is used) or the JSON object form. Setting
   * it while the element runs is a failover: full re-handshake on the new
   * URL, same output stream (docs/protocol.md §4.9).
   */
  g_object_class_install_property (object_class, PROP_SERVER_URLS,
      g_param_spec_string ("server-urls", "Server URLs",
          "Signaling URL(s) from the rtms_started webhook's server_urls "
          "(ws:// or wss://). Setting it while PLAYING fails over to the "
          "new server, continuing the same output", nullptr,
          (GParamFlags) (rw | GST_PARAM_MUTABLE_PLAYING)));
  g_object_class_install_property (object_class, PROP_RTMS_STREAM_ID,
      g_param_spec_string ("rtms-stream-id", "RTMS stream id",
          "rtms_stream_id from the rtms_started webhook (required)", nullptr,
          rw_ready));
  g_object_class_install_property (object_class, PROP_ENGAGEMENT_ID,
      g_param_spec_string ("engagement-id", "Engagement id",
          "Zoom Contact Center engagement_id (selects the ZCC product; set "
          "exactly one of the four id properties)", nullptr, rw_ready));
  g_object_class_install_property (object_class, PROP_MEETING_UUID,
      g_param_spec_string ("meeting-uuid", "Meeting UUID",
          "Meeting meeting_uuid (selects the meeting product; set exactly one "
          "of the four id properties)", nullptr, rw_ready));
  /* Webinars and Zoom Video SDK sessions (issue 14): the webhook's
   * webinar_uuid / session_id, sent as that key in msg 1 and signed
   * (docs/protocol.md §2.2, §3.3) */
  g_object_class_install_property (object_class, PROP_WEBINAR_UUID,
      g_param_spec_string ("webinar-uuid", "Webinar UUID",
          "Webinar webinar_uuid (selects the webinar product; set exactly one "
          "of engagement-id, meeting-uuid, webinar-uuid and session-id)",
          nullptr, rw_ready));
  g_object_class_install_property (object_class, PROP_SESSION_ID,
      g_param_spec_string ("session-id", "Session id",
          "Zoom Video SDK session_id (selects the session product; set "
          "exactly one of engagement-id, meeting-uuid, webinar-uuid and "
          "session-id)", nullptr, rw_ready));
  g_object_class_install_property (object_class, PROP_CLIENT_ID,
      g_param_spec_string ("client-id", "Client id",
          "Zoom app client id used to sign the handshakes (default: "
          "environment variable ZOOM_APP_CLIENT_ID)", nullptr, rw_ready));
  g_object_class_install_property (object_class, PROP_CLIENT_SECRET,
      g_param_spec_string ("client-secret", "Client secret",
          "Zoom app client secret used to sign the handshakes; write-only, "
          "never logged (default: environment variable "
          "ZOOM_APP_CLIENT_SECRET)", nullptr,
          (GParamFlags) (G_PARAM_WRITABLE | G_PARAM_STATIC_STRINGS |
              GST_PARAM_MUTABLE_READY)));
  g_object_class_install_property (object_class, PROP_SIGNATURE,
      g_param_spec_string ("signature", "Signature",
          "Precomputed handshake signature (lowercase hex HMAC-SHA256 of "
          "client_id,id,rtms_stream_id); replaces client-secret when set",
          nullptr, rw_ready));
  g_object_class_install_property (object_class, PROP_CA_FILE,
      g_param_spec_string ("ca-file", "CA file",
          "Extra trusted CA certificate (PEM file) for wss:// servers; "
          "NULL = system trust store", nullptr, rw_ready));
  g_object_class_install_property (object_class, PROP_CODEC,
      g_param_spec_enum ("codec", "Codec",
          "Audio codec requested in the media handshake: l16 (raw PCM, "
          "output S16LE) or opus (48 kHz, output passed through)",
          GST_TYPE_ZOOM_RTMS_CODEC, DEFAULT_CODEC, rw_ready));
  g_object_class_install_property (object_class, PROP_RATE,
      g_param_spec_uint ("rate", "Sample rate",
          "Sample rate requested for L16, in Hz: 8000, 16000, 32000 or "
          "48000 (Opus is always 48000)", 8000, 48000, DEFAULT_RATE,
          rw_ready));
  g_object_class_install_property (object_class, PROP_SEND_RATE,
      g_param_spec_uint ("send-rate", "Send rate",
          "Audio packet duration requested (send_rate), in ms: a multiple of "
          "20 up to 1000. It is the output buffer duration and the minimum "
          "latency", 20, 1000, DEFAULT_SEND_RATE, rw_ready));
  g_object_class_install_property (object_class, PROP_DATA_OPT,
      g_param_spec_enum ("data-opt", "Data option",
          "Meeting audio: one mixed stream (user_id 0) or one stream per "
          "participant (ZCC always sends one channel per party)",
          GST_TYPE_ZOOM_RTMS_DATA_OPT, DEFAULT_DATA_OPT, rw_ready));
  g_object_class_install_property (object_class, PROP_LAYOUT,
      g_param_spec_enum ("layout", "Layout",
          "Output channel layout for L16: mix = one channel, the saturated "
          "sum of every RTMS channel aligned by timestamp; stereo = customer "
          "(caller, or the first channel seen) left, agent (callee) right; "
          "auto = stereo for Contact Center (engagement-id), mix otherwise",
          GST_TYPE_ZOOM_RTMS_LAYOUT, DEFAULT_LAYOUT, rw_ready));
  g_object_class_install_property (object_class, PROP_MAX_GAP_FILL,
      g_param_spec_uint ("max-gap-fill", "Max gap fill",
          "Longest pause of every channel filled with silence, in ms; a "
          "longer one jumps the timestamps (DISCONT, warning) instead. "
          "0 = fill every gap. Gaps of single channels are always filled",
          0, G_MAXUINT, DEFAULT_MAX_GAP_FILL, rw_ready));
  g_object_class_install_property (object_class, PROP_TRANSCRIPTS,
      g_param_spec_boolean ("transcripts", "Transcripts",
          "Subscribe to transcripts and post them as zoomrtms/transcript "
          "element messages", DEFAULT_TRANSCRIPTS, rw_ready));
  g_object_class_install_property (object_class, PROP_BUFFER_DATA,
      g_param_spec_boolean ("buffer-data", "Buffer data",
          "Ask Zoom to buffer up to 60 s of media from the stream start "
          "(msg 1 buffer_data); the backlog arrives in a burst",
          DEFAULT_BUFFER_DATA, rw_ready));
  g_object_class_install_property (object_class, PROP_POST_MESSAGES,
      g_param_spec_boolean ("post-messages", "Post messages",
          "Post zoomrtms/* element messages (transcripts, participants, "
          "stream and session state, stats) on the bus",
          DEFAULT_POST_MESSAGES, rw));
  g_object_class_install_property (object_class, PROP_STATS_INTERVAL,
      g_param_spec_uint ("stats-interval", "Stats interval",
          "Post a zoomrtms/stats element message every this many ms of "
          "output audio (0 = never)", 0, G_MAXUINT, DEFAULT_STATS_INTERVAL,
          rw_ready));
  /**
   * GstZoomRtmsSrc:role-timeout:
   *
   * Contact Center engagements with layout=stereo only: Zoom may send the
   * buffered backlog (buffer_data, up to 60 s, docs/protocol.md §3.3) before
   * the participant events (8 CONSUMER_ANSWERED, 10 USER_ANSWERED) that
   * say which channel_id is the customer ("caller") and which the agent
   * ("callee"). The output is held (no audio is lost) until every channel's
   * participant_mode is known, at most this many ms of wall-clock time after
   * the first audio packet; then the first channel seen is output left, a
   * warning is posted, and a mode learned later applies from then on. A
   * remote end of stream ends the wait. 0 = no wait (the first-seen rule
   * from the start). Meetings and layout=mix never wait.
   *
   * A channel that appears after the start without a participant_mode (a
   * failover to a server that gives the channels new channel_ids, whose
   * media may be read before its participant events; a party joining
   * mid-call) is held the same way: no output from its first packet on
   * until its role is known, at most this many ms after it was first seen
   * (then a warning, and its side by the same fallback: right when
   * another channel is the customer). The audio before it is output as
   * usual; nothing is dropped or counted late for the wait.
   *
   * For live pipelines (RTP, level): during such a wait no channel is
   * output, so the output can lag up to this many ms more than the latency
   * query reports, then catch up in a burst; a server that keeps sending
   * new channel_ids without participant events keeps it that far behind.
   * Recordings lose nothing. Set it lower (or 0) where latency matters
   * more than the sides of the first seconds after a failover.
   */
  g_object_class_install_property (object_class, PROP_ROLE_TIMEOUT,
      g_param_spec_uint ("role-timeout", "Role timeout",
          "Contact Center, layout=stereo: hold the output at most this many "
          "ms (wall clock, after the first audio packet) until the "
          "participant events say which channel is the customer (caller) "
          "and which the agent (callee); then the first channel seen is the "
          "customer, with a warning; the same for a channel that appears "
          "later (ms after its first packet). 0 = no hold. Meetings and "
          "layout=mix never hold", 0, 60000, DEFAULT_ROLE_TIMEOUT, rw_ready));
  /**
   * GstZoomRtmsSrc:align-hold:
   *
   * How long, in ms, the output waits for an RTMS channel that is behind
   * the others (zoomrtms-aligner.h, "the hold"). Packets of a channel
   * whose sender stalled and then sent in a burst, a backlog replayed on
   * one channel, the first packets of a party that joins later (announced
   * by the participant events) are placed at their RTMS timestamps as long
   * as they are less than this behind the most advanced channel; only
   * audio still later than that is dropped, counted (frames-late,
   * late-samples) and reported (zoomrtms/late-audio, a warning).
   *
   * It is the maximum latency the element reports in the latency query (the
   * minimum is one packet, send-rate): while every channel sends, output
   * leaves within a packet; while a channel is muted, stalled or absent,
   * the others are output this much late. The first output waits 200 ms
   * (or align-hold if smaller) so that a channel whose first packet has an
   * earlier timestamp but arrives later still sets the start.
   *
   * Memory per engagement is bounded by (align-hold + send-rate + 1000 ms)
   * × rate × RTMS channels × 3 bytes, e.g. 5000 ms at 16 kHz with two
   * channels: 768 KiB (ring sizes are powers of two); the Contact Center
   * role hold (#GstZoomRtmsSrc:role-timeout, at the start or for a channel
   * that appears later) adds up to 65 s of held audio.
   *
   * Default: 1000 ms (a 0.5 s stall of a sender is kept). Recording
   * pipelines use several seconds; live forwarding (RTP) keeps it low.
   */
  g_object_class_install_property (object_class, PROP_ALIGN_HOLD,
      g_param_spec_uint ("align-hold", "Align hold",
          "How long, in ms, the output waits for an RTMS channel that is "
          "behind (a stalled sender's burst, a replayed backlog, a late "
          "joiner): audio within it is placed at its timestamps, later audio "
          "is dropped and reported (zoomrtms/late-audio). It is the maximum "
          "latency; memory per engagement is at most (align-hold + send-rate "
          "+ 1000) ms x rate x channels x 3 bytes",
          MIN_ALIGN_HOLD, MAX_ALIGN_HOLD, DEFAULT_ALIGN_HOLD, rw_ready));
  /**
   * GstZoomRtmsSrc:block-ms:
   *
   * Length of the output buffers (codec=l16), in ms: 0 = one RTMS packet
   * (#GstZoomRtmsSrc:send-rate, 20 ms by default). The aligner cuts its
   * timeline into blocks of this length (rate × block-ms / 1000 samples,
   * the last one of a stream padded with silence), so a larger value
   * means fewer buffers, fewer wake-ups and less work per second downstream
   * — recording pipelines (pipelines/record-*.pipeline) use 100 —, and
   * adds its length to the latency: a block leaves once its last sample
   * arrived; the latency query's minimum is one block. Output buffers of a
   * whole block come from a buffer pool of up to 4 buffers (no allocation
   * of sample memory per buffer while downstream releases them; more in
   * flight are allocated as usual). Ignored for codec=opus (one packet per
   * buffer).
   *
   * Default: 0 (one packet, 20 ms).
   */
  g_object_class_install_property (object_class, PROP_BLOCK_MS,
      g_param_spec_uint ("block-ms", "Block length",
          "Length of the output buffers in ms (codec=l16): 0 = one RTMS "
          "packet (send-rate). Larger blocks cost less per second and add "
          "their length to the latency",
          0, MAX_BLOCK_MS, DEFAULT_BLOCK_MS, rw_ready));
  /**
   * GstZoomRtmsSrc:eos-action:
   *
   * What an application EOS (gst_element_send_event() with an EOS event,
   * `gst-launch-1.0 -e`) means (design.md "Lifetimes: detach is not stop").
   * "stop" (default): the audio received is output, EOS, and when the
   * element stops it sends STREAM_CLOSE_REQ (msg 21): Zoom ends the stream
   * for good (stop reason 20, docs/protocol.md §2.7, §3.8). "detach": as
   * the zoomrtms/detach event: the sockets are closed without msg 21, Zoom
   * holds the stream for its grace window (§4.9) so that another pipeline
   * can continue it, the audio received is output, zoomrtms/detached is
   * posted, then EOS. With "detach" the element never sends msg 21, also
   * when it is set to NULL without an EOS.
   */
  g_object_class_install_property (object_class, PROP_EOS_ACTION,
      g_param_spec_enum ("eos-action", "EOS action",
          "What an application EOS means: stop (drain, then STREAM_CLOSE_REQ: "
          "Zoom ends the stream) or detach (close the sockets without "
          "STREAM_CLOSE_REQ so Zoom keeps the stream for its grace window, "
          "then drain; never sends STREAM_CLOSE_REQ)",
          GST_TYPE_ZOOM_RTMS_EOS_ACTION, DEFAULT_EOS_ACTION,
          (GParamFlags) (rw | GST_PARAM_MUTABLE_PLAYING)));
  /**
   * GstZoomRtmsSrc:timeline-origin:
   *
   * Continuing a recording: the RTMS timestamp (epoch ms) of timeline
   * position 0, from the zoomrtms/timeline message of the pipeline that
   * recorded the first part of the stream. -1 (default): the first packet's
   * timestamp (or an earlier one that arrives within the start-up wait).
   * When set, it is fixed (never moves back). Reading it while running
   * gives the origin in use once known (-1 before). L16 only.
   */
  g_object_class_install_property (object_class, PROP_TIMELINE_ORIGIN,
      g_param_spec_int64 ("timeline-origin", "Timeline origin",
          "RTMS timestamp (epoch ms) of timeline position 0; -1 = the first "
          "packet's. Set it to continue a recording; reading it while "
          "running gives the origin in use", -1,
          zoomrtms::kMaxTimestampMs, DEFAULT_TIMELINE_ORIGIN, rw_ready));
  /**
   * GstZoomRtmsSrc:timeline-offset:
   *
   * Continuing a recording (needs #GstZoomRtmsSrc:timeline-origin): the
   * timeline position, in samples at the output rate, of the first sample
   * this pipeline outputs — the samples the previous parts hold. Output
   * starts there: exact silence (GAP) from it to the first packet's
   * position, then the audio by its timestamps. Packets, or the parts of
   * them, before it were already recorded and are dropped as duplicates
   * (frames-duplicated), never as late. PTS still start at running time 0
   * of this pipeline; OFFSET / OFFSET_END are timeline positions. L16 only.
   */
  g_object_class_install_property (object_class, PROP_TIMELINE_OFFSET,
      g_param_spec_uint64 ("timeline-offset", "Timeline offset",
          "Continuation: the timeline position (samples at the output rate) "
          "of this pipeline's first output sample; earlier audio is dropped "
          "as duplicate, the gap up to the first packet is exact silence. "
          "Needs timeline-origin", 0, G_MAXINT64, DEFAULT_TIMELINE_OFFSET,
          rw_ready));
  /**
   * GstZoomRtmsSrc:packet-log:
   *
   * Path of the write-ahead packet log (zoomrtms-packet-log.h: a versioned
   * little binary format: a 32-byte header with rate, channels and codec,
   * then length-prefixed, hashed records of channel key, participant mode,
   * RTMS timestamp and PCM). Every packet accepted from the wire (and every
   * packet replayed from #GstZoomRtmsSrc:replay-log still to be output) is
   * appended and written to the file at least every
   * #GstZoomRtmsSrc:packet-log-flush-ms (to within the I/O thread's 20 ms
   * tick and $ZOOMRTMS_CONTEXT_WAIT), so a SIGKILL of the process loses
   * at most that much of the delivered audio, whatever align-hold and the
   * sinks buffer: the next pipeline replays it. No fsync: a power loss or
   * kernel crash is not covered. The file is created anew at start (mode
   * 0600). NULL (default): no log. L16 only (Opus is not logged).
   */
  g_object_class_install_property (object_class, PROP_PACKET_LOG,
      g_param_spec_string ("packet-log", "Packet log",
          "Write-ahead log of every packet received (file path; NULL = off), "
          "written at least every packet-log-flush-ms so that a crash loses "
          "at most that much; replayed by the next pipeline with "
          "replay-log. L16 only", nullptr, rw_ready));
  g_object_class_install_property (object_class, PROP_PACKET_LOG_FLUSH_MS,
      g_param_spec_uint ("packet-log-flush-ms", "Packet log flush interval",
          "Longest time, in ms, a received packet stays in memory before it "
          "is written to packet-log (write(2), no fsync)", 1, 10000,
          DEFAULT_PACKET_LOG_FLUSH_MS, rw_ready));
  /**
   * GstZoomRtmsSrc:replay-log:
   *
   * A packet log of a previous run of the same stream (see
   * #GstZoomRtmsSrc:packet-log). At start, before any network data, every
   * packet in it is fed to the aligner as if received, so the audio that
   * run received but never wrote to its file (held by align-hold or by the
   * sinks when it was killed) is output; with #GstZoomRtmsSrc:timeline-origin
   * and #GstZoomRtmsSrc:timeline-offset the packets before the offset are
   * dropped as duplicates. Streamed (memory: one record plus the
   * aligner's). A torn or garbled end is ignored with a warning; a missing
   * or foreign file gives a warning and the recording goes on. It may be
   * the same path as packet-log (that file is then created anew; the old
   * one is still read). L16, same rate only.
   */
  g_object_class_install_property (object_class, PROP_REPLAY_LOG,
      g_param_spec_string ("replay-log", "Replay log",
          "Packet log of a previous run of this stream (file path; NULL = "
          "none), replayed at start before network data; packets before "
          "timeline-offset are dropped as duplicates", nullptr, rw_ready));
  /**
   * GstZoomRtmsSrc:media-grace:
   *
   * Zoom's grace window for a lost media connection (docs/protocol.md §3.9,
   * §4.9 row 3), ms: the element retries until it has run out
   * (rtms::reconnect_schedule(): 3 s doubling, then at most 5 s apart in
   * the last 15 s, the last attempt 1 s before the end), then fails with
   * stop reason 19 AWAIT_RECONNECTION_TIMEOUT.
   */
  g_object_class_install_property (object_class, PROP_MEDIA_GRACE,
      g_param_spec_uint ("media-grace", "Media grace",
          "Zoom's grace window for a lost media connection, in ms: "
          "reconnection is tried until it runs out (last attempt 1 s before)",
          1000, 3600000, DEFAULT_MEDIA_GRACE, rw_ready));
  g_object_class_install_property (object_class, PROP_SIGNALING_GRACE,
      g_param_spec_uint ("signaling-grace", "Signaling grace",
          "Zoom's grace window for a lost signaling connection, in ms: "
          "reconnection (full handshake) is tried until it runs out (last "
          "attempt 1 s before)", 1000, 3600000, DEFAULT_SIGNALING_GRACE,
          rw_ready));
  g_object_class_install_property (object_class, PROP_STATS,
      g_param_spec_boxed ("stats", "Statistics",
          "zoomrtms/stats structure: frames-received, frames-duplicated, "
          "frames-late, frames-out-of-range, frames-malformed, "
          "frames-dropped (guint64), late-samples, silence-samples and "
          "samples-out (guint64, samples), channels "
          "(gint), resyncs, channel-stats (array of per-channel structures)",
          GST_TYPE_STRUCTURE,
          (GParamFlags) (G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));

  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class, "Zoom RTMS source",
      "Source/Audio/Network",
      "Receives Zoom Realtime Media Streams (Contact Center engagements, "
      "meetings) as live audio aligned by RTMS timestamps",
      "zoomrtms project <https://github.com/zoomrtms/zoomrtms>");

  element_class->send_event = GST_DEBUG_FUNCPTR (gst_zoom_rtms_src_send_event);
  element_class->change_state =
      GST_DEBUG_FUNCPTR (gst_zoom_rtms_src_change_state);

  gst_type_mark_as_plugin_api (GST_TYPE_ZOOM_RTMS_CODEC,
      (GstPluginAPIFlags) 0);
  gst_type_mark_as_plugin_api (GST_TYPE_ZOOM_RTMS_DATA_OPT,
      (GstPluginAPIFlags) 0);
  gst_type_mark_as_plugin_api (GST_TYPE_ZOOM_RTMS_LAYOUT,
      (GstPluginAPIFlags) 0);
  gst_type_mark_as_plugin_api (GST_TYPE_ZOOM_RTMS_EOS_ACTION,
      (GstPluginAPIFlags) 0);
}
