/* zoomrtms — the write-ahead packet log of zoomrtmssrc (its packet-log and
 * replay-log properties; design.md "Lifetimes: detach is not stop", issue 9
 * "SIGKILL loses at most 1 s").
 *
 * Why: the element holds up to align-hold (seconds) of audio for alignment
 * and the sinks buffer more (filesink, muxers); a SIGKILL loses all of it.
 * So every packet accepted from the wire is first appended to a log, flushed
 * to the kernel (write(2)) at least every flush interval; the next pipeline
 * of the same engagement (the host's continuation after a crash) replays the
 * log from the timeline position its file ends at. SIGKILL keeps what was
 * written (the page cache survives the process); no fsync is done, so a
 * power loss or kernel crash may lose the last seconds the kernel had not
 * written back — that is not covered.
 *
 * Pure C++17 + POSIX, no GStreamer. Not thread-safe by itself: the element
 * serialises calls with its own lock.
 *
 * ## File format, version 2 (all integers little-endian)
 *
 * Header, 32 bytes:
 *
 * | offset | size | field |
 * |---|---|---|
 * | 0 | 8 | magic "ZRTMSPKL" |
 * | 8 | 2 | version = 2 (a reader also reads 1) |
 * | 10 | 2 | header size in bytes = 32 (a reader skips to it) |
 * | 12 | 4 | sample rate, Hz (8000, 16000, 32000, 48000) |
 * | 16 | 2 | channels per packet = 1 (RTMS sends mono per channel) |
 * | 18 | 2 | codec, RTMS numbering (docs/protocol.md §6.2): 1 = L16 (S16LE) |
 * | 20 | 4 | send_rate, ms (packet duration requested) |
 * | 24 | 8 | reserved, 0 |
 *
 * Then records, back to back:
 *
 * | offset | size | field |
 * |---|---|---|
 * | 0 | 4 | record magic "ZREC" |
 * | 4 | 1 | type: 1 = audio packet (others: skipped by length) |
 * | 5 | 1 | reserved, 0 |
 * | 6 | 2 | K = channel key length, bytes (≤ 1024) |
 * | 8 | 2 | M = participant mode length, bytes (≤ 64; 0 = unknown) |
 * | 10 | 2 | reserved, 0 |
 * | 12 | 4 | P = payload length, bytes (≤ 4 × rate: 1 s of stereo S16) |
 * | 16 | 8 | RTMS timestamp, epoch ms (int64) |
 * | 24 | K | channel key (ZCC channel_id / meeting user_id), UTF-8 |
 * | 24+K | M | participant mode ("caller", "callee", …), UTF-8 |
 * | 24+K+M | P | payload: S16LE mono PCM for L16 |
 * | 24+K+M+P | 8 | record checksum: XXH3-64 (xxHash 0.8, seed 0) of bytes 0 .. 24+K+M+P of the record |
 *
 * Version 1 (written until issue 12) is the same except for the last field:
 * 4 bytes, the FNV-1a 32-bit hash of the same bytes. FNV-1a goes one byte
 * at a time and cost ~0.9 µs per 700-byte record, 3.8 % of the host's CPU
 * at 200 engagements; XXH3 (libxxhash, a Debian package) goes a vector at a
 * time, ~22× cheaper for a 706-byte record (docs/benchmarks.md "Memory
 * per engagement").
 * A reader takes the version from the header: a log written by an older
 * build (a crash across an upgrade) is still replayed.
 *
 * A reader stops at the first record that is incomplete (a torn write: the
 * process died in the middle of a write(2)) or invalid (bad magic, lengths
 * over the limits, checksum mismatch): everything before it is good, the
 * rest is ignored (PacketLogReader::Status TORN / CORRUPT, with the byte
 * offset).
 *
 * Only L16 is logged: Opus passthrough packets are not (the element does not
 * open a log for codec=opus).
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace zoomrtms {

/* the version written; the reader reads 1 and 2 */
constexpr uint16_t kPacketLogVersion = 2;
constexpr size_t kPacketLogHeaderSize = 32;
constexpr size_t kPacketLogMaxKey = 1024;
constexpr size_t kPacketLogMaxMode = 64;

struct PacketLogHeader {
  uint32_t rate = 16000;       /* Hz */
  uint16_t channels = 1;
  uint16_t codec = 1;          /* RTMS codec id, 1 = L16 */
  uint32_t send_rate = 20;     /* ms */
};

/* One logged packet. */
struct PacketLogRecord {
  std::string key;             /* channel key */
  std::string mode;            /* participant_mode, "" if unknown */
  int64_t timestamp_ms = 0;    /* RTMS epoch ms */
  std::vector<uint8_t> pcm;    /* S16LE mono */
};

class PacketLogWriter
{
public:
  PacketLogWriter () = default;
  ~PacketLogWriter ();
  PacketLogWriter (const PacketLogWriter &) = delete;
  PacketLogWriter &operator= (const PacketLogWriter &) = delete;

  /* Creates @path anew (mode 0600; an existing file is unlinked first, so
   * a PacketLogReader that has it open keeps reading the old contents) and
   * writes the header. Returns
   * false with @error set (strerror text) on failure. */
  bool open (const std::string &path, const PacketLogHeader &h,
      std::string *error);
  bool is_open () const { return fd_ >= 0; }
  /* Appends a record to the in-memory buffer (no system call). Keys and
   * modes longer than the limits are cut. */
  void append (const std::string &key, const std::string &mode,
      int64_t timestamp_ms, const uint8_t *pcm, size_t bytes);
  /* Writes the buffer to the file (write(2), no fsync). Returns false on a
   * write error (@error set); the buffer is then dropped and the log
   * closed (a full disk must not grow memory). */
  bool flush (std::string *error);
  /* Bytes buffered, not yet written. */
  size_t pending () const { return buf_.size (); }
  /* flush() then close. */
  void close ();
  uint64_t records () const { return records_; }

private:
  int fd_ = -1;
  std::string buf_;
  uint64_t records_ = 0;
};

class PacketLogReader
{
public:
  enum class Status {
    OK,                        /* a record was read */
    END,                       /* clean end of file */
    TORN,                      /* an incomplete last record (ignored) */
    CORRUPT,                   /* an invalid record: it and the rest ignored */
  };

  PacketLogReader () = default;
  ~PacketLogReader ();
  PacketLogReader (const PacketLogReader &) = delete;
  PacketLogReader &operator= (const PacketLogReader &) = delete;

  /* Opens @path and reads the header. Returns false with @error set if the
   * file cannot be read or is not a packet log of version 1 or 2. */
  bool open (const std::string &path, std::string *error);
  const PacketLogHeader &header () const { return header_; }
  /* The file's format version (1 or 2), after open(). */
  uint16_t version () const { return version_; }
  /* Reads the next record into @r (its storage reused). After TORN or
   * CORRUPT, @error says what and where (byte offset) and every later call
   * returns the same status. Streams: memory is one record. */
  Status next (PacketLogRecord *r, std::string *error);
  uint64_t offset () const { return offset_; }

private:
  FILE *f_ = nullptr;
  PacketLogHeader header_;
  uint16_t version_ = 0;
  std::vector<uint8_t> rec_;   /* the current record, storage reused */
  uint64_t offset_ = 0;
  Status stopped_ = Status::OK;
  std::string stop_error_;
};

/* The record checksum of version 2: XXH3-64, seed 0, of @len bytes. */
uint64_t packet_log_checksum (const uint8_t *data, size_t len);
/* The record hash of version 1: FNV-1a, 32 bits (read only). */
uint32_t packet_log_hash_v1 (const uint8_t *data, size_t len,
    uint32_t h = 2166136261u);

} // namespace zoomrtms
