/* Test helper: runs zoomrtms-sim as a subprocess and reads its --ready-file.
 * Shared by the client, element and host tests. */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include <string>
#include <vector>

namespace testutil {

/* A channel of a prepared stream, from the sim's ready file. */
struct SimChannel {
  std::string channel_id, participant_mode, role;
};

struct SimStream {
  std::string engagement_id, rtms_stream_id, server_urls;
  std::vector<SimChannel> channels;
};

/* A temporary directory removed (recursively) on destruction. */
class TempDir
{
public:
  TempDir ();
  ~TempDir ();
  const std::string &path () const { return path_; }
  std::string file (const std::string &name) const { return path_ + "/" + name; }

private:
  std::string path_;
};

/* Path of a built program: $ZOOMRTMS_BUILD_DIR/<relative>. */
std::string build_path (const std::string &relative);

/* Reads a whole file; empty on error. */
std::string read_file (const std::string &path);

class SimProcess
{
public:
  /* Starts `zoomrtms-sim <args…> --port 0 --ready-file <tmp>` and waits (up to
   * 20 s) for the ready file. Fails the current test (ADD_FAILURE) on timeout. */
  explicit SimProcess (const std::vector<std::string> &args);
  ~SimProcess ();

  bool ok () const { return ok_; }
  const std::string &signaling_url () const { return signaling_url_; }
  const std::vector<SimStream> &streams () const { return streams_; }
  /* Waits for exit (up to @timeout_s); returns the exit status, -1 on timeout. */
  int wait (int timeout_s);

private:
  GSubprocess *proc_ = nullptr;
  TempDir dir_;
  bool ok_ = false;
  std::string signaling_url_;
  std::vector<SimStream> streams_;
};

} // namespace testutil
