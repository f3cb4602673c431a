#!/usr/bin/env bash
# Building a C project inside the mount (make -j2: many small files
# created, read, renamed and removed by concurrent compilers), then two
# clients at once: two rumpfuse mounts of the same rumpfs, each seeing
# what the other wrote.
RUMPD_TEST_TIMEOUT=300
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib.sh"
source "$here/fuse-lib.sh"

requires make --version
requires cc --version

make_fs 512M
start_rumpfs
mount_fuse

# --- a small C project ---------------------------------------------------
proj=$MNT/proj
mkdir -p "$proj/src" "$proj/include"
cat > "$proj/include/calc.h" <<'H'
#ifndef CALC_H
#define CALC_H
unsigned long calc(unsigned n);
H
for i in $(seq 1 40); do
	echo "unsigned long f$i(unsigned n);" >> "$proj/include/calc.h"
	cat > "$proj/src/f$i.c" <<C
#include "calc.h"
unsigned long f$i(unsigned n) { return (unsigned long)n * $i + ${i}ul; }
C
done
echo "#endif" >> "$proj/include/calc.h"
{
	echo '#include <stdio.h>'
	echo '#include "calc.h"'
	echo 'unsigned long calc(unsigned n) { unsigned long s = 0;'
	for i in $(seq 1 40); do echo "s += f$i(n);"; done
	echo 'return s; }'
	echo 'int main(void) { printf("%lu\n", calc(3)); return 0; }'
} > "$proj/src/main.c"
cat > "$proj/Makefile" <<'M'
SRCS := $(wildcard src/*.c)
OBJS := $(SRCS:src/%.c=obj/%.o)
prog: $(OBJS)
	$(CC) -o $@ $(OBJS)
obj/%.o: src/%.c include/calc.h | obj
	$(CC) -O1 -Iinclude -c -o $@ $<
obj:
	mkdir -p obj
clean:
	rm -rf obj prog
M
# sum over i of (3i + i) = 4 * 820
want=3280
make -s -j2 -C "$proj" || fail "make failed"
[ "$("$proj/prog")" = $want ] || fail "the program computes $("$proj/prog")"
make -s -C "$proj" clean
make -s -j2 -C "$proj" || fail "make after clean failed"
[ "$("$proj/prog")" = $want ] || fail "rebuilt program is wrong"
touch "$proj/include/calc.h"
make -s -j2 -C "$proj" || fail "incremental make failed"
# The binary must survive a remount and still run.
sha=$(sha256sum < "$proj/prog")
remount
[ "$(sha256sum < "$proj/prog")" = "$sha" ] || fail "prog changed on remount"
[ "$("$proj/prog")" = $want ] || fail "prog after remount"

# --- two clients ---------------------------------------------------------
MNT2=$RUMPD_DIR/mnt2
mount_fuse "$MNT2" fuse2
echo "from one" > "$MNT/shared-a"
wait_for 5 "mount 2 to see mount 1's file" \
	grep -qx "from one" "$MNT2/shared-a"
echo "from two" > "$MNT2/shared-b"
wait_for 5 "mount 1 to see mount 2's file" \
	grep -qx "from two" "$MNT/shared-b"
# Both write at once, into separate directories, and read each other.
mkdir "$MNT/d1" "$MNT2/d2"
( for i in $(seq 1 300); do echo "one $i" > "$MNT/d1/f$i"; done ) &
p1=$!
( for i in $(seq 1 300); do echo "two $i" > "$MNT2/d2/f$i"; done ) &
p2=$!
wait "$p1" || fail "writer 1"
wait "$p2" || fail "writer 2"
wait_for 5 "300 files of mount 2 in mount 1" \
	test "$(ls "$MNT/d2" | wc -l)" = 300
[ "$(cat "$MNT/d2/f123")" = "two 123" ] || fail "mount 1 reads mount 2's"
[ "$(cat "$MNT2/d1/f77")" = "one 77" ] || fail "mount 2 reads mount 1's"
rm -r "$MNT2/d1"
wait_for 5 "mount 1 to see d1 gone" test ! -e "$MNT/d1"
umount_fuse fuse2

# SIGTERM while a program keeps the mount busy: rumpfuse still exits 0,
# and the mount goes away (detached).
( cd "$MNT" && sleep 5 ) &
busy=$!
kill_at_exit "$busy"
sleep 0.3
umount_fuse
mountpoint -q "$MNT" && fail "a busy mount stayed after SIGTERM"
kill "$busy" 2>/dev/null || :
fsck_clean
echo "fuse-make: ok"
