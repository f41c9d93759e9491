/* cmd_net.c — net show, net set. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "commands.h"
#include "config.h"
#include "fwnet.h"

/* The addresses as text, made once for either form of `net show`. */
struct net_text {
    char mac[18];
    char addr[ADDR_IP4_STRLEN], mask[ADDR_IP4_STRLEN], gateway[ADDR_IP4_STRLEN];
    char dns[2][ADDR_IP4_STRLEN];
};

static void net_format(const struct fwnet_status *st, struct net_text *t)
{
    snprintf(t->mac, sizeof t->mac, "%02x:%02x:%02x:%02x:%02x:%02x", st->mac[0], st->mac[1],
             st->mac[2], st->mac[3], st->mac[4], st->mac[5]);
    addr_ip4_format(st->addr, t->addr);
    addr_ip4_format(st->mask, t->mask);
    addr_ip4_format(st->gateway, t->gateway);
    addr_ip4_format(st->dns[0], t->dns[0]);
    addr_ip4_format(st->dns[1], t->dns[1]);
}

/* The object of `net show`, left open for console_json_end(). */
static void json_net(struct jsonw *j, const struct fwnet_status *st, const struct net_text *t)
{
    jsonw_object(j, NULL);
    jsonw_string(j, "mode", st->mode == FWNET_DHCP ? "dhcp" : "static");
    /* Only a DHCP lease has a length; none yet, or a static address: absent. */
    if (st->mode == FWNET_DHCP && st->lease_s) {
        jsonw_uint(j, "lease_seconds", st->lease_s);
        jsonw_uint(j, "lease_left_seconds", st->lease_left_s);
    }
    jsonw_bool(j, "link_up", st->link_up);
    jsonw_string(j, "mac", t->mac);
    jsonw_string(j, "address", t->addr);
    jsonw_int(j, "prefix", addr_ip4_prefix(st->mask));
    jsonw_string(j, "mask", t->mask);
    jsonw_string(j, "gateway", t->gateway);
    jsonw_array(j, "dns");
    for (int i = 0; i < 2; i++)
        if (st->dns[i])
            jsonw_string(j, NULL, t->dns[i]);
    jsonw_end(j);
    jsonw_object(j, "frames");
    jsonw_uint(j, "rx", st->rx_frames);
    jsonw_uint(j, "tx", st->tx_frames);
    jsonw_uint(j, "rx_dropped", st->rx_dropped);
    jsonw_uint(j, "egress_dropped", st->egress_dropped);
    jsonw_end(j);
    jsonw_object(j, "ip");
    jsonw_uint(j, "rx", st->ip_rx);
    jsonw_uint(j, "tx", st->ip_tx);
    jsonw_uint(j, "dropped", st->ip_drop);
    jsonw_end(j);
    jsonw_object(j, "tcp");
    jsonw_uint(j, "rx", st->tcp_rx);
    jsonw_uint(j, "tx", st->tcp_tx);
    jsonw_uint(j, "dropped", st->tcp_drop);
    jsonw_uint(j, "memerr", st->tcp_memerr);
    jsonw_end(j);
}

static int cmd_net_show(struct console *con, int argc, char **argv)
{
    (void)argv;
    if (argc != 0)
        return console_usage(con);
    struct fwnet_status st;
    fwnet_status(&st);
    struct net_text t;
    net_format(&st, &t);
    struct jsonw *j = console_json(con);
    if (j) {
        json_net(j, &st, &t);
        console_json_end(con);
        return 0;
    }
    if (st.mode == FWNET_DHCP) {
        if (st.lease_s)
            console_printf(con, "mode     dhcp (lease %lu s, %lu s left)\n",
                           (unsigned long)st.lease_s, (unsigned long)st.lease_left_s);
        else
            console_printf(con, "mode     dhcp (no lease yet)\n");
    } else {
        console_printf(con, "mode     static\n");
    }
    console_printf(con, "link     %s\n", st.link_up ? "up" : "down");
    console_printf(con, "mac      %s\n", t.mac);
    console_printf(con, "address  %s/%d\n", t.addr, addr_ip4_prefix(st.mask));
    console_printf(con, "mask     %s\n", t.mask);
    console_printf(con, "gateway  %s\n", t.gateway);
    if (st.dns[1])
        console_printf(con, "dns      %s %s\n", t.dns[0], t.dns[1]);
    else
        console_printf(con, "dns      %s\n", st.dns[0] ? t.dns[0] : "none");
    console_printf(con, "frames   rx %llu tx %llu rx-dropped %llu egress-dropped %llu\n",
                   (unsigned long long)st.rx_frames, (unsigned long long)st.tx_frames,
                   (unsigned long long)st.rx_dropped, (unsigned long long)st.egress_dropped);
    console_printf(con, "ip       rx %lu tx %lu dropped %lu\n", (unsigned long)st.ip_rx,
                   (unsigned long)st.ip_tx, (unsigned long)st.ip_drop);
    console_printf(con, "tcp      rx %lu tx %lu dropped %lu memerr %lu\n", (unsigned long)st.tcp_rx,
                   (unsigned long)st.tcp_tx, (unsigned long)st.tcp_drop,
                   (unsigned long)st.tcp_memerr);
    return 0;
}

/* "A.B.C.D/N" with no host bits beyond what an interface address may have. */
static int parse_cidr_host(const char *text, uint32_t *addr, uint32_t *mask)
{
    char buf[32];
    const char *slash = strchr(text, '/');
    if (!slash || (size_t)(slash - text) >= sizeof buf)
        return -1;
    memcpy(buf, text, (size_t)(slash - text));
    buf[slash - text] = '\0';
    char *end;
    long prefix = strtol(slash + 1, &end, 10);
    if (slash[1] < '0' || slash[1] > '9' || *end || prefix < 1 || prefix > 30)
        return -1;
    if (addr_ip4_parse(buf, addr) != 0)
        return -1;
    *mask = addr_ip4_mask((unsigned)prefix);
    uint32_t host = *addr & ~*mask;
    /* Neither the network nor the broadcast address can be an interface's. */
    if (host == 0 || host == ~*mask)
        return -1;
    return 0;
}

/* Store the new configuration first, then apply it: a change that cannot
 * be stored is not made at all. */
static int save_and_apply(struct console *con, const struct cfg_net *net)
{
    char err[CFG_ERR_MAX];
    if (cfg_net_save(net, err, sizeof err) != 0)
        return console_error(con, "%s", err);
    if (net->static_mode)
        fwnet_use_static(net->addr, net->mask, net->gateway);
    else
        fwnet_use_dhcp();
    fwnet_set_dns(0, net->dns[0]);
    fwnet_set_dns(1, net->dns[1]);
    return 0;
}

/* net set dhcp | net set static <addr>/<prefix> <gateway> | net set dns <addr> [<addr>] | net set dns auto */
static int cmd_net_set(struct console *con, int argc, char **argv)
{
    struct cfg_net net;
    if (argc == 0)
        return console_usage(con);
    if (cfg_net_load(&net) != 0)
        return console_error(con, "storage is unavailable (see 'log')");
    if (argc == 1 && strcmp(argv[0], "dhcp") == 0) {
        net.static_mode = 0;
        if (save_and_apply(con, &net) != 0)
            return -1;
        console_printf(con, "ok: dhcp\n");
        return 0;
    }
    if (argc == 3 && strcmp(argv[0], "static") == 0) {
        uint32_t addr, mask, gw;
        if (parse_cidr_host(argv[1], &addr, &mask) != 0)
            return console_error(con, "'%s' is not an interface address like 192.0.2.10/24", argv[1]);
        if (addr_ip4_parse(argv[2], &gw) != 0)
            return console_error(con, "gateway '%s' is not an IPv4 address", argv[2]);
        if ((gw & mask) != (addr & mask) || gw == addr)
            return console_error(con, "gateway %s is not another host on %s", argv[2], argv[1]);
        net.static_mode = 1;
        net.addr = addr;
        net.mask = mask;
        net.gateway = gw;
        if (save_and_apply(con, &net) != 0)
            return -1;
        console_printf(con, "ok: static %s gateway %s\n", argv[1], argv[2]);
        return 0;
    }
    if ((argc == 2 || argc == 3) && strcmp(argv[0], "dns") == 0) {
        uint32_t dns[2] = {0, 0};
        int from_dhcp = argc == 2 && strcmp(argv[1], "auto") == 0;
        for (int i = 1; i < argc && !from_dhcp; i++)
            if (addr_ip4_parse(argv[i], &dns[i - 1]) != 0 || dns[i - 1] == 0)
                return console_error(con, "dns server '%s' is not an IPv4 address", argv[i]);
        net.dns[0] = dns[0];
        net.dns[1] = dns[1];
        if (save_and_apply(con, &net) != 0)
            return -1;
        if (from_dhcp)
            console_printf(con, "ok: dns from dhcp\n");
        else
            console_printf(con, "ok: dns %s%s%s\n", argv[1], argc == 3 ? " " : "",
                           argc == 3 ? argv[2] : "");
        return 0;
    }
    return console_usage(con);
}

const struct console_cmd cmd_net_table[] = {
    {"net", "show", "", "address, mask, gateway, DNS, link and frame counters", cmd_net_show},
    {"net", "set", "dhcp | static <addr>/<prefix> <gateway> | dns <addr> [<addr>] | dns auto",
     "network configuration", cmd_net_set},
    {NULL, NULL, NULL, NULL, NULL},
};
