/* fwnet.c — lwIP glue: netif on hal_eth, DHCP/static, timers; see fwnet.h. */
#include "fwnet.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "clocksync.h"
#include "hal_clock.h"
#include "hal_eth.h"
#include "hal_reset.h"
#include "hal_rng.h"
#include "log.h"
#include "lwip/apps/sntp.h"
#include "lwip/dhcp.h"
#include "lwip/dns.h"
#include "lwip/etharp.h"
#include "lwip/init.h"
#include "lwip/mem.h"
#include "lwip/memp.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h" /* tcp_fasttmr(): fwnet_flush_acks() */
#include "lwip/prot/dhcp.h"
#include "lwip/stats.h"
#include "lwip/sys.h"
#include "lwip/timeouts.h"
#include "netif/ethernet.h"
#include "tcpisn.h"

static struct netif eth_netif;
static enum fwnet_mode mode;
static uint32_t last_link_poll_ms;
/* DNS servers set by the administrator; DHCP rewrites lwIP's list at every
 * ACK, so these are put back whenever they differ. 0 means "from DHCP". */
static uint32_t dns_override[DNS_MAX_SERVERS];
static void apply_dns_override(void);

#define LINK_POLL_MS 500 /* how often the MAC's link state is sampled */
#define NETIF_MTU 1500

/* --- lwIP platform hooks (arch/cc.h) --- */

u32_t sys_now(void) { return hal_clock_ms(); }

void fwnet_diag(const char *fmt, ...)
{
    char buf[LOG_TEXT_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    size_t n = strlen(buf);
    if (n && buf[n - 1] == '\n')
        buf[n - 1] = '\0';
    log_write(LOG_DEBUG, "lwip", "%s", buf);
}

void fwnet_assert(const char *msg, const char *file, int line)
{
    log_err("lwip", "assertion \"%s\" failed at %s:%d", msg, file, line);
    hal_reset();
}

uint32_t fwnet_rand(void)
{
    uint32_t v = 0;
    if (hal_rng_fill(&v, sizeof v) != 0)
        log_err("net", "rng failed; TCP ports and DHCP xids are predictable");
    return v;
}

/* --- SNTP (lwIP apps/sntp): the clock's source; clocksync.c decides --- */

/* lwIP keeps a pointer to a server name, not a copy. */
static char sntp_name[CLOCKSYNC_SERVER_MAX];

/* The transmit timestamp of a request, which a response must echo
 * (SNTP_CHECK_RESPONSE 2): seconds from the wall clock, microseconds
 * random, so an off-path sender cannot guess it to set our clock. */
void fwnet_sntp_get_time(uint32_t *sec, uint32_t *us)
{
    *sec = (uint32_t)hal_clock_wall();
    *us = fwnet_rand() % 1000000u;
}

void fwnet_sntp_set_time(uint32_t sec)
{
    char server[CLOCKSYNC_SERVER_MAX];
    const char *name = sntp_getservername(0);
    if (name)
        snprintf(server, sizeof server, "%s", name);
    else
        ipaddr_ntoa_r(sntp_getserver(0), server, sizeof server);
    clock_ntp_answer((int64_t)sec, server);
}

void fwnet_sntp_config(const char *server)
{
    sntp_stop();
    if (strcmp(server, "none") == 0) {
        sntp_servermode_dhcp(0);
        sntp_setserver(0, NULL);
        return;
    }
    if (!server[0]) {
        /* The server DHCP offers arrives with the next ACK: ask for one
         * now when a lease is held, as fwnet_set_dns does. */
        sntp_servermode_dhcp(1);
        sntp_setserver(0, NULL);
        if (mode == FWNET_DHCP && dhcp_supplied_address(&eth_netif))
            dhcp_renew(&eth_netif);
    } else {
        ip_addr_t a;
        sntp_servermode_dhcp(0);
        if (ipaddr_aton(server, &a)) {
            sntp_setserver(0, &a);
        } else {
            snprintf(sntp_name, sizeof sntp_name, "%s", server);
            sntp_setservername(0, sntp_name);
        }
    }
    sntp_setoperatingmode(SNTP_OPMODE_POLL);
    sntp_init();
}

/* --- netif driver --- */

static err_t eth_output(struct netif *netif, struct pbuf *p)
{
    (void)netif;
    uint8_t frame[HAL_ETH_FRAME_MAX];
    if (p->tot_len > sizeof frame)
        return ERR_BUF;
    pbuf_copy_partial(p, frame, p->tot_len, 0);
    if (hal_eth_send(frame, p->tot_len) != 0) {
        LINK_STATS_INC(link.drop);
        return ERR_IF;
    }
    LINK_STATS_INC(link.xmit);
    return ERR_OK;
}

static err_t eth_netif_init(struct netif *netif)
{
    netif->name[0] = 'e';
    netif->name[1] = 'n';
    netif->output = etharp_output;
    netif->linkoutput = eth_output;
    netif->mtu = NETIF_MTU;
    netif->hwaddr_len = ETH_HWADDR_LEN;
    hal_eth_mac(netif->hwaddr);
    netif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET;
    return ERR_OK;
}

static void netif_status_changed(struct netif *netif)
{
    if (!ip4_addr_isany_val(*netif_ip4_addr(netif)))
        log_info("net", "address %s", ip4addr_ntoa(netif_ip4_addr(netif)));
}

static void link_poll(void)
{
    int up = hal_eth_link_up();
    if (up && !netif_is_link_up(&eth_netif)) {
        netif_set_link_up(&eth_netif);
        log_info("net", "link up");
    } else if (!up && netif_is_link_up(&eth_netif)) {
        netif_set_link_down(&eth_netif);
        log_warn("net", "link down");
    }
}

int fwnet_init(const char *hostname)
{
    /* The ISN key must exist before lwIP can open or accept a connection;
     * without entropy tcpisn falls back to a random ISN per connection. */
    tcpisn_init();
    lwip_init();
    if (!netif_add(&eth_netif, IP4_ADDR_ANY4, IP4_ADDR_ANY4, IP4_ADDR_ANY4, NULL,
                   eth_netif_init, ethernet_input))
        return -1;
    netif_set_hostname(&eth_netif, hostname);
    netif_set_status_callback(&eth_netif, netif_status_changed);
    netif_set_default(&eth_netif);
    netif_set_up(&eth_netif);
    link_poll();
    last_link_poll_ms = hal_clock_ms();
    return fwnet_use_dhcp();
}

void fwnet_input(void)
{
    uint8_t frame[HAL_ETH_FRAME_MAX];
    int n;
    while ((n = hal_eth_recv(frame, sizeof frame)) > 0) {
        struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)n, PBUF_POOL);
        if (!p) {
            LINK_STATS_INC(link.memerr);
            continue;
        }
        pbuf_take(p, frame, (u16_t)n);
        LINK_STATS_INC(link.recv);
        if (eth_netif.input(p, &eth_netif) != ERR_OK)
            pbuf_free(p);
    }
    /* A DHCP ACK just processed sets DHCP's DNS servers: put an override
     * back before anything else in this loop turn (a lookup, `net show`)
     * sees DHCP's instead. */
    apply_dns_override();
}

/* lwIP delays an ACK until its next fast timer tick (up to 250 ms) unless
 * two segments came in or a reply carries it. A client that sends the
 * last, short segment of a message only once its earlier data is ACKed
 * (Nagle, as Postfix's smtp client does under TLS) then waits that long
 * for every message: 70 msg/s over the tap wire. Sending the delayed ACKs
 * once per loop turn, after the turn's replies went out with theirs, keeps
 * the batching and removes the wait. */
void fwnet_flush_acks(void) { tcp_fasttmr(); }

static void apply_dns_override(void)
{
    for (int i = 0; i < DNS_MAX_SERVERS; i++) {
        if (!dns_override[i])
            continue;
        const ip_addr_t *cur = dns_getserver((u8_t)i);
        if (!IP_IS_V4(cur) || lwip_ntohl(ip4_addr_get_u32(ip_2_ip4(cur))) != dns_override[i]) {
            ip_addr_t a;
            ip_addr_set_ip4_u32(&a, lwip_htonl(dns_override[i]));
            dns_setserver((u8_t)i, &a);
        }
    }
}

uint32_t fwnet_timers(void)
{
    sys_check_timeouts();
    apply_dns_override();
    uint32_t now = hal_clock_ms();
    if (now - last_link_poll_ms >= LINK_POLL_MS) {
        last_link_poll_ms = now;
        link_poll();
    }
    uint32_t next = sys_timeouts_sleeptime();
    uint32_t to_link = LINK_POLL_MS - (now - last_link_poll_ms);
    return next < to_link ? next : to_link;
}

static uint32_t host_order(const ip4_addr_t *a) { return lwip_ntohl(ip4_addr_get_u32(a)); }

int fwnet_ready(void)
{
    return netif_is_link_up(&eth_netif) && !ip4_addr_isany_val(*netif_ip4_addr(&eth_netif));
}

int fwnet_netif_up(void) { return netif_is_up(&eth_netif); }

void fwnet_status(struct fwnet_status *st)
{
    apply_dns_override();
    memset(st, 0, sizeof *st);
    st->mode = mode;
    st->link_up = netif_is_link_up(&eth_netif);
    memcpy(st->mac, eth_netif.hwaddr, 6);
    st->addr = host_order(netif_ip4_addr(&eth_netif));
    st->mask = host_order(netif_ip4_netmask(&eth_netif));
    st->gateway = host_order(netif_ip4_gw(&eth_netif));
    st->bound = st->addr != 0;
    for (int i = 0; i < 2; i++) {
        const ip_addr_t *d = dns_getserver((u8_t)i);
        st->dns[i] = IP_IS_V4(d) ? host_order(ip_2_ip4(d)) : 0;
    }
    struct dhcp *dhcp = netif_dhcp_data(&eth_netif);
    if (mode == FWNET_DHCP && dhcp && dhcp->state == DHCP_STATE_BOUND) {
        /* lwIP counts lease time in coarse ticks of DHCP_COARSE_TIMER_SECS. */
        st->lease_s = dhcp->offered_t0_lease;
        uint32_t used = (uint32_t)dhcp->lease_used * DHCP_COARSE_TIMER_SECS;
        st->lease_left_s = used < st->lease_s ? st->lease_s - used : 0;
    }
    struct hal_eth_stats es;
    hal_eth_stats(&es);
    st->rx_frames = es.rx_frames;
    st->tx_frames = es.tx_frames;
    st->rx_dropped = es.rx_dropped;
    st->egress_dropped = es.egress_dropped;
    st->ip_rx = lwip_stats.ip.recv;
    st->ip_tx = lwip_stats.ip.xmit;
    st->ip_drop = lwip_stats.ip.drop;
    st->tcp_rx = lwip_stats.tcp.recv;
    st->tcp_tx = lwip_stats.tcp.xmit;
    st->tcp_drop = lwip_stats.tcp.drop;
    st->tcp_memerr = lwip_stats.tcp.memerr;
}

/* Pool names from lwIP's own pool list, in memp_t order: lwIP keeps a
 * name in its stats only with LWIP_STATS_DISPLAY or LWIP_DEBUG, which
 * would also pull in printing code. */
static const char *const pool_names[] = {
#define LWIP_MEMPOOL(name, num, size, desc) desc,
#include "lwip/priv/memp_std.h"
};
_Static_assert(sizeof pool_names / sizeof pool_names[0] == MEMP_MAX, "a name per pool");
_Static_assert(MEMP_MAX <= FWNET_POOLS_MAX, "FWNET_POOLS_MAX holds every pool");

static void mem_copy(struct fwnet_mem *out, const char *name, const struct stats_mem *m)
{
    out->name = name;
    out->used = (uint32_t)m->used;
    out->max = (uint32_t)m->max;
    out->avail = (uint32_t)m->avail;
    out->err = (uint32_t)m->err;
}

int fwnet_mem_stats(struct fwnet_mem *heap, struct fwnet_mem *pools, int max)
{
    mem_copy(heap, "heap", &lwip_stats.mem);
    int n = 0;
    for (int i = 0; i < MEMP_MAX && n < max; i++)
        if (lwip_stats.memp[i]) /* set by memp_init() (lwip_init) */
            mem_copy(&pools[n++], pool_names[i], lwip_stats.memp[i]);
    return n;
}

int fwnet_use_dhcp(void)
{
    mode = FWNET_DHCP;
    if (dhcp_start(&eth_netif) != ERR_OK) {
        log_err("net", "dhcp_start failed");
        return -1;
    }
    log_info("net", "dhcp started");
    return 0;
}

int fwnet_use_static(uint32_t addr, uint32_t mask, uint32_t gateway)
{
    ip4_addr_t a, m, g;
    ip4_addr_set_u32(&a, lwip_htonl(addr));
    ip4_addr_set_u32(&m, lwip_htonl(mask));
    ip4_addr_set_u32(&g, lwip_htonl(gateway));
    if (!ip4_addr_netmask_valid(ip4_addr_get_u32(&m)))
        return -1;
    dhcp_release_and_stop(&eth_netif);
    netif_set_addr(&eth_netif, &a, &m, &g);
    mode = FWNET_STATIC;
    log_info("net", "static address %s", ip4addr_ntoa(&a));
    return 0;
}

int fwnet_set_dns(int index, uint32_t addr)
{
    if (index < 0 || index >= DNS_MAX_SERVERS)
        return -1;
    if (dns_override[index] == addr)
        return 0;
    dns_override[index] = addr;
    if (addr == 0) {
        /* Back to DHCP's server: lwIP learns it again at the next ACK, so
         * ask for one now if a lease is held (never before: a renew
         * without a lease would go to 0.0.0.0). */
        dns_setserver((u8_t)index, NULL);
        if (mode == FWNET_DHCP && dhcp_supplied_address(&eth_netif))
            dhcp_renew(&eth_netif);
    }
    apply_dns_override();
    return 0;
}
