/* zoomrtms — the Aligner's CPU per packet, two builds in one process
 * (issue 12): bench/aligner-ab.py compiles this file twice, once against
 * plugins/zoomrtms/zoomrtms-aligner.cpp as it is and once against the
 * version of a git revision with its namespace renamed, and links both
 * with a main() that runs them in turn and prints the ratio.
 *
 * A workload is a stream as the element feeds it: 20 ms S16 packets at
 * 16 kHz, in order, per channel in turn, every ready block popped into one
 * reused AlignedBlock after each packet (as pump() does); the hold is the
 * recording template's 5000 ms. Returns ns per packet (best of rounds). */
#include "zoomrtms-aligner.h"

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#ifndef AB_FN
#error "define AB_FN (the entry point's name)"
#endif

/* @layout 0 = mix, 1 = stereo; @channels 1 or 2; @block_ms; @packets per
 * channel; @checksum: the sum of every output sample (the two builds must
 * agree) */
double
AB_FN (int layout, int channels, int block_ms, int packets,
    uint64_t *checksum)
{
  using namespace zoomrtms;
  AlignerConfig c;
  c.rate = 16000;
  c.packet_ms = 20;
  c.block_ms = block_ms;
  c.hold_ms = 5000;
  c.layout = layout ? Layout::STEREO : Layout::MIX;
  Aligner a (c);
  const std::string keys[2] = {
    "b5ef2d45-5b2e-4a7b-9bfa-2a7f27ad0c11",   /* ZCC channel_id-like */
    "0f6a2a1e-7c65-4d1f-8a59-0c4bbf7f3d22" };
  if (layout) {
    a.set_participant_mode (keys[0], "caller");
    a.set_participant_mode (keys[1], "callee");
  }
  std::vector<uint8_t> pcm[2];
  for (int ch = 0; ch < 2; ch++) {
    pcm[ch].resize (640);
    for (size_t i = 0; i < 640; i++)
      pcm[ch][i] = (uint8_t) (i * 37 + ch * 101);
  }
  AlignedBlock b;
  uint64_t sum = 0;
  const int64_t t0 = 1738392033000;
  auto start = std::chrono::steady_clock::now ();
  for (int i = 0; i < packets; i++) {
    for (int ch = 0; ch < channels; ch++) {
      a.push (keys[ch], t0 + (int64_t) i * 20, pcm[ch].data (), 640);
      while (a.pop (&b))
        sum += (uint16_t) b.samples[b.samples.size () / 2];
    }
  }
  double ns = std::chrono::duration<double, std::nano> (
      std::chrono::steady_clock::now () - start).count ();
  a.drain ();
  while (a.pop (&b))
    for (auto s : b.samples)
      sum += (uint16_t) s;
  *checksum = sum;
  return ns / ((double) packets * channels);
}
