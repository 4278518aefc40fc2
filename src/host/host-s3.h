/* zoomrtms-host — a small, blocking client of the S3 API (issue 13), for the
 * after-call worker thread (host-actions.h); never call it on the main
 * context.
 *
 * libcurl does the HTTP and the AWS Signature Version 4
 * (CURLOPT_AWS_SIGV4 "aws:amz:<region>:s3", libcurl ≥ 7.75); each request
 * carries `x-amz-content-sha256` = the hex SHA-256 of its body (S3 checks
 * the body against it) and, with a body, `Content-MD5` (S3 checks it too).
 * Operations (https://docs.aws.amazon.com/AmazonS3/latest/API/):
 * PutObject, HeadObject, GetObject (hashed, not stored), DeleteObject,
 * ListObjectsV2, CreateMultipartUpload, UploadPart,
 * CompleteMultipartUpload, AbortMultipartUpload. Bodies are in memory (a
 * part at most: part-size bytes). Responses are read up to 1 MiB (XML) —
 * GetObject streams into a hash. Secrets never appear in errors.
 */
#pragma once

#include <glib.h>

#include <atomic>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace zhost {

struct S3Settings {
  std::string endpoint;      /* http(s)://host[:port], no path */
  std::string bucket, region = "us-east-1";
  bool path_style = true;
  std::string access_key, secret_key, session_token;
  std::string ca_file;
  int timeout_s = 60;        /* abort a request without progress for this long */
};

struct S3Result {
  long status = 0;           /* HTTP status, 0 = no answer (error says why) */
  std::string error;         /* transport error or the S3 <Code>/<Message> */
  std::string body;          /* response body (≤ 1 MiB) */
  std::map<std::string, std::string> headers;   /* lower-case names */
  bool ok () const { return status >= 200 && status < 300; }
  std::string describe () const;
};

class S3Client {
 public:
  /* @cancel: when it becomes true, a running request is aborted (progress
   * callback) and fails with "cancelled". May be NULL. */
  S3Client (S3Settings s, const std::atomic<bool> *cancel = nullptr);
  ~S3Client ();
  S3Client (const S3Client &) = delete;
  S3Client &operator= (const S3Client &) = delete;

  /** url_for: the object's URL (key percent-encoded, '/' kept). */
  std::string url_for (const std::string &key, const std::string &query = "") const;

  S3Result put_object (const std::string &key, const guint8 *data, gsize len,
      const std::map<std::string, std::string> &meta);
  /* HEAD: size from Content-Length, "etag" without quotes. */
  S3Result head_object (const std::string &key, guint64 *size, std::string *etag);
  /* GET, hashing the body as it arrives: @sha256 (hex) and @size. */
  S3Result get_object_sha256 (const std::string &key, std::string *sha256,
      guint64 *size);
  S3Result delete_object (const std::string &key);
  /* ListObjectsV2 of @prefix (all pages): keys with sizes. */
  S3Result list_objects (const std::string &prefix,
      std::vector<std::pair<std::string, guint64>> *out);
  S3Result create_multipart (const std::string &key,
      const std::map<std::string, std::string> &meta, std::string *upload_id);
  S3Result upload_part (const std::string &key, const std::string &upload_id,
      int part_number, const guint8 *data, gsize len, std::string *etag);
  S3Result complete_multipart (const std::string &key, const std::string &upload_id,
      const std::vector<std::string> &etags, std::string *etag);
  S3Result abort_multipart (const std::string &key, const std::string &upload_id);

  /** uri_encode: RFC 3986 unreserved kept, everything else %XX; '/' kept
   * when @keep_slash (object keys). */
  static std::string uri_encode (const std::string &s, bool keep_slash);

  struct Sink;     /* a GET body hashed as it arrives */

 private:
  S3Result perform (const char *method, const std::string &key,
      const std::string &query, const guint8 *body, gsize len,
      const std::map<std::string, std::string> &headers, Sink *sink);
  S3Settings s_;
  const std::atomic<bool> *cancel_;
  void *curl_ = nullptr;      /* CURL *, reused (keep-alive) */
};

/** xml_values: the text of every element named @name in @xml (GMarkup;
 * entities decoded). Bounded by @xml's size. */
std::vector<std::string> xml_values (const std::string &xml, const char *name);

} // namespace zhost
