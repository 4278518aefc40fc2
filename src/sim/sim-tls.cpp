/* zoomrtms-sim — self-signed certificate with OpenSSL 3 (see sim-tls.h). */
#define G_LOG_DOMAIN "zoomrtms-sim"

#include "sim-tls.h"

#include <gio/gio.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

namespace sim {

namespace {

struct PkeyDeleter {
  void operator() (EVP_PKEY *p) const { EVP_PKEY_free (p); }
};
struct X509Deleter {
  void operator() (X509 *x) const { X509_free (x); }
};
struct BioDeleter {
  void operator() (BIO *b) const { BIO_free (b); }
};

bool
add_ext (X509 *cert, int nid, const char *value)
{
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb (&ctx);
  X509V3_set_ctx (&ctx, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION *ext = X509V3_EXT_conf_nid (nullptr, &ctx, nid, value);
  if (!ext)
    return false;
  int ok = X509_add_ext (cert, ext, -1);
  X509_EXTENSION_free (ext);
  return ok == 1;
}

std::string
bio_string (BIO *bio)
{
  char *data = nullptr;
  long len = BIO_get_mem_data (bio, &data);
  return std::string (data, len > 0 ? len : 0);
}

} // namespace

bool
generate_self_signed (std::string *cert_pem, std::string *key_pem,
    GError **error)
{
  auto fail = [error](const char *what) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
        "TLS certificate generation failed: %s", what);
    return false;
  };
  std::unique_ptr<EVP_PKEY, PkeyDeleter> key (EVP_EC_gen ("P-256"));
  if (!key)
    return fail ("EC key");
  std::unique_ptr<X509, X509Deleter> cert (X509_new ());
  if (!cert)
    return fail ("X509_new");
  X509_set_version (cert.get (), 2);
  unsigned char serial[16];
  RAND_bytes (serial, sizeof serial);
  serial[0] &= 0x7f;
  BIGNUM *bn = BN_bin2bn (serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER (bn, X509_get_serialNumber (cert.get ()));
  BN_free (bn);
  X509_gmtime_adj (X509_getm_notBefore (cert.get ()), -3600);
  X509_gmtime_adj (X509_getm_notAfter (cert.get ()), 2 * 24 * 3600);
  X509_set_pubkey (cert.get (), key.get ());
  X509_NAME *name = X509_get_subject_name (cert.get ());
  X509_NAME_add_entry_by_txt (name, "O", MBSTRING_ASC,
      (const unsigned char *) "zoomrtms-sim", -1, -1, 0);
  X509_NAME_add_entry_by_txt (name, "CN", MBSTRING_ASC,
      (const unsigned char *) "localhost", -1, -1, 0);
  X509_set_issuer_name (cert.get (), name);
  if (!add_ext (cert.get (), NID_basic_constraints, "critical,CA:TRUE") ||
      !add_ext (cert.get (), NID_key_usage,
          "critical,digitalSignature,keyCertSign") ||
      !add_ext (cert.get (), NID_ext_key_usage, "serverAuth") ||
      !add_ext (cert.get (), NID_subject_alt_name,
          "DNS:localhost,IP:127.0.0.1,IP:::1") ||
      !add_ext (cert.get (), NID_subject_key_identifier, "hash"))
    return fail ("extensions");
  if (!X509_sign (cert.get (), key.get (), EVP_sha256 ()))
    return fail ("X509_sign");

  std::unique_ptr<BIO, BioDeleter> cb (BIO_new (BIO_s_mem ()));
  std::unique_ptr<BIO, BioDeleter> kb (BIO_new (BIO_s_mem ()));
  if (!PEM_write_bio_X509 (cb.get (), cert.get ()) ||
      !PEM_write_bio_PrivateKey (kb.get (), key.get (), nullptr, nullptr, 0,
          nullptr, nullptr))
    return fail ("PEM");
  *cert_pem = bio_string (cb.get ());
  *key_pem = bio_string (kb.get ());
  return true;
}

} // namespace sim
