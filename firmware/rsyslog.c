/* rsyslog.c — remote log over UDP (lwIP raw API); see rsyslog.h. */
#include "rsyslog.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "config.h"
#include "fwnet.h"
#include "hal_clock.h"
#include "log.h"
#include "lwip/dns.h"
#include "lwip/ip_addr.h"
#include "lwip/pbuf.h"
#include "lwip/udp.h"
#include "rsyslog_fmt.h"

#define MODULE "syslog"

enum target_state {
    T_NONE = 0,  /* no target set */
    T_LOOKUP,    /* a name, not yet resolved (or the lookup failed) */
    T_READY,     /* address known */
};

static struct {
    char setting[DB_TEXT_MAX];       /* the value the target was made from */
    char hostname[DB_NAME_MAX + 1];  /* HOSTNAME field: the hostname setting */
    char host[DB_TEXT_MAX];
    uint16_t port;
    int is_name;
    enum target_state state;
    ip_addr_t addr;
    /* Bumped at every target change, so that the answer to a lookup for
     * an old target is ignored (lwIP cannot cancel a lookup). */
    uint32_t gen;
    int lookup_pending;
    uint32_t lookup_at_ms;  /* next lookup due (name targets) */
    uint32_t reread_at_ms;
    int reread_now;
    struct udp_pcb *pcb;
    uint32_t sent, dropped, dropped_unreported;
    uint32_t reported_at_ms;
    int reported_once;
} rs;

static int due(uint32_t now, uint32_t at) { return (int32_t)(now - at) >= 0; }

static void drop(void)
{
    rs.dropped++;
    rs.dropped_unreported++;
}

/* The sink: one datagram per log line, or a counted drop. */
static void on_log(const struct log_entry *e, const char *module, int64_t queue_id)
{
    /* A settings change: look at the settings again in this loop turn. */
    if (strcmp(module, "config") == 0 && strncmp(e->text, "config: settings ", 17) == 0)
        rs.reread_now = 1;
    if (rs.state == T_NONE)
        return;
    if (rs.state != T_READY || !fwnet_ready()) {
        drop();
        return;
    }
    if (!rs.pcb) {
        rs.pcb = udp_new_ip_type(IPADDR_TYPE_V4);
        if (!rs.pcb) {
            drop();
            return;
        }
    }
    /* The entry holds "module: text"; MSGID carries the module. */
    const char *text = e->text;
    size_t ml = strlen(module);
    if (strncmp(text, module, ml) == 0 && text[ml] == ':' && text[ml + 1] == ' ')
        text += ml + 2;
    char qid[RSYSLOG_QID_MAX] = "";
    if (queue_id > 0) {
        /* Decimal by hand: no printf needed for a number. */
        char rev[RSYSLOG_QID_MAX];
        size_t n = 0;
        for (uint64_t v = (uint64_t)queue_id; v && n < sizeof rev - 1; v /= 10)
            rev[n++] = (char)('0' + v % 10);
        for (size_t i = 0; i < n; i++)
            qid[i] = rev[n - 1 - i];
        qid[n] = '\0';
    } else {
        rsyslog_queue_id(module, text, qid);
    }
    struct rsyslog_msg m = {
        .severity = rsyslog_severity(e->level),
        .wall = hal_clock_wall(),
        .hostname = rs.hostname,
        .msgid = module,
        .queue_id = qid,
        .text = text,
    };
    char buf[RSYSLOG_MSG_MAX];
    size_t len = rsyslog_format(buf, sizeof buf, &m);
    struct pbuf *p = len ? pbuf_alloc(PBUF_TRANSPORT, (u16_t)len, PBUF_RAM) : NULL;
    if (!p) {
        drop();
        return;
    }
    memcpy(p->payload, buf, len);
    err_t err = udp_sendto(rs.pcb, p, &rs.addr, rs.port);
    pbuf_free(p);
    if (err == ERR_OK)
        rs.sent++;
    else
        drop();
}

static void on_dns(const char *name, const ip_addr_t *addr, void *arg)
{
    (void)name;
    if ((uint32_t)(uintptr_t)arg != rs.gen)
        return; /* the target changed meanwhile */
    rs.lookup_pending = 0;
    uint32_t now = hal_clock_ms();
    if (addr && IP_IS_V4(addr)) {
        rs.addr = *addr;
        rs.state = T_READY;
        rs.lookup_at_ms = now + RSYSLOG_REFRESH_MS;
        return;
    }
    /* An address found before stays in use until a lookup succeeds. */
    rs.lookup_at_ms = now + RSYSLOG_RETRY_MS;
    log_warn(MODULE, "cannot resolve %s; %s", rs.host,
             rs.state == T_READY ? "still sending to its last address"
                                 : "log lines are not sent until it resolves");
}

static void start_lookup(uint32_t now)
{
    ip_addr_t a;
    rs.lookup_pending = 1;
    err_t err = dns_gethostbyname(rs.host, &a, on_dns, (void *)(uintptr_t)rs.gen);
    if (err == ERR_OK) {
        on_dns(rs.host, &a, (void *)(uintptr_t)rs.gen);
    } else if (err != ERR_INPROGRESS) {
        rs.lookup_pending = 0;
        rs.lookup_at_ms = now + RSYSLOG_RETRY_MS;
        log_warn(MODULE, "cannot look up %s (no DNS server?); retrying in %d s", rs.host,
                 RSYSLOG_RETRY_MS / 1000);
    }
}

/* Make the target from the setting's value (validated by config.c). */
static void set_target(const char *value)
{
    snprintf(rs.setting, sizeof rs.setting, "%s", value);
    rs.gen++;
    rs.lookup_pending = 0;
    rs.state = T_NONE;
    if (!value[0])
        return;
    uint32_t v4;
    if (rsyslog_parse_target(value, rs.host, sizeof rs.host, &rs.port) != 0) {
        log_warn(MODULE, "syslog-target is not host[:port]; remote log off");
        return;
    }
    if (addr_ip4_parse(rs.host, &v4) == 0) {
        ip_addr_set_ip4_u32(&rs.addr, lwip_htonl(v4));
        rs.is_name = 0;
        rs.state = T_READY;
    } else {
        rs.is_name = 1;
        rs.state = T_LOOKUP;
        rs.lookup_at_ms = hal_clock_ms(); /* now */
    }
}

static void reread_settings(void)
{
    char v[DB_TEXT_MAX], host[DB_NAME_MAX + 1];
    /* The hostname falls back to its default, as EHLO's does; an
     * unreadable target keeps what we had: a storage hiccup must not
     * silence (or redirect) the log. */
    if (cfg_setting_get("hostname", host, sizeof host) != -1)
        snprintf(rs.hostname, sizeof rs.hostname, "%s", host);
    if (cfg_setting_get("syslog-target", v, sizeof v) == 0 && strcmp(v, rs.setting) != 0) {
        set_target(v);
        if (rs.state != T_NONE)
            log_info(MODULE, "sending log lines to %s port %u", rs.host, (unsigned)rs.port);
    }
}

void rsyslog_init(void)
{
    memset(&rs, 0, sizeof rs);
    log_set_sink(on_log);
    /* Now, not at the first poll: the boot's lines from here on count as
     * dropped until the network is up, and that count is reported. */
    reread_settings();
    rs.reread_at_ms = hal_clock_ms() + RSYSLOG_REREAD_MS;
}

void rsyslog_poll(void)
{
    uint32_t now = hal_clock_ms();
    if (rs.reread_now || due(now, rs.reread_at_ms)) {
        rs.reread_now = 0;
        rs.reread_at_ms = now + RSYSLOG_REREAD_MS;
        reread_settings();
    }
    if (rs.state == T_NONE || !fwnet_ready())
        return;
    if (rs.is_name && !rs.lookup_pending && due(now, rs.lookup_at_ms))
        start_lookup(now);
    if (rs.state == T_READY && rs.dropped_unreported &&
        (!rs.reported_once || now - rs.reported_at_ms >= RSYSLOG_REPORT_MS)) {
        uint32_t n = rs.dropped_unreported;
        rs.dropped_unreported = 0;
        rs.reported_once = 1;
        rs.reported_at_ms = now;
        log_warn(MODULE, "%lu log line(s) were not sent (network not up, target not resolved "
                 "or out of buffers)", (unsigned long)n);
    }
}

void rsyslog_status(struct rsyslog_status *st)
{
    st->enabled = rs.state != T_NONE;
    st->resolved = rs.state == T_READY;
    st->sent = rs.sent;
    st->dropped = rs.dropped;
}
