/*
 * fuzz_retry_after: Retry-After values come from subscribers (untrusted).
 * Any input must parse or be refused without crashing, and an accepted
 * value is a delay >= 0 that never exceeds the saturated maximum.
 */
#include <stdint.h>
#include <stdlib.h>

#include "sinks/sinks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const int64_t nows[] = {0, 784111777000LL, INT64_MAX / 2};
    kn_delivery_spec spec;
    kn_delivery_spec_default(&spec);
    for (size_t i = 0; i < sizeof nows / sizeof *nows; i++) {
        int64_t ms = -1;
        int rc = kn_retry_after_parse((const char *)data, size, nows[i], &ms);
        if (rc == KN_OK && ms < 0)
            abort();
        if (rc != KN_OK && rc != KN_PARSE)
            abort();
        int64_t d = kn_retry_delay_ms(&spec, 1, 429, rc == KN_OK ? ms : -1);
        if (d < 0 || d > spec.retry_after_max_ms)
            abort();
    }
    return 0;
}
