#ifndef LLM_PROXY_CLINUX_SHIM_H
#define LLM_PROXY_CLINUX_SHIM_H
// Linux-only system calls that Glibc's Swift module does not export.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <pthread.h>
#include <sched.h>

extern int accept4(int sockfd, struct sockaddr *addr, socklen_t *addrlen, int flags);
extern int pthread_setname_np(pthread_t thread, const char *name);

/// Socket type flags as plain ints: the `__socket_type` constants can go missing from Swift files that
/// import both this module and Glibc, depending on which module claimed the header first in a build.
static const int llmp_sock_stream = SOCK_STREAM;
static const int llmp_sock_nonblock_cloexec = SOCK_NONBLOCK | SOCK_CLOEXEC;

static inline int llmp_epoll_event_fd(const struct epoll_event *e) { return e->data.fd; }
static inline uint64_t llmp_epoll_event_u64(const struct epoll_event *e) { return e->data.u64; }

#endif
