/* retry.c — retry schedule arithmetic; see retry.h. */
#include "retry.h"

int64_t retry_delay(int64_t initial, int64_t max, int32_t attempts)
{
    if (initial <= 0)
        initial = 1;
    if (max < initial)
        max = initial;
    int64_t d = initial;
    /* Doubling stops at the cap, so no shift can overflow. */
    for (int32_t i = 1; i < attempts && d < max; i++)
        d *= 2;
    return d < max ? d : max;
}

int retry_expired(int64_t received, int64_t lifetime, int64_t now)
{
    return now - received >= lifetime;
}
