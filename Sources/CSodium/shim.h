#ifndef NIXBRIDGE_CSODIUM_SHIM_H
#define NIXBRIDGE_CSODIUM_SHIM_H
#include <sodium.h>
#endif
