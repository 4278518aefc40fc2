/* zoomrtms — msg 14 base64 decode (rtms::decode_audio_payload,
 * rtms-messages.cpp): the scalar table loop against the AVX2 path, in one
 * process on the same payloads, ns per payload and the ratio
 * (docs/benchmarks.md "Client per-message path"). Built, not run by meson
 * test.
 *
 *   build/bench/base64-decode [PCM_BYTES [ITERATIONS]]
 *
 * Default: 640 bytes of PCM (20 ms of L16 at 16 kHz mono, docs/protocol.md
 * §4.2: 856 base64 characters), 200000 decodes per path, best of 5 rounds. */
#include <glib.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "rtms-json-private.h"
#include "rtms-messages.h"

static double
ns_per_decode (const std::string &b64, std::vector<guint8> *out, bool simd,
    int iterations)
{
  double best = 1e30;
  for (int round = 0; round < 5; round++) {
    gint64 t0 = g_get_monotonic_time ();
    for (int i = 0; i < iterations; i++)
      if (!rtms::detail::decode_audio_payload_with (b64.data (), b64.size (),
              out, nullptr, simd))
        abort ();
    gint64 t1 = g_get_monotonic_time ();
    best = std::min (best, (t1 - t0) * 1000.0 / iterations);
  }
  return best;
}

int
main (int argc, char **argv)
{
  gsize pcm_bytes = argc > 1 ? (gsize) atol (argv[1]) : 640;
  int iterations = argc > 2 ? atoi (argv[2]) : 200000;
  std::vector<guint8> pcm (pcm_bytes);
  for (gsize i = 0; i < pcm_bytes; i++)
    pcm[i] = (guint8) (i * 2654435761u >> 13);
  g_autofree gchar *enc = g_base64_encode (pcm.data (), pcm.size ());
  std::string b64 (enc);
  std::vector<guint8> a, b;
  rtms::detail::decode_audio_payload_with (b64.data (), b64.size (), &a,
      nullptr, false);
  rtms::detail::decode_audio_payload_with (b64.data (), b64.size (), &b,
      nullptr, true);
  if (a != pcm || b != pcm) {
    fprintf (stderr, "base64-decode: the paths disagree\n");
    return 1;
  }
  double scalar = ns_per_decode (b64, &a, false, iterations);
  double simd = ns_per_decode (b64, &b, true, iterations);
  printf ("payload: %zu PCM bytes, %zu base64 characters\n", pcm_bytes,
      b64.size ());
  printf ("scalar table loop: %8.1f ns per payload (%.2f GB/s of base64)\n",
      scalar, b64.size () / scalar);
  printf ("SIMD path:         %8.1f ns per payload (%.2f GB/s of base64)\n",
      simd, b64.size () / simd);
  printf ("ratio scalar/SIMD: %.2fx\n", scalar / simd);
  return 0;
}
