/*
 * delay-line: one-way delay, jitter and loss for the packets an iptables NFQUEUE rule hands it,
 * for kernels built without sch_netem (Firecracker-style VMs, some CI runners).
 *
 * The kernel keeps every queued packet; this process only decides when to release it (verdict
 * ACCEPT at arrival + delay +- jitter) or to drop it. So TCP sees a real longer path (its ACKs,
 * running through the peer's delay line, are late too) and no bytes are copied through user
 * space. Releases keep arrival order: jitter stretches gaps but never reorders a stream, as on
 * a path with a single queue. Bandwidth is not shaped here: netns-cluster.sh puts a tbf qdisc
 * after the hook for that.
 *
 * Speaks the nfnetlink_queue protocol over a raw netlink socket, so it needs no
 * libnetfilter_queue. Build: cc -O2 -o delay-line delay-line.c
 * Use:   delay-line --queue 0 --delay-us 5000 [--jitter-us 500] [--loss 0.1] [--seed 1]
 *        (loss in percent), with e.g. iptables -t mangle -A PREROUTING -i eth0 -j NFQUEUE --queue-num 0
 * Hook it where packets arrive: held on the sending side they would count against the sender's
 * TCP small-queues budget and stall the rest of its burst (netem orphans delayed packets for that).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested = 0;
static void on_signal(int sig) { (void)sig; stop_requested = 1; }

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: deterministic per --seed, good enough for loss and jitter draws. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static double uniform01(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
}

/* Packets waiting for their release time; due times never decrease, so a ring is a queue. */
typedef struct { uint32_t id; uint64_t due; } held_packet;
static held_packet *ring;
static size_t ring_cap, ring_head, ring_len;

static int push_packet(uint32_t id, uint64_t due) {
    if (ring_len == ring_cap) return -1;
    ring[(ring_head + ring_len) % ring_cap] = (held_packet){id, due};
    ring_len++;
    return 0;
}

typedef struct {
    int fd;
    uint16_t queue;
    uint32_t seq;
} nfq_socket;

/* Appends one netlink attribute at buf+*len (aligned), returns 0 or -1 when it does not fit. */
static int put_attr(char *buf, size_t cap, size_t *len, uint16_t type, const void *data, uint16_t size) {
    size_t total = NLA_ALIGN(NLA_HDRLEN + size);
    if (*len + total > cap) return -1;
    struct nlattr *a = (struct nlattr *)(buf + *len);
    a->nla_type = type;
    a->nla_len = (uint16_t)(NLA_HDRLEN + size);
    memcpy((char *)a + NLA_HDRLEN, data, size);
    memset((char *)a + NLA_HDRLEN + size, 0, total - NLA_HDRLEN - size);
    *len += total;
    return 0;
}

/* Starts a message of `type` for this queue in buf; returns its length so far. */
static size_t begin_message(nfq_socket *s, char *buf, uint16_t type, uint16_t flags) {
    struct nlmsghdr *h = (struct nlmsghdr *)buf;
    memset(buf, 0, NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg)));
    h->nlmsg_type = (uint16_t)((NFNL_SUBSYS_QUEUE << 8) | type);
    h->nlmsg_flags = (uint16_t)(NLM_F_REQUEST | flags);
    h->nlmsg_seq = ++s->seq;
    struct nfgenmsg *g = (struct nfgenmsg *)NLMSG_DATA(h);
    g->nfgen_family = AF_UNSPEC;
    g->version = NFNETLINK_V0;
    g->res_id = htons(s->queue);
    return NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg));
}

static int send_message(nfq_socket *s, char *buf, size_t len) {
    ((struct nlmsghdr *)buf)->nlmsg_len = (uint32_t)len;
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    return sendto(s->fd, buf, len, 0, (struct sockaddr *)&kernel, sizeof kernel) == (ssize_t)len ? 0 : -1;
}

/* Sends a config message and waits for the kernel's acknowledgement, so errors name the step. */
static int configure(nfq_socket *s, const char *what, char *buf, size_t len) {
    if (send_message(s, buf, len) != 0) { fprintf(stderr, "delay-line: %s: send: %s\n", what, strerror(errno)); return -1; }
    char reply[4096];
    for (;;) {
        ssize_t n = recv(s->fd, reply, sizeof reply, 0);
        if (n < 0) { if (errno == EINTR) continue; fprintf(stderr, "delay-line: %s: %s\n", what, strerror(errno)); return -1; }
        for (struct nlmsghdr *h = (struct nlmsghdr *)reply; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type == NLMSG_ERROR) {
                struct nlmsgerr *e = (struct nlmsgerr *)NLMSG_DATA(h);
                if (e->error != 0) { fprintf(stderr, "delay-line: %s: %s\n", what, strerror(-e->error)); return -1; }
                return 0;
            }
        }
    }
}

static int bind_queue(nfq_socket *s, uint32_t max_len) {
    char buf[256];
    size_t len = begin_message(s, buf, NFQNL_MSG_CONFIG, NLM_F_ACK);
    struct nfqnl_msg_config_cmd cmd = {.command = NFQNL_CFG_CMD_BIND, .pf = htons(AF_INET)};
    put_attr(buf, sizeof buf, &len, NFQA_CFG_CMD, &cmd, sizeof cmd);
    if (configure(s, "bind queue (is another delay-line on it?)", buf, len) != 0) return -1;

    /* Metadata only: the verdict needs the packet id, never the bytes. */
    len = begin_message(s, buf, NFQNL_MSG_CONFIG, NLM_F_ACK);
    struct nfqnl_msg_config_params params = {.copy_range = htonl(0), .copy_mode = NFQNL_COPY_META};
    put_attr(buf, sizeof buf, &len, NFQA_CFG_PARAMS, &params, sizeof params);
    uint32_t maxlen = htonl(max_len);
    put_attr(buf, sizeof buf, &len, NFQA_CFG_QUEUE_MAXLEN, &maxlen, sizeof maxlen);
    /* Whole GSO super-packets: one verdict each instead of one per segment. */
    uint32_t flags = htonl(NFQA_CFG_F_GSO), mask = htonl(NFQA_CFG_F_GSO);
    put_attr(buf, sizeof buf, &len, NFQA_CFG_FLAGS, &flags, sizeof flags);
    put_attr(buf, sizeof buf, &len, NFQA_CFG_MASK, &mask, sizeof mask);
    return configure(s, "set queue parameters", buf, len);
}

static int verdict(nfq_socket *s, uint32_t id, uint32_t v) {
    char buf[128];
    size_t len = begin_message(s, buf, NFQNL_MSG_VERDICT, 0);
    struct nfqnl_msg_verdict_hdr vh = {.verdict = htonl(v), .id = htonl(id)};
    put_attr(buf, sizeof buf, &len, NFQA_VERDICT_HDR, &vh, sizeof vh);
    return send_message(s, buf, len);
}

static void usage(void) {
    fprintf(stderr, "usage: delay-line --queue N --delay-us D [--jitter-us J] [--loss PERCENT] [--seed S] [--max-held N]\n");
    exit(2);
}

int main(int argc, char **argv) {
    long queue = -1;
    double delay_us = -1, jitter_us = 0, loss_percent = 0;
    long max_held = 65536;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) usage();
        const char *v = argv[++i];
        char *end = NULL;
        if (!strcmp(a, "--queue")) queue = strtol(v, &end, 10);
        else if (!strcmp(a, "--delay-us")) delay_us = strtod(v, &end);
        else if (!strcmp(a, "--jitter-us")) jitter_us = strtod(v, &end);
        else if (!strcmp(a, "--loss")) loss_percent = strtod(v, &end);
        else if (!strcmp(a, "--seed")) rng_state = strtoull(v, &end, 10) * 0x9E3779B97F4A7C15ull + 1;
        else if (!strcmp(a, "--max-held")) max_held = strtol(v, &end, 10);
        else usage();
        if (!end || *end) { fprintf(stderr, "delay-line: %s: not a number: '%s'\n", a, v); return 2; }
    }
    if (queue < 0 || queue > 65535 || delay_us < 0 || jitter_us < 0 || loss_percent < 0 || loss_percent > 100 || max_held < 16) usage();

    ring_cap = (size_t)max_held;
    ring = calloc(ring_cap, sizeof *ring);
    if (!ring) { fprintf(stderr, "delay-line: out of memory\n"); return 1; }

    /* Wake-ups are the whole job: ask for exact timers and, where allowed, to run ahead of the
     * emulated hosts' busy threads (netem does this work in softirq context). */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    struct sched_param sp = {.sched_priority = 10};
    if (sched_setscheduler(0, SCHED_FIFO, &sp) != 0)
        fprintf(stderr, "delay-line: running without real-time priority (%s): delays will stretch under load\n", strerror(errno));

    nfq_socket s = {.queue = (uint16_t)queue};
    s.fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
    if (s.fd < 0) { fprintf(stderr, "delay-line: netlink socket: %s\n", strerror(errno)); return 1; }
    int rcvbuf = 8 << 20;
    setsockopt(s.fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);
    int one = 1;
    setsockopt(s.fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof one);
    struct sockaddr_nl local = {.nl_family = AF_NETLINK};
    if (bind(s.fd, (struct sockaddr *)&local, sizeof local) != 0) { fprintf(stderr, "delay-line: bind: %s\n", strerror(errno)); return 1; }
    if (bind_queue(&s, (uint32_t)max_held) != 0) return 1;

    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    /* A parent may have blocked these (test runners do); teardown must be able to stop us. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    sigprocmask(SIG_UNBLOCK, &stop_signals, NULL);
    fprintf(stderr, "delay-line: queue %ld, delay %.0f us, jitter %.0f us, loss %.3f%%\n", queue, delay_us, jitter_us, loss_percent);

    const uint64_t delay_ns = (uint64_t)(delay_us * 1000.0), jitter_ns = (uint64_t)(jitter_us * 1000.0);
    uint64_t last_due = 0, released = 0, dropped = 0;
    static char buf[1 << 16];
    while (!stop_requested) {
        /* Release everything due, then sleep until the next due time or the next packet. */
        uint64_t now = now_ns();
        while (ring_len > 0 && ring[ring_head].due <= now) {
            if (verdict(&s, ring[ring_head].id, NF_ACCEPT) != 0 && errno != ENOENT)
                fprintf(stderr, "delay-line: verdict: %s\n", strerror(errno));
            ring_head = (ring_head + 1) % ring_cap;
            ring_len--;
            released++;
        }
        struct timespec timeout, *tp = NULL;
        if (ring_len > 0) {
            uint64_t wait = ring[ring_head].due - now;
            timeout.tv_sec = (time_t)(wait / 1000000000ull);
            timeout.tv_nsec = (long)(wait % 1000000000ull);
            tp = &timeout;
        }
        struct pollfd pfd = {.fd = s.fd, .events = POLLIN};
        int ready = ppoll(&pfd, 1, tp, NULL);
        if (ready < 0) { if (errno == EINTR) continue; fprintf(stderr, "delay-line: poll: %s\n", strerror(errno)); break; }
        if (ready == 0) continue;
        ssize_t n = recv(s.fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0) { if (errno == EINTR || errno == EAGAIN) continue; fprintf(stderr, "delay-line: recv: %s\n", strerror(errno)); break; }
        uint64_t arrival = now_ns();
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
            if ((h->nlmsg_type & 0xff) != NFQNL_MSG_PACKET || (h->nlmsg_type >> 8) != NFNL_SUBSYS_QUEUE) continue;
            char *attrs = (char *)NLMSG_DATA(h) + NLMSG_ALIGN(sizeof(struct nfgenmsg));
            int remaining = (int)h->nlmsg_len - (int)(attrs - (char *)h);
            int have_id = 0;
            uint32_t id = 0;
            for (struct nlattr *a = (struct nlattr *)attrs; remaining >= (int)NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= remaining;
                 remaining -= NLA_ALIGN(a->nla_len), a = (struct nlattr *)((char *)a + NLA_ALIGN(a->nla_len))) {
                if ((a->nla_type & NLA_TYPE_MASK) == NFQA_PACKET_HDR && a->nla_len >= NLA_HDRLEN + sizeof(struct nfqnl_msg_packet_hdr)) {
                    struct nfqnl_msg_packet_hdr ph;
                    memcpy(&ph, (char *)a + NLA_HDRLEN, sizeof ph);
                    id = ntohl(ph.packet_id);
                    have_id = 1;
                }
            }
            if (!have_id) continue;
            if (loss_percent > 0 && uniform01() * 100.0 < loss_percent) {
                verdict(&s, id, NF_DROP);
                dropped++;
                continue;
            }
            double shift = jitter_ns ? (uniform01() * 2.0 - 1.0) * (double)jitter_ns : 0.0;
            double due_d = (double)arrival + (double)delay_ns + shift;
            uint64_t due = due_d < (double)arrival ? arrival : (uint64_t)due_d;
            if (due < last_due) due = last_due;  /* no reordering within the link */
            last_due = due;
            if (push_packet(id, due) != 0) {  /* more held than --max-held: a full router queue drops */
                verdict(&s, id, NF_DROP);
                dropped++;
            }
        }
    }
    /* Let held packets go rather than strand them when stopped on purpose. */
    while (ring_len > 0) {
        verdict(&s, ring[ring_head].id, NF_ACCEPT);
        ring_head = (ring_head + 1) % ring_cap;
        ring_len--;
    }
    fprintf(stderr, "delay-line: stopped after %llu released, %llu dropped\n", (unsigned long long)released, (unsigned long long)dropped);
    close(s.fd);
    return 0;
}
