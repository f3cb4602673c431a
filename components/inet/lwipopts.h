/*
 * lwIP's build options for the inet component.  lwIP runs with NO_SYS:
 * no threads of its own, only the raw (callback) API.  Every call into
 * lwIP, from a NIC's receive thread, a session thread or the timer
 * thread, holds the stack's one lock (struct inet's core lock), so lwIP
 * itself needs no protection.
 *
 * Sized for speed over a TAP device with a 64 KiB MTU: the MSS can follow
 * the MTU (lwIP sends min(TCP_MSS, MTU - headers) on each interface), the
 * receive window is megabytes with window scaling, and the pools hold
 * several such windows.
 */
#ifndef RUMP_INET_LWIPOPTS_H
#define RUMP_INET_LWIPOPTS_H

#define NO_SYS                          1
#define SYS_LIGHTWEIGHT_PROT            0
#define LWIP_NETCONN                    0
#define LWIP_SOCKET                     0
#define LWIP_TIMERS                     1

/* ---- memory: lwIP's own heap and pools (static, in lwIP's data) ----- */
#define MEM_ALIGNMENT                   8
#define MEM_SIZE                        (48u * 1024u * 1024u)
#define MEMP_NUM_PBUF                   4096
#define MEMP_NUM_UDP_PCB                256
#define MEMP_NUM_TCP_PCB                512
#define MEMP_NUM_TCP_PCB_LISTEN         128
#define MEMP_NUM_TCP_SEG                16384
#define MEMP_NUM_REASSDATA              64
#define MEMP_NUM_FRAG_PBUF              256
#define MEMP_NUM_ARP_QUEUE              256
#define MEMP_NUM_ND6_QUEUE              256
#define MEMP_NUM_SYS_TIMEOUT            (LWIP_NUM_SYS_TIMEOUT_INTERNAL + 8)
#define PBUF_POOL_SIZE                  16384
/* One Ethernet frame of MTU 1500 per pool buffer; larger frames chain. */
#define PBUF_POOL_BUFSIZE               1536
#define LWIP_SUPPORT_CUSTOM_PBUF        1

/* ---- link layer ------------------------------------------------------ */
#define LWIP_ARP                        1
#define ARP_TABLE_SIZE                  64
#define ARP_QUEUEING                    1
#define ETHARP_SUPPORT_STATIC_ENTRIES   0
#define ETH_PAD_SIZE                    0
#define LWIP_NETIF_STATUS_CALLBACK      0
#define LWIP_NETIF_LINK_CALLBACK        0
#define LWIP_SINGLE_NETIF               0
#define LWIP_NETIF_HWADDRHINT           1
#define LWIP_NUM_NETIF_CLIENT_DATA      1

/* ---- IPv4 ------------------------------------------------------------ */
#define LWIP_IPV4                       1
#define IP_FORWARD                      0
#define IP_REASSEMBLY                   1
#define IP_FRAG                         1
#define IP_REASS_MAX_PBUFS              512
#define LWIP_ICMP                       1
#define LWIP_RAW                        0
#define LWIP_DHCP                       0
#define LWIP_AUTOIP                     0
#define LWIP_IGMP                       0
#define LWIP_DNS                        0

/* ---- IPv6 ------------------------------------------------------------ */
#define LWIP_IPV6                       1
#define LWIP_IPV6_NUM_ADDRESSES         4
#define LWIP_IPV6_FORWARD               0
#define LWIP_IPV6_FRAG                  1
#define LWIP_IPV6_REASS                 1
/* 64-bit pointers do not fit in the fragment header lwIP would reuse. */
#define IPV6_FRAG_COPYHEADER            1
#define LWIP_IPV6_MLD                   1
#define MEMP_NUM_MLD6_GROUP             16
#define LWIP_ICMP6                      1
#define LWIP_IPV6_AUTOCONFIG            0
#define LWIP_IPV6_DHCP6                 0
#define LWIP_IPV6_SEND_ROUTER_SOLICIT   0
/* Addresses are given on the command line and set preferred at once. */
#define LWIP_IPV6_DUP_DETECT_ATTEMPTS   0
#define LWIP_ND6_QUEUEING               1
#define LWIP_ND6_NUM_NEIGHBORS          64
#define LWIP_ND6_NUM_DESTINATIONS       64

/* ---- UDP and TCP ----------------------------------------------------- */
#define LWIP_UDP                        1
#define LWIP_UDPLITE                    0
#define LWIP_TCP                        1
/* The largest MSS any interface may use (MTU 65535 less IPv6 + TCP);
 * each connection sends min(this, its interface's MTU less headers). */
#define TCP_MSS                         65475
#define TCP_CALCULATE_EFF_SEND_MSS      1
#define LWIP_WND_SCALE                  1
#define TCP_RCV_SCALE                   7
#define TCP_WND                         (4u * 1024u * 1024u)
#define TCP_SND_BUF                     (4u * 1024u * 1024u)
/* Segments queued per connection: a full send buffer of 1460-byte
 * segments, with room for the odd small write. */
#define TCP_SND_QUEUELEN                8192
#define TCP_SNDLOWAT                    (TCP_SND_BUF / 4)
#define TCP_SNDQUEUELOWAT               (TCP_SND_QUEUELEN / 4)
#define TCP_QUEUE_OOSEQ                 1
#define TCP_OOSEQ_MAX_PBUFS             4096
#define TCP_LISTEN_BACKLOG              1
#define TCP_DEFAULT_LISTEN_BACKLOG      128
#define LWIP_TCP_SACK_OUT               0
#define TCP_OVERSIZE                    TCP_MSS
#define LWIP_TCP_TIMESTAMPS             1
#define LWIP_TCP_KEEPALIVE              1
#define SO_REUSE                        1
#define LWIP_SO_RCVBUF                  0
#define LWIP_CHECKSUM_ON_COPY           1
#define TCP_TMR_INTERVAL                100
#define LWIP_TCP_PCB_NUM_EXT_ARGS       0

/* ---- checksums: generated and checked in software -------------------- */
#define CHECKSUM_GEN_IP                 1
#define CHECKSUM_GEN_UDP                1
#define CHECKSUM_GEN_TCP                1
#define CHECKSUM_GEN_ICMP               1
#define CHECKSUM_GEN_ICMP6              1
#define CHECKSUM_CHECK_IP               1
#define CHECKSUM_CHECK_UDP              1
#define CHECKSUM_CHECK_TCP              1
#define CHECKSUM_CHECK_ICMP             1
#define CHECKSUM_CHECK_ICMP6            1

/* Checksums are summed 8 bytes at a time (sys_arch.c). */
#define LWIP_CHKSUM                     inet_sys_chksum

/* ---- static routes (inet_hooks.h) ------------------------------------ */
#define LWIP_HOOK_FILENAME              "inet_hooks.h"
#define LWIP_HOOK_IP4_ROUTE_SRC(src, dest) inet_hook_route4(dest)
#define LWIP_HOOK_ETHARP_GET_GW(netif, dest) inet_hook_gw4(netif, dest)
#define LWIP_HOOK_IP6_ROUTE(src, dest)  inet_hook_route6(dest)
#define LWIP_HOOK_ND6_GET_GW(netif, dest) inet_hook_gw6(netif, dest)

/* ---- misc ------------------------------------------------------------ */
#define LWIP_STATS                      0
#define LWIP_NETIF_API                  0
#define LWIP_HAVE_LOOPIF                0
#define LWIP_NETIF_LOOPBACK             0
#define LWIP_RAND()                     inet_sys_random()
/* The host C library provides htons and friends. */
#define LWIP_DONT_PROVIDE_BYTEORDER_FUNCTIONS 1

#endif /* RUMP_INET_LWIPOPTS_H */
