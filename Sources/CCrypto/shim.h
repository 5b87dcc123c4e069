#ifndef NIXBRIDGE_CCRYPTO_SHIM_H
#define NIXBRIDGE_CCRYPTO_SHIM_H
// Only the EVP digest interface is used (SHA-256 with SHA-NI where the CPU has it).
#include <openssl/evp.h>
#endif
