# lwip.cmake — lwIP 2.1.3 built from Debian's source package with our
# lwipopts.h. Only the parts the raw/altcp API needs; no sockets, no netconn.
# Debian's binary liblwip headers (/usr/include/lwip) must never be seen:
# our include directories come first and the library is built from LWIP_DIR.
set(LWIP_PORT_DIR ${CMAKE_SOURCE_DIR}/firmware/lwip_port)
set(lwip_srcs
  core/init.c core/def.c core/dns.c core/inet_chksum.c core/ip.c core/mem.c
  core/memp.c core/netif.c core/pbuf.c core/raw.c core/stats.c core/sys.c
  core/altcp.c core/altcp_alloc.c core/altcp_tcp.c core/tcp.c core/tcp_in.c
  core/tcp_out.c core/timeouts.c core/udp.c
  core/ipv4/autoip.c core/ipv4/dhcp.c core/ipv4/etharp.c core/ipv4/icmp.c
  core/ipv4/igmp.c core/ipv4/ip4_frag.c core/ipv4/ip4.c core/ipv4/ip4_addr.c
  api/err.c netif/ethernet.c apps/sntp/sntp.c
  apps/altcp_tls/altcp_tls_mbedtls.c apps/altcp_tls/altcp_tls_mbedtls_mem.c)
list(TRANSFORM lwip_srcs PREPEND ${LWIP_DIR}/src/)
add_library(lwip STATIC ${lwip_srcs})
target_include_directories(lwip BEFORE PUBLIC ${LWIP_PORT_DIR} ${LWIP_DIR}/src/include)
target_link_libraries(lwip PUBLIC mbedtls_all)
# lwIP's own flags: it warns against Debian's mbedTLS (deprecated APIs) and
# in places our -Wextra set would reject; -Werror is for our code only.
target_compile_options(lwip PRIVATE -w)
