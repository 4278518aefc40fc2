/* seccomp-exec — run a command under the seccomp rules a systemd unit sets,
 * so tests/service can run the installed zoomrtms-host as the unit would
 * without a systemd manager (the test machines run none as PID 1).
 *
 *   seccomp-exec [--allow-file FILE] [--mdwe] [--families LIST] [--probe]
 *                -- COMMAND [ARG...]
 *
 * --allow-file FILE  SystemCallFilter= as an allow list: every syscall named
 *                    in FILE (one per line, as `systemd-analyze syscall-filter`
 *                    expands the unit's groups) is allowed, any other fails
 *                    with EPERM (the unit's SystemCallErrorNumber=EPERM);
 *                    names this libseccomp does not know are skipped.
 * --mdwe             MemoryDenyWriteExecute=yes as systemd 252 implements it
 *                    (src/shared/seccomp-util.c,
 *                    seccomp_memory_deny_write_execute): mmap with
 *                    PROT_WRITE|PROT_EXEC, mprotect/pkey_mprotect with
 *                    PROT_EXEC and shmat with SHM_EXEC fail with EPERM.
 * --families LIST   RestrictAddressFamilies= as systemd implements it: socket(2)
 *                    with a family not in LIST (space-separated AF_UNIX,
 *                    AF_INET, AF_INET6, AF_NETLINK, AF_PACKET) fails with
 *                    EAFNOSUPPORT.
 * --probe            instead of running COMMAND, check that the filters bite
 *                    (an RWX mmap, a syscall outside the allow list, an
 *                    AF_NETLINK socket) and exit 0 if they do, 1 if not.
 * Both filters are stacked, like systemd's separate filters; only the
 * native architecture is allowed (SystemCallArchitectures=native).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timex.h>
#include <unistd.h>

static int
load_allow_list (const char *path)
{
  FILE *f = fopen (path, "r");
  if (!f) {
    perror (path);
    return -1;
  }
  scmp_filter_ctx ctx = seccomp_init (SCMP_ACT_ERRNO (EPERM));
  if (!ctx) {
    fclose (f);
    return -1;
  }
  char line[256];
  int n = 0;
  while (fgets (line, sizeof line, f)) {
    line[strcspn (line, " \t\r\n")] = '\0';
    if (!line[0] || line[0] == '#')
      continue;
    int nr = seccomp_syscall_resolve_name (line);
    if (nr == __NR_SCMP_ERROR)
      continue;                 /* not a syscall of this architecture */
    int r = seccomp_rule_add (ctx, SCMP_ACT_ALLOW, nr, 0);
    if (r < 0 && r != -EEXIST) {
      fprintf (stderr, "seccomp-exec: %s: %s\n", line, strerror (-r));
      continue;
    }
    n++;
  }
  fclose (f);
  int r = seccomp_load (ctx);
  seccomp_release (ctx);
  if (r < 0) {
    fprintf (stderr, "seccomp-exec: loading the allow list: %s\n", strerror (-r));
    return -1;
  }
  return n;
}

static int
load_mdwe (void)
{
  scmp_filter_ctx ctx = seccomp_init (SCMP_ACT_ALLOW);
  if (!ctx)
    return -1;
  int r = 0;
  r |= seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), SCMP_SYS (mmap), 1,
      SCMP_A2 (SCMP_CMP_MASKED_EQ, PROT_WRITE | PROT_EXEC, PROT_WRITE | PROT_EXEC));
  r |= seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), SCMP_SYS (mprotect), 1,
      SCMP_A2 (SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC));
  r |= seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), SCMP_SYS (pkey_mprotect), 1,
      SCMP_A2 (SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC));
  r |= seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EPERM), SCMP_SYS (shmat), 1,
      SCMP_A2 (SCMP_CMP_MASKED_EQ, SHM_EXEC, SHM_EXEC));
  if (r == 0)
    r = seccomp_load (ctx);
  seccomp_release (ctx);
  if (r < 0)
    fprintf (stderr, "seccomp-exec: loading the MDWE rules: %s\n", strerror (-r));
  return r < 0 ? -1 : 0;
}

static int
load_families (const char *list)
{
  static const struct { const char *name; int family; } known[] = {
    {"AF_UNIX", AF_UNIX}, {"AF_INET", AF_INET}, {"AF_INET6", AF_INET6},
    {"AF_NETLINK", AF_NETLINK}, {"AF_PACKET", AF_PACKET},
  };
  int allowed[AF_MAX] = {0};
  char *copy = strdup (list), *save = NULL;
  for (char *t = strtok_r (copy, " ", &save); t; t = strtok_r (NULL, " ", &save)) {
    size_t i = 0, n = sizeof known / sizeof known[0];
    while (i < n && strcmp (t, known[i].name))
      i++;
    if (i == n) {
      fprintf (stderr, "seccomp-exec: unknown address family %s\n", t);
      free (copy);
      return -1;
    }
    allowed[known[i].family] = 1;
  }
  free (copy);
  scmp_filter_ctx ctx = seccomp_init (SCMP_ACT_ALLOW);
  if (!ctx)
    return -1;
  int r = 0;
  for (int f = 0; f < AF_MAX && r == 0; f++)
    if (!allowed[f])
      r = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EAFNOSUPPORT), SCMP_SYS (socket), 1,
          SCMP_A0 (SCMP_CMP_EQ, (scmp_datum_t) f));
  if (r == 0)
    r = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (EAFNOSUPPORT), SCMP_SYS (socket), 1,
        SCMP_A0 (SCMP_CMP_GE, (scmp_datum_t) AF_MAX));
  if (r == 0)
    r = seccomp_load (ctx);
  seccomp_release (ctx);
  if (r < 0)
    fprintf (stderr, "seccomp-exec: loading the address families: %s\n", strerror (-r));
  return r < 0 ? -1 : 0;
}

int
main (int argc, char **argv)
{
  const char *allow = NULL, *families = NULL;
  int mdwe = 0, probe = 0, i = 1;
  for (; i < argc; i++) {
    if (!strcmp (argv[i], "--allow-file") && i + 1 < argc)
      allow = argv[++i];
    else if (!strcmp (argv[i], "--families") && i + 1 < argc)
      families = argv[++i];
    else if (!strcmp (argv[i], "--mdwe"))
      mdwe = 1;
    else if (!strcmp (argv[i], "--probe"))
      probe = 1;
    else if (!strcmp (argv[i], "--")) {
      i++;
      break;
    } else {
      fprintf (stderr, "seccomp-exec: unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  if (!probe && i >= argc) {
    fprintf (stderr, "usage: seccomp-exec [--allow-file F] [--mdwe] [--families L] [--probe] -- CMD...\n");
    return 2;
  }
  /* the allow list last: it need not allow seccomp(2) itself */
  if (mdwe && load_mdwe () < 0)
    return 2;
  if (families && load_families (families) < 0)
    return 2;
  if (allow && load_allow_list (allow) <= 0)
    return 2;
  if (probe) {
    int ok = 1;
    if (mdwe) {
      void *p = mmap (NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      int denied = p == MAP_FAILED && errno == EPERM;
      printf ("mmap(PROT_WRITE|PROT_EXEC): %s\n", denied ? "EPERM" : "allowed");
      ok &= denied;
    }
    if (allow) {
      /* adjtimex(2) with modes 0 only reads the clock state, which any user
       * may do; it is in @clock, outside @system-service: EPERM only from
       * the filter */
      struct timex tx;
      memset (&tx, 0, sizeof tx);
      long r = syscall (SYS_adjtimex, &tx);
      int denied = r == -1 && errno == EPERM;
      printf ("adjtimex(): %s\n", denied ? "EPERM" : r >= 0 ? "allowed" : strerror (errno));
      ok &= denied;
    }
    if (families) {
      int fd = socket (AF_NETLINK, SOCK_RAW, 0);
      int denied = fd < 0 && errno == EAFNOSUPPORT;
      printf ("socket(AF_NETLINK): %s\n", denied ? "EAFNOSUPPORT" : "allowed");
      if (fd >= 0)
        close (fd);
      ok &= denied;
    }
    return ok ? 0 : 1;
  }
  execvp (argv[i], argv + i);
  perror (argv[i]);
  return 127;
}
