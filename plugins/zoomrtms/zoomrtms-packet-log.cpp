/* zoomrtms — the write-ahead packet log; see zoomrtms-packet-log.h. */
#include "zoomrtms-packet-log.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace zoomrtms {

namespace {

const char kMagic[8] = { 'Z', 'R', 'T', 'M', 'S', 'P', 'K', 'L' };
const char kRecMagic[4] = { 'Z', 'R', 'E', 'C' };
constexpr size_t kRecHead = 24;
constexpr uint8_t kTypeAudio = 1;

void
put16 (std::string &b, uint16_t v)
{
  b.push_back ((char) (v & 0xff));
  b.push_back ((char) (v >> 8));
}

void
put32 (std::string &b, uint32_t v)
{
  for (int i = 0; i < 4; i++)
    b.push_back ((char) ((v >> (8 * i)) & 0xff));
}

void
put64 (std::string &b, uint64_t v)
{
  for (int i = 0; i < 8; i++)
    b.push_back ((char) ((v >> (8 * i)) & 0xff));
}

uint16_t
get16 (const uint8_t *p)
{
  return (uint16_t) (p[0] | (p[1] << 8));
}

uint32_t
get32 (const uint8_t *p)
{
  return (uint32_t) p[0] | ((uint32_t) p[1] << 8) | ((uint32_t) p[2] << 16) |
      ((uint32_t) p[3] << 24);
}

uint64_t
get64 (const uint8_t *p)
{
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}

bool
write_all (int fd, const char *data, size_t len, std::string *error)
{
  while (len > 0) {
    ssize_t n = ::write (fd, data, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (error)
        *error = strerror (errno);
      return false;
    }
    data += n;
    len -= (size_t) n;
  }
  return true;
}

} // namespace

uint32_t
packet_log_hash (const uint8_t *data, size_t len, uint32_t h)
{
  for (size_t i = 0; i < len; i++) {
    h ^= data[i];
    h *= 16777619u;
  }
  return h;
}

/* ---- writer ---- */

PacketLogWriter::~PacketLogWriter ()
{
  close ();
}

bool
PacketLogWriter::open (const std::string &path, const PacketLogHeader &h,
    std::string *error)
{
  close ();
  /* a new file (inode): a reader of the old one at the same path (the
   * replay of a previous run) keeps reading it */
  ::unlink (path.c_str ());
  int fd = ::open (path.c_str (), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
      0600);
  if (fd < 0) {
    if (error)
      *error = strerror (errno);
    return false;
  }
  std::string head (kMagic, sizeof kMagic);
  put16 (head, kPacketLogVersion);
  put16 (head, (uint16_t) kPacketLogHeaderSize);
  put32 (head, h.rate);
  put16 (head, h.channels);
  put16 (head, h.codec);
  put32 (head, h.send_rate);
  put64 (head, 0);
  if (!write_all (fd, head.data (), head.size (), error)) {
    ::close (fd);
    return false;
  }
  fd_ = fd;
  records_ = 0;
  buf_.clear ();
  return true;
}

void
PacketLogWriter::append (const std::string &key, const std::string &mode,
    int64_t timestamp_ms, const uint8_t *pcm, size_t bytes)
{
  if (fd_ < 0)
    return;
  size_t k = std::min (key.size (), kPacketLogMaxKey);
  size_t m = std::min (mode.size (), kPacketLogMaxMode);
  size_t start = buf_.size ();
  buf_.append (kRecMagic, sizeof kRecMagic);
  buf_.push_back ((char) kTypeAudio);
  buf_.push_back (0);
  put16 (buf_, (uint16_t) k);
  put16 (buf_, (uint16_t) m);
  put16 (buf_, 0);
  put32 (buf_, (uint32_t) bytes);
  put64 (buf_, (uint64_t) timestamp_ms);
  buf_.append (key.data (), k);
  buf_.append (mode.data (), m);
  buf_.append ((const char *) pcm, bytes);
  uint32_t hash = packet_log_hash ((const uint8_t *) buf_.data () + start,
      buf_.size () - start);
  put32 (buf_, hash);
  records_++;
}

bool
PacketLogWriter::flush (std::string *error)
{
  if (fd_ < 0 || buf_.empty ())
    return true;
  bool ok = write_all (fd_, buf_.data (), buf_.size (), error);
  buf_.clear ();
  if (!ok) {
    ::close (fd_);
    fd_ = -1;
  }
  if (buf_.capacity () > (1u << 20))
    std::string ().swap (buf_);
  return ok;
}

void
PacketLogWriter::close ()
{
  if (fd_ < 0)
    return;
  flush (nullptr);
  if (fd_ >= 0)
    ::close (fd_);
  fd_ = -1;
}

/* ---- reader ---- */

PacketLogReader::~PacketLogReader ()
{
  if (f_)
    fclose (f_);
}

bool
PacketLogReader::open (const std::string &path, std::string *error)
{
  f_ = fopen (path.c_str (), "rbe");
  if (!f_) {
    *error = strerror (errno);
    return false;
  }
  uint8_t h[kPacketLogHeaderSize];
  if (fread (h, 1, sizeof h, f_) != sizeof h) {
    *error = "shorter than the 32-byte header";
    return false;
  }
  if (memcmp (h, kMagic, sizeof kMagic) != 0) {
    *error = "not a zoomrtms packet log (bad magic)";
    return false;
  }
  uint16_t version = get16 (h + 8), hsize = get16 (h + 10);
  if (version != kPacketLogVersion || hsize < kPacketLogHeaderSize) {
    *error = "unsupported packet log version " + std::to_string (version);
    return false;
  }
  header_.rate = get32 (h + 12);
  header_.channels = get16 (h + 16);
  header_.codec = get16 (h + 18);
  header_.send_rate = get32 (h + 20);
  if (header_.rate == 0 || header_.rate > 384000 || header_.channels != 1) {
    *error = "invalid packet log header (rate " +
        std::to_string (header_.rate) + ", channels " +
        std::to_string (header_.channels) + ")";
    return false;
  }
  if (hsize > kPacketLogHeaderSize &&
      fseek (f_, (long) hsize, SEEK_SET) != 0) {
    *error = "truncated header";
    return false;
  }
  offset_ = hsize;
  return true;
}

PacketLogReader::Status
PacketLogReader::next (PacketLogRecord *r, std::string *error)
{
  if (stopped_ != Status::OK) {
    *error = stop_error_;
    return stopped_;
  }
  auto stop = [&] (Status s, const std::string &what) {
    stopped_ = s;
    stop_error_ = what + " at byte " + std::to_string (offset_);
    *error = stop_error_;
    return s;
  };
  for (;;) {
    uint8_t h[kRecHead];
    size_t got = fread (h, 1, sizeof h, f_);
    if (got == 0 && feof (f_)) {
      stopped_ = Status::END;
      return Status::END;
    }
    if (got != sizeof h)
      return stop (Status::TORN, "incomplete record header");
    if (memcmp (h, kRecMagic, sizeof kRecMagic) != 0)
      return stop (Status::CORRUPT, "bad record magic");
    uint8_t type = h[4];
    size_t k = get16 (h + 6), m = get16 (h + 8);
    size_t p = get32 (h + 12);
    const size_t max_pcm = 4u * header_.rate;
    if (k > kPacketLogMaxKey || m > kPacketLogMaxMode || p > max_pcm)
      return stop (Status::CORRUPT, "record lengths over the limits");
    std::vector<uint8_t> body (k + m + p + 4);
    if (fread (body.data (), 1, body.size (), f_) != body.size ())
      return stop (Status::TORN, "incomplete record");
    uint32_t hash = packet_log_hash (h, sizeof h);
    hash = packet_log_hash (body.data (), k + m + p, hash);
    if (hash != get32 (body.data () + k + m + p))
      return stop (Status::CORRUPT, "record hash mismatch");
    offset_ += sizeof h + body.size ();
    if (type != kTypeAudio)
      continue;                 /* a later version's record: skipped */
    r->key.assign ((const char *) body.data (), k);
    r->mode.assign ((const char *) body.data () + k, m);
    r->timestamp_ms = (int64_t) get64 (h + 16);
    r->pcm.assign (body.begin () + (long) (k + m),
        body.begin () + (long) (k + m + p));
    return Status::OK;
  }
}

} // namespace zoomrtms
