/* zoomrtms — the write-ahead packet log; see zoomrtms-packet-log.h. */
#include "zoomrtms-packet-log.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

#include <xxhash.h>

namespace zoomrtms {

namespace {

const char kMagic[8] = { 'Z', 'R', 'T', 'M', 'S', 'P', 'K', 'L' };
const char kRecMagic[4] = { 'Z', 'R', 'E', 'C' };
constexpr size_t kRecHead = 24;
constexpr uint8_t kTypeAudio = 1;

/* size of the record checksum that ends each record, per version */
size_t
trailer_size (uint16_t version)
{
  return version == 1 ? 4 : 8;
}

void
le16 (uint8_t *p, uint16_t v)
{
  p[0] = (uint8_t) v;
  p[1] = (uint8_t) (v >> 8);
}

void
le32 (uint8_t *p, uint32_t v)
{
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t) (v >> (8 * i));
}

void
le64 (uint8_t *p, uint64_t v)
{
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t) (v >> (8 * i));
}

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

uint64_t
packet_log_checksum (const uint8_t *data, size_t len)
{
  return XXH3_64bits (data, len);
}

uint32_t
packet_log_hash_v1 (const uint8_t *data, size_t len, uint32_t h)
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
  /* one resize, the fixed fields written in place, one checksum call */
  size_t start = buf_.size ();
  size_t body = kRecHead + k + m + bytes;
  buf_.resize (start + body + 8);
  uint8_t *p = (uint8_t *) &buf_[start];
  memcpy (p, kRecMagic, sizeof kRecMagic);
  p[4] = kTypeAudio;
  p[5] = 0;
  le16 (p + 6, (uint16_t) k);
  le16 (p + 8, (uint16_t) m);
  le16 (p + 10, 0);
  le32 (p + 12, (uint32_t) bytes);
  le64 (p + 16, (uint64_t) timestamp_ms);
  memcpy (p + kRecHead, key.data (), k);
  memcpy (p + kRecHead + k, mode.data (), m);
  if (bytes)
    memcpy (p + kRecHead + k + m, pcm, bytes);
  le64 (p + body, packet_log_checksum (p, body));
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
  if ((version != 1 && version != 2) || hsize < kPacketLogHeaderSize) {
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
  version_ = version;
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
    const size_t body = kRecHead + k + m + p, trailer = trailer_size (version_);
    rec_.resize (body + trailer);
    memcpy (rec_.data (), h, sizeof h);
    if (fread (rec_.data () + kRecHead, 1, rec_.size () - kRecHead, f_) !=
        rec_.size () - kRecHead)
      return stop (Status::TORN, "incomplete record");
    const uint8_t *d = rec_.data ();
    bool good = version_ == 1 ?
        packet_log_hash_v1 (d, body) == get32 (d + body) :
        packet_log_checksum (d, body) == get64 (d + body);
    if (!good)
      return stop (Status::CORRUPT, "record checksum mismatch");
    offset_ += rec_.size ();
    if (type != kTypeAudio)
      continue;                 /* a later version's record: skipped */
    r->key.assign ((const char *) d + kRecHead, k);
    r->mode.assign ((const char *) d + kRecHead + k, m);
    r->timestamp_ms = (int64_t) get64 (h + 16);
    r->pcm.assign (d + kRecHead + k + m, d + body);
    return Status::OK;
  }
}

} // namespace zoomrtms
