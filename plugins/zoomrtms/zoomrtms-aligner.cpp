/* zoomrtms — the Aligner; see zoomrtms-aligner.h for the model. */
#include "zoomrtms-aligner.h"

#include <algorithm>
#include <climits>

namespace zoomrtms {

struct Aligner::Channel {
  std::string key;
  std::string mode;
  size_t order = 0;
  /* Pending samples, anchored at Aligner::next_ (the next block's start). */
  std::deque<int16_t> buf;
  std::deque<uint8_t> filled;
  bool have_data = false;
  int64_t last_ts = INT64_MIN;   /* highest timestamp accepted, ms */
  bool have_first = false;
  int64_t first_pos = 0;         /* absolute sample of the first accepted one */
  int64_t progress = INT64_MIN;  /* absolute sample after the furthest data */
  /* timestamps accepted (bounded), ascending: packets arrive in order, so
   * an insert is a push_back and the oldest is popped from the front — no
   * allocation per packet, unlike a node-based set */
  std::deque<int64_t> history;

  bool
  seen (int64_t ts) const
  {
    return std::binary_search (history.begin (), history.end (), ts);
  }

  void
  remember (int64_t ts)
  {
    if (history.empty () || ts > history.back ())
      history.push_back (ts);
    else
      history.insert (std::lower_bound (history.begin (), history.end (), ts),
          ts);
  }
  uint64_t emitted_filled = 0;   /* received samples emitted since first_pos */
  uint64_t silence_base = 0;     /* silence folded at resyncs */
  ChannelStats stats;

  /* Makes buf/filled at least @n long. */
  void
  reserve (size_t n)
  {
    if (buf.size () < n) {
      buf.resize (n, 0);
      filled.resize (n, 0);
    }
  }
};

const char *
push_result_name (PushResult r)
{
  switch (r) {
    case PushResult::ACCEPTED:
      return "accepted";
    case PushResult::RESYNC:
      return "resync";
    case PushResult::DUPLICATE:
      return "duplicate";
    case PushResult::LATE:
      return "late";
    case PushResult::INVALID:
      return "invalid";
  }
  return "unknown";
}

Aligner::Aligner (const AlignerConfig &config) : config_ (config)
{
  if (config_.rate <= 0)
    config_.rate = 16000;
  if (config_.packet_ms <= 0)
    config_.packet_ms = 20;
  if (config_.duplicate_history == 0)
    config_.duplicate_history = 1;
  block_ = (int) ((int64_t) config_.rate * config_.packet_ms / 1000);
  if (block_ <= 0)
    block_ = 1;
  skew_ = (int64_t) block_ * config_.skew_packets;
  max_gap_ = (int64_t) config_.rate * config_.max_gap_fill_ms / 1000;
}

Aligner::~Aligner () = default;

Aligner::Channel &
Aligner::channel (const std::string &key)
{
  auto it = by_key_.find (key);
  if (it != by_key_.end ())
    return *it->second;
  auto c = std::make_unique<Channel> ();
  c->key = key;
  c->order = channels_.size ();
  c->stats.key = key;
  auto pm = pending_modes_.find (key);
  if (pm != pending_modes_.end ()) {
    c->mode = pm->second;
    pending_modes_.erase (pm);
  }
  Channel *raw = c.get ();
  channels_.push_back (std::move (c));
  by_key_[key] = raw;
  return *raw;
}

void
Aligner::set_participant_mode (const std::string &key, const std::string &mode)
{
  auto it = by_key_.find (key);
  if (it != by_key_.end ())
    it->second->mode = mode;
  else
    pending_modes_[key] = mode;
  emit_ready ();                /* may end the start-up hold */
}

bool
Aligner::holding () const
{
  if (!config_.hold_for_modes || config_.layout != Layout::STEREO ||
      hold_released_ || emitted_blocks_ > 0 || channels_.empty ())
    return false;
  for (auto &c : channels_)
    if (c->mode.empty ())
      return true;
  return false;
}

void
Aligner::release_hold ()
{
  if (hold_released_)
    return;
  hold_released_ = true;
  emit_ready ();
}

void
Aligner::emit_ready ()
{
  bool first = emitted_blocks_ == 0;
  uint64_t before = emitted_blocks_;
  while (block_ready ())
    emit_block ();
  if (first && emitted_blocks_ > before)
    startup_blocks_ = emitted_blocks_ - before;
}

void
Aligner::set_first_packet_timestamp (int64_t timestamp_ms)
{
  int64_t pos = timestamp_ms * config_.rate / 1000;
  if (!have_base_) {
    have_base_ = true;
    base_ = next_ = pos;
    return;
  }
  if (emitted_blocks_ == 0 && pos < base_) {
    size_t grow = (size_t) (next_ - pos);
    for (auto &c : channels_) {
      c->buf.insert (c->buf.begin (), grow, 0);
      c->filled.insert (c->filled.begin (), grow, 0);
    }
    base_ = next_ = pos;
  }
}

int64_t
Aligner::max_progress () const
{
  int64_t m = INT64_MIN;
  for (auto &c : channels_)
    if (c->have_data)
      m = std::max (m, c->progress);
  return m;
}

int64_t
Aligner::emitted_end () const
{
  return have_base_ ? next_ - base_ : 0;
}

int64_t
Aligner::t0_ms () const
{
  return have_base_ ? base_ * 1000 / config_.rate : INT64_MIN;
}

bool
Aligner::block_ready () const
{
  if (channels_.empty () || holding ())
    return false;
  int64_t end = next_ + block_;
  int64_t maxp = max_progress ();
  if (maxp != INT64_MIN && maxp - end >= skew_)
    return true;
  if (emitted_blocks_ == 0)
    return false;               /* startup: wait for the skew window */
  for (auto &c : channels_) {
    if (c->buf.size () < (size_t) block_)
      return false;
    for (int i = 0; i < block_; i++)
      if (!c->filled[i])
        return false;
  }
  return true;
}

int
Aligner::side_of (const Channel &c) const
{
  if (c.mode == "caller")
    return 0;
  if (!c.mode.empty ())
    return 1;
  /* unknown mode: the first channel seen is the customer, unless a channel
   * already says it is the caller */
  for (auto &o : channels_) {
    if (o->mode == "caller")
      return 1;
  }
  for (auto &o : channels_) {
    if (o->mode.empty ())
      return o.get () == &c ? 0 : 1;
  }
  return 1;
}

static inline int16_t
saturate (int32_t v)
{
  return (int16_t) std::clamp (v, (int32_t) INT16_MIN, (int32_t) INT16_MAX);
}

void
Aligner::emit_block ()
{
  const int ch = channels ();
  std::vector<int32_t> acc ((size_t) block_ * ch, 0);
  bool any = false;
  for (auto &c : channels_) {
    int side = ch == 2 ? side_of (*c) : 0;
    size_t avail = std::min (c->buf.size (), (size_t) block_);
    uint64_t nfilled = 0;
    for (size_t i = 0; i < avail; i++) {
      if (c->filled[i]) {
        nfilled++;
        acc[i * ch + side] += c->buf[i];
      }
    }
    if (nfilled)
      any = true;
    if (c->have_first)
      c->emitted_filled += nfilled;
    c->buf.erase (c->buf.begin (), c->buf.begin () + avail);
    c->filled.erase (c->filled.begin (), c->filled.begin () + avail);
  }
  AlignedBlock b;
  b.position = next_ - base_;
  b.channels = ch;
  b.samples.resize (acc.size ());
  for (size_t i = 0; i < acc.size (); i++)
    b.samples[i] = saturate (acc[i]);
  b.gap = !any;
  b.discont = discont_;
  discont_ = false;
  ready_.push_back (std::move (b));
  next_ += block_;
  emitted_blocks_++;
}

void
Aligner::resync (int64_t pos)
{
  int64_t maxp = max_progress ();
  while (maxp != INT64_MIN && next_ < maxp)
    emit_block ();
  /* fold each channel's gap accounting before the jump */
  for (auto &c : channels_) {
    c->silence_base = c->stats.silence_samples =
        c->silence_base +
        (c->have_first
                ? (uint64_t) std::max<int64_t> (
                      0, std::min (c->progress, next_) - c->first_pos) -
                    c->emitted_filled
                : 0);
    c->have_first = false;
    c->emitted_filled = 0;
    c->buf.clear ();
    c->filled.clear ();
  }
  int64_t rel = pos - base_;
  int64_t blk = rel >= 0 ? rel / block_ : -((-rel + block_ - 1) / block_);
  next_ = std::max (next_, base_ + blk * block_);
  discont_ = true;
  resyncs_++;
}

PushResult
Aligner::push (const std::string &key, int64_t timestamp_ms,
    const uint8_t *pcm, size_t bytes)
{
  if (bytes == 0 || bytes % 2 != 0 || !pcm)
    return PushResult::INVALID;
  const int64_t n = (int64_t) (bytes / 2);
  Channel &c = channel (key);

  /* duplicates and replays (rtms-protocol.md §4.9) */
  if (c.seen (timestamp_ms) ||
      (c.have_data && timestamp_ms <= c.last_ts &&
          c.history.size () >= config_.duplicate_history &&
          timestamp_ms < c.history.front ())) {
    c.stats.duplicates++;
    return PushResult::DUPLICATE;
  }

  int64_t pos = timestamp_ms * config_.rate / 1000;
  if (!have_base_) {
    have_base_ = true;
    base_ = next_ = pos;
  } else if (emitted_blocks_ == 0 && pos < base_) {
    set_first_packet_timestamp (timestamp_ms);
  }

  PushResult result = PushResult::ACCEPTED;
  if (max_gap_ > 0 && emitted_blocks_ > 0) {
    int64_t ref = std::max (max_progress (), next_);
    if (pos - ref > max_gap_) {
      resync (pos);
      result = PushResult::RESYNC;
    }
  }

  int64_t end = pos + n;
  if (end <= next_) {
    c.stats.late++;
    return PushResult::LATE;
  }
  int64_t start = std::max (pos, next_);
  c.reserve ((size_t) (end - next_));
  for (int64_t p = start; p < end; p++) {
    size_t i = (size_t) (p - next_);
    if (c.filled[i])
      continue;                 /* the first writer keeps a sample */
    size_t s = (size_t) (p - pos) * 2;
    c.buf[i] = (int16_t) (uint16_t) (pcm[s] | (pcm[s + 1] << 8));
    c.filled[i] = 1;
  }
  c.stats.frames++;
  c.have_data = true;
  c.last_ts = std::max (c.last_ts, timestamp_ms);
  c.remember (timestamp_ms);
  while (c.history.size () > config_.duplicate_history)
    c.history.pop_front ();
  c.progress = std::max (c.progress, end);
  if (!c.have_first) {
    c.have_first = true;
    c.first_pos = start;
  } else if (start < c.first_pos) {
    c.first_pos = start;
  }

  emit_ready ();
  return result;
}

void
Aligner::drain ()
{
  hold_released_ = true;
  bool first = emitted_blocks_ == 0;
  uint64_t before = emitted_blocks_;
  int64_t maxp = max_progress ();
  while (maxp != INT64_MIN && next_ < maxp)
    emit_block ();
  if (first && emitted_blocks_ > before)
    startup_blocks_ = emitted_blocks_ - before;
}

bool
Aligner::pop (AlignedBlock *out)
{
  if (ready_.empty ())
    return false;
  *out = std::move (ready_.front ());
  ready_.pop_front ();
  return true;
}

std::vector<ChannelStats> Aligner::stats () const
{
  std::vector<ChannelStats> v;
  for (auto &c : channels_) {
    ChannelStats s = c->stats;
    s.participant_mode = c->mode;
    s.silence_samples = c->silence_base;
    if (c->have_first) {
      int64_t span = std::min (c->progress, next_) - c->first_pos;
      if (span > 0 && (uint64_t) span > c->emitted_filled)
        s.silence_samples += (uint64_t) span - c->emitted_filled;
    }
    v.push_back (s);
  }
  return v;
}

} // namespace zoomrtms
