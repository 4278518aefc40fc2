/* zoomrtms-host — S3 API client over libcurl (see host-s3.h). */
#include "host-s3.h"

#include <curl/curl.h>

#include <cstring>

namespace zhost {

static const gsize kMaxResponse = 1024 * 1024;

std::string
S3Result::describe () const
{
  if (status == 0)
    return error.empty () ? "no answer" : error;
  std::string s = "HTTP " + std::to_string (status);
  if (!error.empty ())
    s += " " + error;
  return s;
}

struct S3Client::Sink {
  GChecksum *sha = nullptr;
  guint64 bytes = 0;
};

namespace {

struct Io {
  S3Result *r;
  S3Client::Sink *sink;      /* NULL: keep the body */
  const std::atomic<bool> *cancel;
};

size_t
write_cb (char *ptr, size_t size, size_t n, void *data)
{
  auto *io = static_cast<Io *> (data);
  size_t len = size * n;
  if (io->sink) {
    g_checksum_update (io->sink->sha, reinterpret_cast<const guchar *> (ptr), len);
    io->sink->bytes += len;
  } else if (io->r->body.size () < kMaxResponse) {
    io->r->body.append (ptr, MIN (len, kMaxResponse - io->r->body.size ()));
  }
  return len;
}

size_t
header_cb (char *ptr, size_t size, size_t n, void *data)
{
  auto *io = static_cast<Io *> (data);
  size_t len = size * n;
  std::string line (ptr, len);
  if (g_str_has_prefix (line.c_str (), "HTTP/"))
    io->r->headers.clear ();     /* a new response (after 100 Continue) */
  auto colon = line.find (':');
  if (colon != std::string::npos && io->r->headers.size () < 200) {
    g_autofree gchar *name = g_ascii_strdown (line.substr (0, colon).c_str (), -1);
    g_autofree gchar *value = g_strdup (line.substr (colon + 1).c_str ());
    g_strstrip (value);
    io->r->headers[name] = value;
  }
  return len;
}

int
progress_cb (void *data, curl_off_t, curl_off_t, curl_off_t, curl_off_t)
{
  auto *io = static_cast<Io *> (data);
  return io->cancel && io->cancel->load () ? 1 : 0;
}

std::string
hex_sha256 (const guint8 *data, gsize len)
{
  g_autofree gchar *h = g_compute_checksum_for_data (G_CHECKSUM_SHA256,
      data ? data : reinterpret_cast<const guint8 *> (""), len);
  return h;
}

std::string
base64_md5 (const guint8 *data, gsize len)
{
  guint8 digest[16];
  gsize dlen = sizeof (digest);
  GChecksum *c = g_checksum_new (G_CHECKSUM_MD5);
  g_checksum_update (c, data, len);
  g_checksum_get_digest (c, digest, &dlen);
  g_checksum_free (c);
  g_autofree gchar *b = g_base64_encode (digest, dlen);
  return b;
}

std::string
strip_quotes (const std::string &s)
{
  if (s.size () >= 2 && s.front () == '"' && s.back () == '"')
    return s.substr (1, s.size () - 2);
  return s;
}

struct XmlCollect {
  const char *name;
  bool inside = false;
  std::string cur;
  std::vector<std::string> *out;
};

} // namespace

std::vector<std::string>
xml_values (const std::string &xml, const char *name)
{
  std::vector<std::string> out;
  XmlCollect c {name, false, "", &out};
  GMarkupParser p = {};
  p.start_element = [] (GMarkupParseContext *, const gchar *el, const gchar **,
      const gchar **, gpointer d, GError **) {
    auto *x = static_cast<XmlCollect *> (d);
    if (g_str_equal (el, x->name)) {
      x->inside = true;
      x->cur.clear ();
    }
  };
  p.end_element = [] (GMarkupParseContext *, const gchar *el, gpointer d, GError **) {
    auto *x = static_cast<XmlCollect *> (d);
    if (x->inside && g_str_equal (el, x->name)) {
      x->inside = false;
      x->out->push_back (x->cur);
    }
  };
  p.text = [] (GMarkupParseContext *, const gchar *text, gsize len, gpointer d,
      GError **) {
    auto *x = static_cast<XmlCollect *> (d);
    if (x->inside)
      x->cur.append (text, len);
  };
  GMarkupParseContext *ctx = g_markup_parse_context_new (&p,
      G_MARKUP_IGNORE_QUALIFIED, &c, nullptr);
  /* the XML declaration is not markup GMarkup accepts: skip it */
  std::string body = xml;
  if (g_str_has_prefix (body.c_str (), "<?xml")) {
    auto e = body.find ("?>");
    body = e == std::string::npos ? "" : body.substr (e + 2);
  }
  g_markup_parse_context_parse (ctx, body.data (), static_cast<gssize> (body.size ()),
      nullptr);
  g_markup_parse_context_free (ctx);
  return out;
}

S3Client::S3Client (S3Settings s, const std::atomic<bool> *cancel)
    : s_ (std::move (s)), cancel_ (cancel)
{
  static gsize once = 0;
  if (g_once_init_enter (&once)) {
    curl_global_init (CURL_GLOBAL_DEFAULT);
    g_once_init_leave (&once, 1);
  }
  curl_ = curl_easy_init ();
}

S3Client::~S3Client ()
{
  if (curl_)
    curl_easy_cleanup (static_cast<CURL *> (curl_));
}

std::string
S3Client::uri_encode (const std::string &s, bool keep_slash)
{
  static const char hex[] = "0123456789ABCDEF";
  std::string o;
  for (unsigned char ch : s) {
    if (g_ascii_isalnum (ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~' ||
        (keep_slash && ch == '/')) {
      o += static_cast<char> (ch);
    } else {
      o += '%';
      o += hex[ch >> 4];
      o += hex[ch & 15];
    }
  }
  return o;
}

std::string
S3Client::url_for (const std::string &key, const std::string &query) const
{
  std::string ep = s_.endpoint;
  while (!ep.empty () && ep.back () == '/')
    ep.pop_back ();
  std::string url;
  if (s_.path_style) {
    url = ep + "/" + uri_encode (s_.bucket, false);
  } else {
    /* virtual-hosted style: scheme://bucket.host[:port] */
    auto p = ep.find ("://");
    url = p == std::string::npos ? s_.bucket + "." + ep :
        ep.substr (0, p + 3) + s_.bucket + "." + ep.substr (p + 3);
  }
  url += "/" + uri_encode (key, true);
  if (!query.empty ())
    url += "?" + query;
  return url;
}

S3Result
S3Client::perform (const char *method, const std::string &key,
    const std::string &query, const guint8 *body, gsize len,
    const std::map<std::string, std::string> &headers, Sink *sink)
{
  S3Result r;
  CURL *c = static_cast<CURL *> (curl_);
  if (!c) {
    r.error = "libcurl could not be initialized";
    return r;
  }
  curl_easy_reset (c);
  std::string url = url_for (key, query);
  Io io {&r, sink, cancel_};
  std::string sigv4 = "aws:amz:" + s_.region + ":s3";
  curl_easy_setopt (c, CURLOPT_URL, url.c_str ());
  curl_easy_setopt (c, CURLOPT_AWS_SIGV4, sigv4.c_str ());
  curl_easy_setopt (c, CURLOPT_USERNAME, s_.access_key.c_str ());
  curl_easy_setopt (c, CURLOPT_PASSWORD, s_.secret_key.c_str ());
  curl_easy_setopt (c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt (c, CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt (c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt (c, CURLOPT_LOW_SPEED_TIME, static_cast<long> (MAX (s_.timeout_s, 1)));
  curl_easy_setopt (c, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt (c, CURLOPT_WRITEDATA, &io);
  curl_easy_setopt (c, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt (c, CURLOPT_HEADERDATA, &io);
  curl_easy_setopt (c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt (c, CURLOPT_XFERINFOFUNCTION, progress_cb);
  curl_easy_setopt (c, CURLOPT_XFERINFODATA, &io);
  curl_easy_setopt (c, CURLOPT_PROTOCOLS_STR, "http,https");
  if (!s_.ca_file.empty ())
    curl_easy_setopt (c, CURLOPT_CAINFO, s_.ca_file.c_str ());
  struct curl_slist *h = nullptr;
  std::string sha = "x-amz-content-sha256: " + hex_sha256 (body, body ? len : 0);
  h = curl_slist_append (h, sha.c_str ());
  if (!s_.session_token.empty ()) {
    std::string t = "x-amz-security-token: " + s_.session_token;
    h = curl_slist_append (h, t.c_str ());
  }
  h = curl_slist_append (h, "Expect:");
  for (const auto &kv : headers) {
    std::string line = kv.first + ": " + kv.second;
    h = curl_slist_append (h, line.c_str ());
  }
  bool with_body = g_str_equal (method, "PUT") || g_str_equal (method, "POST");
  if (with_body) {
    if (body && len > 0) {
      std::string md5 = "Content-MD5: " + base64_md5 (body, len);
      h = curl_slist_append (h, md5.c_str ());
    }
    if (!headers.count ("Content-Type"))
      h = curl_slist_append (h, "Content-Type: application/octet-stream");
    curl_easy_setopt (c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t> (len));
    curl_easy_setopt (c, CURLOPT_POSTFIELDS, body ? reinterpret_cast<const char *> (body) : "");
    curl_easy_setopt (c, CURLOPT_CUSTOMREQUEST, method);
  } else if (g_str_equal (method, "HEAD")) {
    curl_easy_setopt (c, CURLOPT_NOBODY, 1L);
  } else if (!g_str_equal (method, "GET")) {
    curl_easy_setopt (c, CURLOPT_CUSTOMREQUEST, method);
  }
  curl_easy_setopt (c, CURLOPT_HTTPHEADER, h);
  CURLcode rc = curl_easy_perform (c);
  curl_slist_free_all (h);
  if (rc != CURLE_OK) {
    r.status = 0;
    r.error = rc == CURLE_ABORTED_BY_CALLBACK ? "cancelled" : curl_easy_strerror (rc);
    return r;
  }
  curl_easy_getinfo (c, CURLINFO_RESPONSE_CODE, &r.status);
  if (!r.ok ()) {
    auto code = xml_values (r.body, "Code");
    auto msg = xml_values (r.body, "Message");
    if (!code.empty ())
      r.error = code[0];
    if (!msg.empty ())
      r.error += (r.error.empty () ? "" : ": ") + msg[0].substr (0, 200);
  }
  return r;
}

static std::map<std::string, std::string>
meta_headers (const std::map<std::string, std::string> &meta)
{
  std::map<std::string, std::string> h;
  for (const auto &kv : meta)
    h["x-amz-meta-" + kv.first] = kv.second;
  return h;
}

S3Result
S3Client::put_object (const std::string &key, const guint8 *data, gsize len,
    const std::map<std::string, std::string> &meta)
{
  return perform ("PUT", key, "", data, len, meta_headers (meta), nullptr);
}

S3Result
S3Client::head_object (const std::string &key, guint64 *size, std::string *etag)
{
  S3Result r = perform ("HEAD", key, "", nullptr, 0, {}, nullptr);
  if (r.ok ()) {
    if (size)
      *size = g_ascii_strtoull (r.headers["content-length"].c_str (), nullptr, 10);
    if (etag)
      *etag = strip_quotes (r.headers["etag"]);
  }
  return r;
}

S3Result
S3Client::get_object_sha256 (const std::string &key, std::string *sha256,
    guint64 *size)
{
  Sink sink;
  sink.sha = g_checksum_new (G_CHECKSUM_SHA256);
  S3Result r = perform ("GET", key, "", nullptr, 0, {}, &sink);
  if (r.ok ()) {
    *sha256 = g_checksum_get_string (sink.sha);
    *size = sink.bytes;
  }
  g_checksum_free (sink.sha);
  return r;
}

S3Result
S3Client::delete_object (const std::string &key)
{
  return perform ("DELETE", key, "", nullptr, 0, {}, nullptr);
}

S3Result
S3Client::list_objects (const std::string &prefix,
    std::vector<std::pair<std::string, guint64>> *out)
{
  std::string token;
  S3Result r;
  for (int page = 0; page < 10000; page++) {
    /* canonical order (SigV4): parameters sorted by name */
    std::string q = (token.empty () ? "" : "continuation-token=" +
        uri_encode (token, false) + "&") + "list-type=2&prefix=" +
        uri_encode (prefix, false);
    r = perform ("GET", "", q, nullptr, 0, {}, nullptr);
    if (!r.ok ())
      return r;
    auto keys = xml_values (r.body, "Key");
    auto sizes = xml_values (r.body, "Size");
    for (gsize i = 0; i < keys.size (); i++)
      out->push_back ({keys[i], i < sizes.size () ?
          g_ascii_strtoull (sizes[i].c_str (), nullptr, 10) : 0});
    auto trunc = xml_values (r.body, "IsTruncated");
    auto next = xml_values (r.body, "NextContinuationToken");
    if (trunc.empty () || trunc[0] != "true" || next.empty ())
      break;
    token = next[0];
  }
  return r;
}

S3Result
S3Client::create_multipart (const std::string &key,
    const std::map<std::string, std::string> &meta, std::string *upload_id)
{
  S3Result r = perform ("POST", key, "uploads=", nullptr, 0, meta_headers (meta),
      nullptr);
  if (r.ok ()) {
    auto ids = xml_values (r.body, "UploadId");
    if (ids.empty () || ids[0].empty ()) {
      r.status = 0;
      r.error = "CreateMultipartUpload answer without an UploadId";
    } else {
      *upload_id = ids[0];
    }
  }
  return r;
}

S3Result
S3Client::upload_part (const std::string &key, const std::string &upload_id,
    int part_number, const guint8 *data, gsize len, std::string *etag)
{
  S3Result r = perform ("PUT", key, "partNumber=" + std::to_string (part_number) +
      "&uploadId=" + uri_encode (upload_id, false), data, len, {}, nullptr);
  if (r.ok ())
    *etag = r.headers["etag"];
  return r;
}

S3Result
S3Client::complete_multipart (const std::string &key, const std::string &upload_id,
    const std::vector<std::string> &etags, std::string *etag)
{
  std::string xml = "<CompleteMultipartUpload>";
  for (gsize i = 0; i < etags.size (); i++) {
    g_autofree gchar *e = g_markup_escape_text (etags[i].c_str (), -1);
    xml += "<Part><PartNumber>" + std::to_string (i + 1) + "</PartNumber><ETag>" +
        e + "</ETag></Part>";
  }
  xml += "</CompleteMultipartUpload>";
  S3Result r = perform ("POST", key, "uploadId=" + uri_encode (upload_id, false),
      reinterpret_cast<const guint8 *> (xml.data ()), xml.size (),
      {{"Content-Type", "application/xml"}}, nullptr);
  /* S3 may answer 200 with an <Error> body */
  if (r.ok () && r.body.find ("<Error>") != std::string::npos) {
    auto code = xml_values (r.body, "Code");
    r.status = 500;
    r.error = code.empty () ? "Error" : code[0];
  }
  if (r.ok ()) {
    auto e = xml_values (r.body, "ETag");
    *etag = e.empty () ? "" : strip_quotes (e[0]);
  }
  return r;
}

S3Result
S3Client::abort_multipart (const std::string &key, const std::string &upload_id)
{
  return perform ("DELETE", key, "uploadId=" + uri_encode (upload_id, false),
      nullptr, 0, {}, nullptr);
}

} // namespace zhost
