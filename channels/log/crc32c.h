/*
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78) used by the log to
 * check segment headers and records. Hardware path (SSE4.2 crc32
 * instruction) when the CPU has it, else software slice-by-8.
 *
 * Thread-safe, no allocation. Internal to channels/log.
 */
#ifndef KNIT_LOG_CRC32C_H
#define KNIT_LOG_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues a CRC: start with crc = 0, feed pieces in order. */
uint32_t kn_crc32c(uint32_t crc, const void *p, size_t n);
/* The portable implementation (exposed so tests can compare paths). */
uint32_t kn_crc32c_sw(uint32_t crc, const void *p, size_t n);
/* True when kn_crc32c uses the hardware instruction. */
int kn_crc32c_hw_available(void);

#endif
