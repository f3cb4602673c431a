#!/usr/bin/env bash
# A bad configuration gets a message naming the file and line, exit
# status 2, and nothing starts: no driver, no socket.
RUMPD_TEST_TIMEOUT=60
source "$(dirname "$0")/sup.sh"

truncate -s 1M good.img
mkdir mnt

# expect_error CONF_TEXT REGEX: rumpd -c refuses it with REGEX on stderr.
expect_error()
{
	local status=0
	printf '%s\n' "$1" > bad.conf
	"$RUMPD" -c bad.conf > out 2> err || status=$?
	cat err
	[ "$status" = 2 ] || fail "exit status $status, not 2, for: $1"
	grep -Eq -- "$2" err || fail "no '$2' in the messages for: $1"
	grep -q 'nothing started' err || fail "no 'nothing started'"
	grep -q 'started' out && fail "something started for: $1"
	ls ./*.sock 2>/dev/null && fail "a socket was made for: $1"
	return 0
}

expect_error '[null]
driver = null
colour = blue' 'bad.conf:3: unknown key .colour. for a null driver'

expect_error '[rumpd]
heartbeat = 1s
[null]
driver = null' 'bad.conf:2: unknown key .heartbeat. in \[rumpd\]'

expect_error '[disk]
driver = disk
device = wd0 ./good.img
device = wd1 ./missing.img' \
	'bad.conf:4: device wd1: image ./missing.img: No such file'

expect_error '[disk]
driver = disk
device = wd0 ./good.img

[fs]
driver = fs
disk = disk
device = wd7s1' 'bad.conf:8: device = wd7s1: no such device in \[disk\]'

expect_error '[fs]
driver = fs
disk = nosuch
device = wd0' 'bad.conf:3: disk = nosuch: there is no driver \[nosuch\]'

expect_error '[disk]
driver = disk
device = wd0 ./good.img
[fs]
driver = fs
disk = disk
device = wd0s1
[a]
driver = fuse
fs = fs
mount = ./mnt
[b]
driver = fuse
fs = fs
mount = mnt/' "bad.conf:15: mount point mnt/ is already \\[a\\]'s \\(line 11\\)"

expect_error '[null]
driver = null
[null]
driver = null' 'bad.conf:3: section \[null\] again \(first at line 1\)'

expect_error '[null]
driver = nulll' "bad.conf:2: unknown driver 'nulll'"

expect_error '[x]
driver = null
after = y
[y]
driver = null
after = x' 'waits for itself'

expect_error '[null]
driver = null
restart_backoff = 50' 'bad.conf:3: restart_backoff: want a duration'

# Every error at once, not one per run.
printf '%s\n' '[null]' 'driver = null' 'colour = blue' 'size = 3' > bad.conf
"$RUMPD" -c bad.conf 2> err && fail "accepted a bad configuration"
grep -q 'bad.conf:3:' err && grep -q 'bad.conf:4:' err &&
	grep -q '2 errors' err || { cat err; fail "not every error named"; }

# A good one passes --check.
printf '%s\n' '[disk]' 'driver = disk' 'device = wd0 ./good.img ro' \
	> good.conf
"$RUMPD" -c good.conf --check || fail "a good configuration was refused"
echo "badconfig: ok"
