/* zoomrtms — regression runner for the libFuzzer targets (tests/fuzz/).
 *
 * Built with the normal compiler (g++) for every target: feeds every file
 * named on the command line (directories: every regular file in them, sorted)
 * to LLVMFuzzerTestOneInput once, the way libFuzzer replays a corpus. A target
 * reports a broken invariant by aborting (fuzz-util.h FUZZ_CHECK), so a seed
 * that reveals a bug fails `meson test --suite fuzz` until the bug is fixed.
 *
 * Each input runs in a child process (fork), so one crashing seed does not
 * hide the others: every failing file is listed, and the exit status is 1 if
 * any failed. ZOOMRTMS_FUZZ_NOFORK=1 runs them in-process (for a debugger).
 *
 * Memory: outside AddressSanitizer the address space is capped (default
 * 4 GiB, ZOOMRTMS_FUZZ_AS_LIMIT_MB to change, 0 = no cap), so an input that
 * makes the code under test allocate without bound fails with std::bad_alloc
 * instead of taking the machine down. Under ASan, ASAN_OPTIONS
 * allocator_may_return_null=0 and max_allocation_size_mb do that job.
 */
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern "C" int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);
extern "C" int LLVMFuzzerInitialize (int *argc, char ***argv)
    __attribute__ ((weak));

#if defined(__SANITIZE_ADDRESS__)
#define FUZZ_MAIN_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FUZZ_MAIN_ASAN 1
#endif
#endif

static void
collect (const std::string &path, std::vector<std::string> *files)
{
  struct stat st;
  if (stat (path.c_str (), &st) != 0) {
    fprintf (stderr, "fuzz-main: %s: %s\n", path.c_str (), strerror (errno));
    exit (2);
  }
  if (!S_ISDIR (st.st_mode)) {
    files->push_back (path);
    return;
  }
  DIR *d = opendir (path.c_str ());
  if (!d) {
    fprintf (stderr, "fuzz-main: %s: %s\n", path.c_str (), strerror (errno));
    exit (2);
  }
  std::vector<std::string> names;
  while (struct dirent *e = readdir (d)) {
    if (e->d_name[0] == '.')
      continue;
    names.push_back (path + "/" + e->d_name);
  }
  closedir (d);
  std::sort (names.begin (), names.end ());
  for (const auto &n : names) {
    if (stat (n.c_str (), &st) == 0 && S_ISREG (st.st_mode))
      files->push_back (n);
  }
}

int
main (int argc, char **argv)
{
#ifndef FUZZ_MAIN_ASAN
  long limit_mb = 4096;
  if (const char *l = getenv ("ZOOMRTMS_FUZZ_AS_LIMIT_MB"))
    limit_mb = strtol (l, nullptr, 10);
  if (limit_mb > 0) {
    struct rlimit rl;
    rl.rlim_cur = rl.rlim_max = (rlim_t) limit_mb * 1024 * 1024;
    setrlimit (RLIMIT_AS, &rl);
  }
#endif
  if (LLVMFuzzerInitialize)
    LLVMFuzzerInitialize (&argc, &argv);
  std::vector<std::string> files;
  for (int i = 1; i < argc; i++)
    collect (argv[i], &files);
  if (files.empty ()) {
    fprintf (stderr, "fuzz-main: no input files (usage: %s FILE|DIR...)\n",
        argv[0]);
    return 2;
  }
  const bool nofork = getenv ("ZOOMRTMS_FUZZ_NOFORK") != nullptr;
  std::vector<std::string> failed;
  for (const auto &f : files) {
    std::ifstream in (f, std::ios::binary);
    if (!in) {
      fprintf (stderr, "fuzz-main: cannot read %s\n", f.c_str ());
      return 2;
    }
    std::vector<char> buf ((std::istreambuf_iterator<char> (in)),
        std::istreambuf_iterator<char> ());
    fprintf (stderr, "fuzz-main: %s (%zu bytes)\n", f.c_str (), buf.size ());
    fflush (stderr);
    pid_t pid = nofork ? 0 : fork ();
    if (pid < 0) {
      perror ("fuzz-main: fork");
      return 2;
    }
    if (pid == 0) {
      /* a heap copy of exactly the input size, as libFuzzer passes it, so
       * ASan sees a read past the end */
      uint8_t *copy = static_cast<uint8_t *> (malloc (buf.size () ? buf.size () : 1));
      if (!buf.empty ())
        memcpy (copy, buf.data (), buf.size ());
      LLVMFuzzerTestOneInput (copy, buf.size ());
      free (copy);
      if (!nofork) {
        fflush (nullptr);
        _exit (0);
      }
      continue;
    }
    int status = 0;
    while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
      ;
    if (WIFEXITED (status) && WEXITSTATUS (status) == 0)
      continue;
    if (WIFSIGNALED (status))
      fprintf (stderr, "fuzz-main: FAILED %s: killed by signal %d (%s)\n",
          f.c_str (), WTERMSIG (status), strsignal (WTERMSIG (status)));
    else
      fprintf (stderr, "fuzz-main: FAILED %s: exit status %d\n", f.c_str (),
          WEXITSTATUS (status));
    failed.push_back (f);
  }
  if (!failed.empty ()) {
    fprintf (stderr, "fuzz-main: %zu of %zu inputs failed:\n", failed.size (),
        files.size ());
    for (const auto &f : failed)
      fprintf (stderr, "  %s\n", f.c_str ());
    return 1;
  }
  printf ("fuzz-main: %zu inputs ran without a failure\n", files.size ());
  return 0;
}
