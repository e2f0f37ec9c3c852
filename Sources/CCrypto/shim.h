#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/hmac.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/core_names.h>
#include <openssl/params.h>

// SHA-256 with its context on the stack. EVP_Digest allocates a context and its state on every call
// (three allocations per proxied request, for the key hash); the SHA256_* functions, deprecated in
// OpenSSL 3 in favour of EVP, run the same assembly without touching the heap.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static inline void llmp_sha256(const void *data, size_t length, unsigned char out[32]) {
    SHA256_CTX context;
    SHA256_Init(&context);
    SHA256_Update(&context, data, length);
    SHA256_Final(out, &context);
}
#pragma GCC diagnostic pop
