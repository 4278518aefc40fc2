/* zoomrtms — the packet log's record checksum, measured (issue 12).
 *
 * Prints ns per record of ~706 bytes (24-byte head, a 36-byte channel_id,
 * "caller", 640 bytes of PCM: one 20 ms L16 packet at 16 kHz) for
 * version 1's FNV-1a (byte at a time), zlib's crc32 (the well-kept CRC at
 * hand) and version 2's XXH3-64 (libxxhash), then the whole
 * PacketLogWriter::append() of version 2 with its flush. Best of 7
 * rounds of 200,000 records; the buffer walks over 64 KiB so the data is
 * in cache as in the element (the packet was just decoded).
 *
 *   meson compile -C build packet-log-checksum
 *   build/bench/packet-log-checksum
 *
 * Figures: docs/benchmarks.md "Memory per engagement" (the checksum part). */
#include "zoomrtms-packet-log.h"

#include <zlib.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <unistd.h>
#include <vector>

using namespace zoomrtms;

namespace {

constexpr size_t kRecord = 24 + 36 + 6 + 640;
constexpr int kIters = 200000;
constexpr int kRounds = 7;

template <typename F>
double
best_ns (F fn)
{
  double best = 1e30;
  for (int r = 0; r < kRounds; r++) {
    auto t0 = std::chrono::steady_clock::now ();
    fn ();
    double ns = std::chrono::duration<double, std::nano> (
        std::chrono::steady_clock::now () - t0).count () / kIters;
    if (ns < best)
      best = ns;
  }
  return best;
}

} // namespace

int
main ()
{
  std::vector<uint8_t> buf (64 * 1024);
  for (size_t i = 0; i < buf.size (); i++)
    buf[i] = (uint8_t) (i * 131 + (i >> 7));
  volatile uint64_t sink = 0;
  auto at = [&] (int i) { return buf.data () + (size_t) (i * 64) % 60000; };

  double fnv = best_ns ([&] {
        for (int i = 0; i < kIters; i++)
          sink = sink + packet_log_hash_v1 (at (i), kRecord);
      });
  double crc = best_ns ([&] {
        for (int i = 0; i < kIters; i++)
          sink = sink + crc32 (0, at (i), (uInt) kRecord);
      });
  double xxh = best_ns ([&] {
        for (int i = 0; i < kIters; i++)
          sink = sink + packet_log_checksum (at (i), kRecord);
      });

  /* append() as the element calls it, and flush() every 20 records (2
   * channels × 200 ms, packet-log-flush-ms) into a file on tmpfs
   * (/dev/shm; reopened every round so it stays ≤ 15 MB) */
  const int append_iters = 20000;
  const std::string key (36, 'k'), mode ("caller");
  const std::string path = "/dev/shm/zoomrtms-plc-" +
      std::to_string (getpid ()) + ".plog";
  double append = 1e30;
  for (int r = 0; r < kRounds; r++) {
    PacketLogWriter w;
    std::string err;
    if (!w.open (path, PacketLogHeader (), &err)) {
      fprintf (stderr, "%s: %s\n", path.c_str (), err.c_str ());
      return 1;
    }
    auto t0 = std::chrono::steady_clock::now ();
    for (int i = 0; i < append_iters; i++) {
      w.append (key, mode, 1738392033000 + 20 * i, at (i), 640);
      if (i % 20 == 19)
        w.flush (&err);
    }
    double ns = std::chrono::duration<double, std::nano> (
        std::chrono::steady_clock::now () - t0).count () / append_iters;
    if (ns < append)
      append = ns;
    w.close ();
  }
  unlink (path.c_str ());

  printf ("record of %zu bytes, best of %d rounds of %d:\n", kRecord, kRounds,
      kIters);
  printf ("| checksum | ns / record | GB/s | vs FNV-1a |\n|---|---|---|---|\n");
  printf ("| FNV-1a 32, byte at a time (version 1) | %.0f | %.2f | 1.00× |\n",
      fnv, kRecord / fnv);
  printf ("| zlib crc32 (%s) | %.0f | %.2f | %.2f× |\n", zlibVersion (), crc,
      kRecord / crc, fnv / crc);
  printf ("| XXH3-64, libxxhash (version 2) | %.0f | %.2f | %.2f× |\n", xxh,
      kRecord / xxh, fnv / xxh);
  printf ("\nPacketLogWriter::append (version 2, 640-byte packet) + flush "
      "every 20 records to tmpfs: %.0f ns / record\n", append);
  return sink == 42 ? 1 : 0;
}
