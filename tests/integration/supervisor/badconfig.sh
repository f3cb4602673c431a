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

# A net driver: its NICs, addresses and routes.
net='[net]
driver = net
nic = eth0 shm:./bus'
expect_error '[net]
driver = net
nic = eth0 usb:1' "bad.conf:3: nic eth0: want shm:BUSFILE, tap:IFNAME or \
packet:IFNAME, not 'usb:1'"
expect_error '[net]
driver = net
nic = eth0 packet:nosuch0' \
	'bad.conf:3: nic eth0: host interface nosuch0: No such device'
expect_error '[net]
driver = net
nic = eth0 tap:' "bad.conf:3: nic eth0: 'tap:' names nothing"
expect_error "$net
addr = eth1 10.0.0.2/24" "bad.conf:4: addr: \[net\] has no nic 'eth1'"
expect_error "$net
addr = eth0 10.0.0.300/24" "bad.conf:4: addr eth0: bad address '10.0.0.300/24'"
expect_error "$net
addr = eth0 10.0.0.2" "bad.conf:4: addr eth0: bad address '10.0.0.2'"
expect_error "$net
addr = eth0 fd00::2/129" "bad.conf:4: addr eth0: bad address"
expect_error "$net
addr = eth0" "bad.conf:4: addr: want 'NIC ADDRESS/PREFIX'"
expect_error "$net
addr = eth0 10.0.0.2/24
route = default4 fd00::1" \
	'bad.conf:5: route default4: gateway fd00::1 is IPv6, the destination IPv4'
expect_error "$net
addr = eth0 10.0.0.2/24
route = default 10.9.0.1" \
	'bad.conf:5: route default: gateway 10.9.0.1 is on no subnet'
expect_error "$net
addr = eth0 10.0.0.2/24
route = 10.1.0.1/16 10.0.0.1" \
	'bad.conf:5: route: 10.1.0.1/16 has bits set after its prefix length'
expect_error "$net
route = default6 fe80::1" \
	'bad.conf:4: route default6: a link-local gateway needs its NIC'
expect_error "$net
route = default6 fe80::1%eth9" "bad.conf:4: route default6: \[net\] has no \
nic 'eth9'"
expect_error "$net
addr = eth0 10.0.0.2/24
route = default 10.0.0.1
route = default4 10.0.0.254" \
	'bad.conf:6: route default4 again \(first at line 5\)'
expect_error '[a]
driver = net
nic = eth0 tap:rump9
[b]
driver = net
nic = eth0 tap:rump9' "bad.conf:6: nic eth0: tap:rump9 is already \[a\]'s \
nic eth0 \(line 3\)"

# Every error at once, not one per run.
printf '%s\n' '[null]' 'driver = null' 'colour = blue' 'size = 3' > bad.conf
"$RUMPD" -c bad.conf 2> err && fail "accepted a bad configuration"
grep -q 'bad.conf:3:' err && grep -q 'bad.conf:4:' err &&
	grep -q '2 errors' err || { cat err; fail "not every error named"; }

# A good one passes --check.
printf '%s\n' '[disk]' 'driver = disk' 'device = wd0 ./good.img ro' \
	> good.conf
"$RUMPD" -c good.conf --check || fail "a good configuration was refused"
printf '%s\n' "$net" 'nic = eth1 packet:lo' 'addr = eth0 10.0.0.2/24' \
	'addr = eth0 fd00::2/64' 'route = default 10.0.0.1' \
	'route = 2001:db8::/32 fe80::1%eth1' 'route = 10.8.0.0/16 10.0.0.3' \
	> net.conf
"$RUMPD" -c net.conf --check || fail "a good net configuration was refused"
echo "badconfig: ok"
