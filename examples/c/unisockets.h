/*
 * unisockets.h: Berkeley sockets for WebAssembly guests of a unisockets host.
 *
 * Source-compatible with the original unisockets C header: the same seven
 * functions, the same macros; and two more for datagram sockets
 * (SOCK_DGRAM: UDP-like, see docs/wasm.md), sendto() and recvfrom().
 * bind(), connect(), send() and recv() work on datagram sockets too.
 *
 *   UNISOCKETS_WITH_ALIAS          socket(), bind(), ... call the unisockets_* imports
 *   UNISOCKETS_WITH_INVERSE_ALIAS  unisockets_*() are the system's socket calls
 *                                  (build the same program natively)
 *   UNISOCKETS_WITH_CUSTOM_ARPA_INET
 *                                  no libc: this header defines the types and the
 *                                  Linux constant values itself
 *
 * The functions are imported from the module "env" (see docs/wasm.md). They
 * follow POSIX: on failure they return -1 and set errno (the host writes the
 * guest's exported `errno`: link with -Wl,--export=errno). shutdown() and
 * close() are the libc's (WASI sock_shutdown and fd_close, which the host
 * handles for socket descriptors).
 */
#ifndef UNISOCKETS_H
#define UNISOCKETS_H

#ifdef UNISOCKETS_WITH_CUSTOM_ARPA_INET
typedef long ssize_t;
typedef unsigned long size_t;
typedef unsigned int socklen_t;
typedef unsigned short sa_family_t;
typedef unsigned char uint8_t;
typedef unsigned short uint16_t;
typedef unsigned int uint32_t;
typedef uint16_t in_port_t;
typedef uint32_t in_addr_t;

struct sockaddr {
  sa_family_t sa_family;
  char sa_data[14];
};

struct in_addr {
  in_addr_t s_addr;
};

struct sockaddr_in {
  sa_family_t sin_family;
  in_port_t sin_port;
  struct in_addr sin_addr;
  uint8_t sin_zero[8];
};

/* Linux's values; the host accepts these as well as wasi-libc's. */
#define PF_INET 2
#define AF_INET PF_INET
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define IPPROTO_UDP 17
#define SHUT_RD 0
#define SHUT_WR 1
#define SHUT_RDWR 2

static inline uint16_t htons(uint16_t value) {
  return (uint16_t)((value >> 8) | (value << 8));
}
#define ntohs htons
#else
#include <arpa/inet.h>
#include <sys/socket.h>
#endif

typedef struct sockaddr sockaddr;
typedef struct sockaddr_in sockaddr_in;
typedef struct in_addr in_addr;

#ifdef __wasm__
#define UNISOCKETS_IMPORT(name)                                                \
  __attribute__((import_module("env"), import_name(#name)))
#else
#define UNISOCKETS_IMPORT(name)
#endif

#ifndef UNISOCKETS_WITH_INVERSE_ALIAS
UNISOCKETS_IMPORT(unisockets_socket)
int unisockets_socket(int domain, int type, int protocol);
UNISOCKETS_IMPORT(unisockets_connect)
int unisockets_connect(int fd, const struct sockaddr *address,
                       socklen_t address_length);
UNISOCKETS_IMPORT(unisockets_send)
ssize_t unisockets_send(int fd, const void *buffer, size_t length, int flags);
UNISOCKETS_IMPORT(unisockets_recv)
ssize_t unisockets_recv(int fd, void *buffer, size_t length, int flags);
UNISOCKETS_IMPORT(unisockets_bind)
int unisockets_bind(int fd, const struct sockaddr *address,
                    socklen_t address_length);
UNISOCKETS_IMPORT(unisockets_listen)
int unisockets_listen(int fd, int backlog);
UNISOCKETS_IMPORT(unisockets_accept)
int unisockets_accept(int fd, struct sockaddr *address,
                      socklen_t *address_length);
UNISOCKETS_IMPORT(unisockets_sendto)
ssize_t unisockets_sendto(int fd, const void *buffer, size_t length, int flags,
                          const struct sockaddr *address,
                          socklen_t address_length);
UNISOCKETS_IMPORT(unisockets_recvfrom)
ssize_t unisockets_recvfrom(int fd, void *buffer, size_t length, int flags,
                            struct sockaddr *address,
                            socklen_t *address_length);
#endif

#ifdef UNISOCKETS_WITH_ALIAS
#define socket unisockets_socket
#define connect unisockets_connect
#define send unisockets_send
#define recv unisockets_recv
#define bind unisockets_bind
#define listen unisockets_listen
#define accept unisockets_accept
#define sendto unisockets_sendto
#define recvfrom unisockets_recvfrom
#endif

#ifdef UNISOCKETS_WITH_INVERSE_ALIAS
#define unisockets_socket socket
#define unisockets_connect connect
#define unisockets_send send
#define unisockets_recv recv
#define unisockets_bind bind
#define unisockets_listen listen
#define unisockets_accept accept
#define unisockets_sendto sendto
#define unisockets_recvfrom recvfrom
#endif

#endif /* UNISOCKETS_H */
