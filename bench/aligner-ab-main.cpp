/* zoomrtms — main() of bench/aligner-ab.py: the two builds of the Aligner
 * (bench/aligner-ab.cpp) in turn, best of 7 rounds each, ns per packet and
 * the ratio new / base. */
#include <cstdint>
#include <cstdio>
#include <cstdlib>

double ab_base (int layout, int channels, int block_ms, int packets,
    uint64_t *checksum);
double ab_new (int layout, int channels, int block_ms, int packets,
    uint64_t *checksum);

int
main ()
{
  struct Case {
    const char *name;
    int layout, channels, block_ms;
  } cases[] = {
    { "ZCC stereo, 2 channels, block-ms 100", 1, 2, 100 },
    { "ZCC stereo, 2 channels, block-ms 20", 1, 2, 20 },
    { "meeting mix, 1 channel, block-ms 100", 0, 1, 100 },
    { "mix, 2 channels, block-ms 100", 0, 2, 100 },
  };
  const int packets = 100000;   /* per channel: 2000 s of audio */
  int rc = 0;
  printf ("%-40s %12s %12s %8s\n", "workload", "base ns/pkt", "new ns/pkt",
      "new/base");
  for (const auto &c : cases) {
    double best_base = 1e30, best_new = 1e30;
    uint64_t sum_base = 0, sum_new = 0;
    for (int r = 0; r < 7; r++) {
      double b = ab_base (c.layout, c.channels, c.block_ms, packets,
          &sum_base);
      double n = ab_new (c.layout, c.channels, c.block_ms, packets, &sum_new);
      best_base = b < best_base ? b : best_base;
      best_new = n < best_new ? n : best_new;
    }
    printf ("%-40s %12.1f %12.1f %8.2f%s\n", c.name, best_base, best_new,
        best_new / best_base, sum_base == sum_new ? "" : "  OUTPUT DIFFERS");
    if (sum_base != sum_new)
      rc = 1;
  }
  return rc;
}
