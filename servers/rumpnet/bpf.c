/* Classic BPF: checker and interpreter, from the BSD bpf(4) description. */
#include <errno.h>

#include "bpf.h"

/* Instruction classes and fields (bpf(4)). */
#define BPF_CLASS(c) ((c) & 0x07)
#define BPF_LD   0x00
#define BPF_LDX  0x01
#define BPF_ST   0x02
#define BPF_STX  0x03
#define BPF_ALU  0x04
#define BPF_JMP  0x05
#define BPF_RET  0x06
#define BPF_MISC 0x07

#define BPF_SIZE(c) ((c) & 0x18)
#define BPF_W 0x00
#define BPF_H 0x08
#define BPF_B 0x10

#define BPF_MODE(c) ((c) & 0xe0)
#define BPF_IMM 0x00
#define BPF_ABS 0x20
#define BPF_IND 0x40
#define BPF_MEM 0x60
#define BPF_LEN 0x80
#define BPF_MSH 0xa0

#define BPF_OP(c) ((c) & 0xf0)
#define BPF_ADD 0x00
#define BPF_SUB 0x10
#define BPF_MUL 0x20
#define BPF_DIV 0x30
#define BPF_OR  0x40
#define BPF_AND 0x50
#define BPF_LSH 0x60
#define BPF_RSH 0x70
#define BPF_NEG 0x80
#define BPF_MOD 0x90
#define BPF_XOR 0xa0

#define BPF_JA   0x00
#define BPF_JEQ  0x10
#define BPF_JGT  0x20
#define BPF_JGE  0x30
#define BPF_JSET 0x40

#define BPF_SRC(c) ((c) & 0x08)
#define BPF_K 0x00
#define BPF_X 0x08

#define BPF_RVAL(c) ((c) & 0x18)
#define BPF_A 0x10

#define BPF_MISCOP(c) ((c) & 0xf8)
#define BPF_TAX 0x00
#define BPF_TXA 0x80

#define BPF_MEMWORDS 16

static int
valid_alu(uint16_t code, uint32_t k)
{
	switch (BPF_OP(code)) {
	case BPF_DIV:
	case BPF_MOD:
		/* A constant zero divisor is refused now; X is checked when
		 * it runs. */
		if (BPF_SRC(code) == BPF_K && k == 0)
			return 0;
		/* fallthrough */
	case BPF_ADD: case BPF_SUB: case BPF_MUL: case BPF_OR: case BPF_AND:
	case BPF_LSH: case BPF_RSH: case BPF_XOR:
		return code == (BPF_ALU | BPF_OP(code) | BPF_SRC(code));
	case BPF_NEG:
		return code == (BPF_ALU | BPF_NEG);
	default:
		return 0;
	}
}

int
bpf_validate(const struct rump_net_bpf_insn *insns, size_t n)
{
	size_t i;

	if (n > RUMP_NET_BPF_MAX)
		return EINVAL;
	for (i = 0; i < n; i++) {
		const struct rump_net_bpf_insn *p = &insns[i];
		size_t left = n - i - 1;    /* instructions after this one */

		if (p->code > 0xff)
			return EINVAL;

		switch (BPF_CLASS(p->code)) {
		case BPF_LD:
			switch (BPF_MODE(p->code)) {
			case BPF_ABS: case BPF_IND:
				if (BPF_SIZE(p->code) == 0x18)
					return EINVAL;
				break;
			case BPF_MEM:
				if (p->k >= BPF_MEMWORDS)
					return EINVAL;
				/* fallthrough */
			case BPF_IMM: case BPF_LEN:
				if (BPF_SIZE(p->code) != BPF_W)
					return EINVAL;
				break;
			default:
				return EINVAL;
			}
			break;
		case BPF_LDX:
			switch (p->code) {
			case BPF_LDX | BPF_W | BPF_IMM:
			case BPF_LDX | BPF_W | BPF_LEN:
			case BPF_LDX | BPF_B | BPF_MSH:
				break;
			case BPF_LDX | BPF_W | BPF_MEM:
				if (p->k >= BPF_MEMWORDS)
					return EINVAL;
				break;
			default:
				return EINVAL;
			}
			break;
		case BPF_ST:
		case BPF_STX:
			if ((p->code & ~0x07u) != 0 || p->k >= BPF_MEMWORDS)
				return EINVAL;
			break;
		case BPF_ALU:
			if (!valid_alu(p->code, p->k))
				return EINVAL;
			break;
		case BPF_JMP:
			if (BPF_OP(p->code) == BPF_JA) {
				if (p->code != (BPF_JMP | BPF_JA) ||
				    p->k >= left)
					return EINVAL;
				break;
			}
			switch (BPF_OP(p->code)) {
			case BPF_JEQ: case BPF_JGT: case BPF_JGE: case BPF_JSET:
				break;
			default:
				return EINVAL;
			}
			if (p->jt >= left || p->jf >= left)
				return EINVAL;
			break;
		case BPF_RET:
			if (p->code != (BPF_RET | BPF_K) &&
			    p->code != (BPF_RET | BPF_A))
				return EINVAL;
			break;
		case BPF_MISC:
			if (p->code != (BPF_MISC | BPF_TAX) &&
			    p->code != (BPF_MISC | BPF_TXA))
				return EINVAL;
			break;
		}
	}
	/* Every path ends in a return: jumps are forward and in range, so
	 * it is enough that the last instruction is one. */
	if (n > 0 && BPF_CLASS(insns[n - 1].code) != BPF_RET)
		return EINVAL;
	return 0;
}

static int
load(const uint8_t *pkt, size_t len, uint64_t off, unsigned size,
     uint32_t *out)
{
	if (off > len || size > len - off)
		return 0;
	if (size == 4)
		*out = (uint32_t)pkt[off] << 24 | (uint32_t)pkt[off + 1] << 16 |
		    (uint32_t)pkt[off + 2] << 8 | pkt[off + 3];
	else if (size == 2)
		*out = (uint32_t)pkt[off] << 8 | pkt[off + 1];
	else
		*out = pkt[off];
	return 1;
}

uint32_t
bpf_run(const struct rump_net_bpf_insn *insns, size_t n, const uint8_t *pkt,
        size_t len)
{
	uint32_t a = 0, x = 0, mem[BPF_MEMWORDS] = { 0 }, v, src;
	size_t pc;
	unsigned size;

	if (n == 0)
		return len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;
	for (pc = 0; pc < n; pc++) {
		const struct rump_net_bpf_insn *p = &insns[pc];

		switch (BPF_CLASS(p->code)) {
		case BPF_LD:
			size = BPF_SIZE(p->code) == BPF_W ? 4 :
			    BPF_SIZE(p->code) == BPF_H ? 2 : 1;
			switch (BPF_MODE(p->code)) {
			case BPF_ABS:
				if (!load(pkt, len, p->k, size, &a))
					return 0;
				break;
			case BPF_IND:
				if (!load(pkt, len, (uint64_t)x + p->k, size,
				          &a))
					return 0;
				break;
			case BPF_IMM:
				a = p->k;
				break;
			case BPF_LEN:
				a = (uint32_t)len;
				break;
			case BPF_MEM:
				a = mem[p->k];
				break;
			}
			break;
		case BPF_LDX:
			switch (BPF_MODE(p->code)) {
			case BPF_IMM:
				x = p->k;
				break;
			case BPF_LEN:
				x = (uint32_t)len;
				break;
			case BPF_MEM:
				x = mem[p->k];
				break;
			case BPF_MSH:
				if (!load(pkt, len, p->k, 1, &v))
					return 0;
				x = (v & 0xf) << 2;
				break;
			}
			break;
		case BPF_ST:
			mem[p->k] = a;
			break;
		case BPF_STX:
			mem[p->k] = x;
			break;
		case BPF_ALU:
			src = BPF_SRC(p->code) == BPF_X ? x : p->k;
			switch (BPF_OP(p->code)) {
			case BPF_ADD: a += src; break;
			case BPF_SUB: a -= src; break;
			case BPF_MUL: a *= src; break;
			case BPF_DIV:
				if (src == 0)
					return 0;
				a /= src;
				break;
			case BPF_MOD:
				if (src == 0)
					return 0;
				a %= src;
				break;
			case BPF_OR: a |= src; break;
			case BPF_AND: a &= src; break;
			case BPF_LSH: a = src >= 32 ? 0 : a << src; break;
			case BPF_RSH: a = src >= 32 ? 0 : a >> src; break;
			case BPF_XOR: a ^= src; break;
			case BPF_NEG: a = (uint32_t)-a; break;
			}
			break;
		case BPF_JMP:
			src = BPF_SRC(p->code) == BPF_X ? x : p->k;
			switch (BPF_OP(p->code)) {
			case BPF_JA:
				pc += p->k;
				break;
			case BPF_JEQ:
				pc += a == src ? p->jt : p->jf;
				break;
			case BPF_JGT:
				pc += a > src ? p->jt : p->jf;
				break;
			case BPF_JGE:
				pc += a >= src ? p->jt : p->jf;
				break;
			case BPF_JSET:
				pc += (a & src) ? p->jt : p->jf;
				break;
			}
			break;
		case BPF_RET:
			return BPF_RVAL(p->code) == BPF_A ? a : p->k;
		case BPF_MISC:
			if (BPF_MISCOP(p->code) == BPF_TAX)
				x = a;
			else
				a = x;
			break;
		}
	}
	return 0; /* not reached for a validated program */
}
