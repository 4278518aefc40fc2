/* zoomrtms — libFuzzer target: rtms::decode_audio_payload (msg 14 `data`,
 * docs/protocol.md §4.4; strict RFC 4648 base64, standard alphabet, padded).
 *
 * Invariants, for every input:
 *  - it accepts exactly the strings a plain reference decoder accepts
 *    (length a multiple of 4, alphabet A–Z a–z 0–9 + /, `=` only as one or
 *    two final characters; the unused low bits of the last quantum may be
 *    anything, as in GLib and Node's Buffer.from(…, 'base64'));
 *  - an accepted string decodes to the reference's bytes, which are also
 *    what GLib's g_base64_decode() returns;
 *  - a rejected string gives RTMS_ERROR_BASE64;
 *  - the output vector is reused between calls (capacity kept, contents
 *    replaced) — decoding into a vector that held a longer payload gives the
 *    same result;
 *  - round trip: the input bytes themselves, encoded with g_base64_encode(),
 *    decode back to the input.
 */
#include <glib.h>

#include <vector>

#include "fuzz-util.h"
#include "rtms-messages.h"

namespace {

int
value_of (unsigned char c)
{
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

/* the reference: bit by bit, no tables */
bool
reference_decode (const uint8_t *in, size_t len, std::vector<uint8_t> *out)
{
  out->clear ();
  if (len % 4 != 0)
    return false;
  size_t pad = 0;
  if (len >= 1 && in[len - 1] == '=')
    pad = (len >= 2 && in[len - 2] == '=') ? 2 : 1;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < len - pad; i++) {
    int v = value_of (in[i]);
    if (v < 0)
      return false;
    acc = (acc << 6) | static_cast<uint32_t> (v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back (static_cast<uint8_t> (acc >> bits));
      acc &= (1u << bits) - 1;
    }
  }
  return true;
}

} // namespace

extern "C" int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const char *b64 = reinterpret_cast<const char *> (data);
  std::vector<uint8_t> ref;
  bool ref_ok = reference_decode (data, size, &ref);

  std::vector<guint8> out;
  GError *error = nullptr;
  bool ok = rtms::decode_audio_payload (b64, size, &out, &error);
  FUZZ_CHECK (ok == ref_ok, "decode_audio_payload %s, the reference %s: \"%s\"",
      ok ? "accepts" : "rejects", ref_ok ? "accepts" : "rejects",
      fuzz_escape (std::string (b64, size)).c_str ());
  if (ok) {
    FUZZ_CHECK (error == nullptr, "success with an error set");
    FUZZ_CHECK (out == ref, "decoded bytes differ from the reference");
    if (size > 0) {
      std::string z (b64, size); /* NUL-terminated copy for GLib */
      gsize glen = 0;
      g_autofree guchar *g = g_base64_decode (z.c_str (), &glen);
      FUZZ_CHECK (glen == out.size () && memcmp (g, out.data (), glen) == 0,
          "g_base64_decode disagrees");
    }
  } else {
    FUZZ_CHECK (error != nullptr && error->domain == RTMS_ERROR
        && error->code == rtms::ERROR_BASE64, "rejected without RTMS_ERROR_BASE64");
    g_clear_error (&error);
  }

  /* the vector is reused: a longer previous payload must not leak through */
  std::vector<guint8> reused (size + 64, 0xa5);
  bool ok2 = rtms::decode_audio_payload (b64, size, &reused, &error);
  FUZZ_CHECK (ok2 == ok, "result depends on the output vector");
  if (ok2)
    FUZZ_CHECK (reused == out, "reused vector gives other bytes");
  g_clear_error (&error);

  /* round trip of arbitrary bytes */
  g_autofree gchar *enc = g_base64_encode (data, size);
  std::vector<guint8> back;
  FUZZ_CHECK (rtms::decode_audio_payload (enc, strlen (enc), &back, &error),
      "g_base64_encode output rejected: %s", error ? error->message : "");
  FUZZ_CHECK (back.size () == size && (size == 0 || memcmp (back.data (), data, size) == 0),
      "round trip changed the bytes");
  return 0;
}
