/* zoomrtms — helpers shared by the libFuzzer targets (tests/fuzz/).
 *
 * FUZZ_CHECK (cond, fmt, …): an invariant of the code under test. When it
 * does not hold the target prints what broke and aborts, which libFuzzer
 * turns into a crash file and the regression runner (fuzz-main.cpp) into a
 * failed test. Never compiled out.
 *
 * FuzzInput: reads structured values (integers, strings) from the front of
 * the fuzz input; past the end it returns zeros / empty strings, so every
 * input is valid.
 */
#pragma once

#include <glib.h>

#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

/* The libFuzzer entry points every target defines (Initialize optional). */
extern "C" int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);
extern "C" int LLVMFuzzerInitialize (int *argc, char ***argv);

[[noreturn]] __attribute__ ((format (printf, 4, 5))) static inline void
fuzz_fail (const char *file, int line, const char *cond, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  fprintf (stderr, "FUZZ_CHECK failed at %s:%d: (%s) ", file, line, cond);
  vfprintf (stderr, fmt, ap);
  fputc ('\n', stderr);
  va_end (ap);
  abort ();
}

#define FUZZ_CHECK(cond, ...) \
  do { \
    if (!(cond)) \
      fuzz_fail (__FILE__, __LINE__, #cond, __VA_ARGS__); \
  } while (0)

/* printable escape of @s for failure messages (at most 200 bytes) */
static inline std::string
fuzz_escape (const std::string &s)
{
  std::string out;
  for (size_t i = 0; i < s.size () && i < 200; i++) {
    unsigned char c = static_cast<unsigned char> (s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char> (c);
    } else {
      char buf[8];
      snprintf (buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (s.size () > 200)
    out += "…";
  return out;
}

class FuzzInput
{
public:
  FuzzInput (const uint8_t *data, size_t size) : p_ (data), end_ (data + size) {}

  size_t remaining () const { return static_cast<size_t> (end_ - p_); }
  bool empty () const { return p_ >= end_; }

  uint8_t u8 ()
  {
    return p_ < end_ ? *p_++ : 0;
  }
  uint16_t u16 () { return static_cast<uint16_t> (u8 () | (u8 () << 8)); }
  uint32_t u32 () { return u16 () | (static_cast<uint32_t> (u16 ()) << 16); }
  uint64_t u64 () { return u32 () | (static_cast<uint64_t> (u32 ()) << 32); }

  /* a string of at most @max bytes: one length byte, then the bytes */
  std::string str (size_t max = 255)
  {
    size_t n = u8 ();
    if (n > max)
      n = max;
    if (n > remaining ())
      n = remaining ();
    std::string s (reinterpret_cast<const char *> (p_), n);
    p_ += n;
    return s;
  }

  /* the rest of the input */
  std::string rest ()
  {
    std::string s (reinterpret_cast<const char *> (p_), remaining ());
    p_ = end_;
    return s;
  }

  /* @n raw bytes (fewer at the end) */
  const uint8_t *bytes (size_t n, size_t *got)
  {
    if (n > remaining ())
      n = remaining ();
    const uint8_t *r = p_;
    p_ += n;
    *got = n;
    return r;
  }

private:
  const uint8_t *p_;
  const uint8_t *end_;
};

/* GLib logs criticals for programming errors; a fuzz target treats them as
 * crashes (the test environment sets G_DEBUG=fatal-criticals too). */
static inline void
fuzz_fatal_criticals ()
{
  g_log_set_always_fatal (static_cast<GLogLevelFlags> (
      G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_ERROR));
}

/* ZOOMRTMS_FUZZ_SKIP_KNOWN=1 (tools/fuzz.sh sets it): a target does not
 * report again the bugs listed in tests/fuzz/known-failing.txt, so that
 * libFuzzer explores beyond them. The regression (meson test) never sets it. */
static inline bool
fuzz_skip_known ()
{
  static const bool skip = getenv ("ZOOMRTMS_FUZZ_SKIP_KNOWN") != nullptr;
  return skip;
}
