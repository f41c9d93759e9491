/* lwip_hooks.h — hook functions lwIP calls (LWIP_HOOK_FILENAME).
 *
 * Included by lwIP's own sources after their lwIP headers, so lwIP's types
 * are in scope. Each hook only adapts lwIP's types to a portable firmware
 * module; the logic lives there. */
#ifndef LWIP_HOOKS_H
#define LWIP_HOOKS_H

#include "lwip/ip_addr.h"

#include "../tcpisn.h"

/* LWIP_HOOK_TCP_ISN: RFC 6528 ISNs instead of lwIP's counter (tcpisn.h). */
static inline u32_t tcpisn_lwip_hook(const ip_addr_t *local_ip, u16_t local_port,
                                     const ip_addr_t *remote_ip, u16_t remote_port)
{
    struct tcpisn_tuple t = {.local_port = local_port, .remote_port = remote_port};
#if LWIP_IPV6
    if (IP_IS_V6(local_ip)) {
        t.local_addr = (const uint8_t *)ip_2_ip6(local_ip)->addr;
        t.remote_addr = (const uint8_t *)ip_2_ip6(remote_ip)->addr;
        t.addr_len = 16;
        return tcpisn_next(&t);
    }
#endif
    t.local_addr = (const uint8_t *)&ip_2_ip4(local_ip)->addr;
    t.remote_addr = (const uint8_t *)&ip_2_ip4(remote_ip)->addr;
    t.addr_len = 4;
    return tcpisn_next(&t);
}

#endif
