/*
 * CRC32C for the log: slice-by-8 tables built once (pthread_once), and an
 * SSE4.2 path chosen at run time on x86-64. Both give identical results;
 * tests/unit/0301 compares them.
 */
#include "channels/log/crc32c.h"

#include <pthread.h>
#include <string.h>

#define POLY 0x82F63B78u

static uint32_t g_table[8][256];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_hw;

static void build_tables(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
        g_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = g_table[0][i];
        for (int t = 1; t < 8; t++) {
            c = g_table[0][c & 0xff] ^ (c >> 8);
            g_table[t][i] = c;
        }
    }
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    g_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#endif
}

uint32_t kn_crc32c_sw(uint32_t crc, const void *p, size_t n)
{
    const unsigned char *b = p;
    pthread_once(&g_once, build_tables);
    crc = ~crc;
    while (n >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, b, 4);
        memcpy(&hi, b + 4, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        lo = __builtin_bswap32(lo);
        hi = __builtin_bswap32(hi);
#endif
        lo ^= crc;
        crc = g_table[7][lo & 0xff] ^ g_table[6][(lo >> 8) & 0xff] ^
              g_table[5][(lo >> 16) & 0xff] ^ g_table[4][lo >> 24] ^
              g_table[3][hi & 0xff] ^ g_table[2][(hi >> 8) & 0xff] ^
              g_table[1][(hi >> 16) & 0xff] ^ g_table[0][hi >> 24];
        b += 8;
        n -= 8;
    }
    while (n--)
        crc = g_table[0][(crc ^ *b++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("sse4.2"))) static uint32_t
crc32c_hw(uint32_t crc, const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t c = ~crc;
    while (n > 0 && ((uintptr_t)b & 7)) {
        c = __builtin_ia32_crc32qi((uint32_t)c, *b++);
        n--;
    }
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, b, 8);
        c = __builtin_ia32_crc32di(c, v);
        b += 8;
        n -= 8;
    }
    while (n--)
        c = __builtin_ia32_crc32qi((uint32_t)c, *b++);
    return ~(uint32_t)c;
}
#endif

int kn_crc32c_hw_available(void)
{
    pthread_once(&g_once, build_tables);
    return g_hw;
}

uint32_t kn_crc32c(uint32_t crc, const void *p, size_t n)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (kn_crc32c_hw_available())
        return crc32c_hw(crc, p, n);
#endif
    return kn_crc32c_sw(crc, p, n);
}
