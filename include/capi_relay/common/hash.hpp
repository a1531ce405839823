#pragma once
// SHA-256 (OpenSSL EVP, SHA-NI where the CPU has it) and CRC-32C helpers.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace capi_relay {

using Sha256Digest = std::array<uint8_t, 32>;

Sha256Digest sha256(std::string_view data);
// 64 lowercase hex characters written to out[0..64).
void sha256_hex(std::string_view data, char out[64]);
std::string sha256_hex(std::string_view data);
// Lowercase hex of arbitrary bytes.
std::string to_hex(const uint8_t* data, size_t n);

// CRC-32C (Castagnoli), used to checksum spool and journal records.
uint32_t crc32c(const void* data, size_t n, uint32_t seed = 0);

}  // namespace capi_relay
