/*
 * Classic BPF (BSD's, as in Linux's struct sock_filter) for rumpnet's
 * per-client frame filters.  A program is checked once, when a client sets
 * it, so that running it on every frame needs no bounds checks on jumps.
 */
#ifndef RUMPNET_BPF_H
#define RUMPNET_BPF_H

#include <stddef.h>
#include <stdint.h>

#include "rump/proto_net.h"

/* 0 if insns[0..n) is a program bpf_run may run (jumps forward and in
 * range, known opcodes, scratch slots in range, ends in a return), else
 * EINVAL.  n == 0 is the program that accepts everything. */
int bpf_validate(const struct rump_net_bpf_insn *insns, size_t n);

/* Runs a validated program on pkt; returns the bytes to keep (0: drop).
 * Loads beyond the packet end the program with 0, as BSD does. */
uint32_t bpf_run(const struct rump_net_bpf_insn *insns, size_t n,
                 const uint8_t *pkt, size_t len);

#endif /* RUMPNET_BPF_H */
