#!/usr/bin/env bash
# porthole network lab: real Debian miniupnpd 2.3.1 routers in Linux network namespaces.
#
# Usable on its own to test any PCP / NAT-PMP / UPnP IGD client:
#   sudo tests/lab/lab.sh up
#   sudo tests/lab/lab.sh exec lan1 upnpc -u http://192.168.1.1:5000/rootDesc.xml -s
#   sudo tests/lab/lab.sh down
# Run `lab.sh help` for the full interface.
#
# Topology (all inside namespaces named "$PREFIX-<short name>"):
#
#   lan1  192.168.1.100 --+
#   lan1b 192.168.1.101 --+- bridge "lan" 192.168.1.1 [r1: NAT + miniupnpd] wan 203.0.113.2/25 ---+
#   lan2  192.168.2.100 ---- bridge "lan" 192.168.2.1 [r2: NAT + miniupnpd] wan 203.0.113.130/25 -+- inet
#   inet (plain router) lo: 198.51.100.10 + .11 = STUN server (stund), .20-.29 = public hosts
#
# Optional corners: up-double-nat (r3 behind r1) and cgnat-start (rc behind the ISP's
# carrier-grade NAT box isp, 203.0.113.50 on inet); see their sections below.
#
# Safety: nothing is ever created in the root namespace. Every veth is created directly
# inside lab namespaces, every client runs through `ip netns exec`, and only PIDs recorded
# in the run dir (and checked to live in our namespaces) are ever signalled.
set -euo pipefail

PREFIX=${PORTHOLE_LAB_PREFIX:-phlab}
RUN_DIR=${PORTHOLE_LAB_DIR:-/tmp/porthole-lab-$PREFIX}
# Bounded wait for miniupnpd's STUN self-test ("Port forwarding is now enabled").
READY_TIMEOUT=${PORTHOLE_LAB_READY_TIMEOUT:-10}
[[ $READY_TIMEOUT =~ ^[0-9]+$ ]] || { echo "lab.sh: PORTHOLE_LAB_READY_TIMEOUT must be whole seconds" >&2; exit 2; }
MARKER=.porthole-lab          # proves a run dir is ours before we rm -rf it
# The name messages use: `porthole-lab` (the installed wrapper) sets it.
ME=${PORTHOLE_LAB_NAME:-lab.sh}

# Short names of every namespace, in creation order.
ALL_NS=(inet r1 r2 lan1 lan1b lan2)
ROUTERS=(r1 r2)
# The double-NAT corner (`up-double-nat`): r3 behind r1, its host lan3, and stun3, a
# STUN server on r1's LAN for r3's miniupnpd.
DOUBLE_NS=(r3 lan3 stun3)
# The carrier-grade NAT corner (`cgnat-start`): the ISP's NAT box isp on the lab's
# internet, a home router rc behind it (WAN in 100.64.0.0/10) and rc's host lanc.
CGNAT_NS=(isp rc lanc)
EVERY_NS=("${ALL_NS[@]}" "${DOUBLE_NS[@]}" "${CGNAT_NS[@]}")

# Addresses. 203.0.113.0/24 and 198.51.100.0/24 are documentation ranges used as the fake
# internet; the machine's own 192.0.2.0/24 is never used (LAB.md "Safety").
INET_R1=203.0.113.1   R1_WAN=203.0.113.2   R1_LAN=192.168.1.1 R1_NET=192.168.1.0/24
INET_R2=203.0.113.129 R2_WAN=203.0.113.130 R2_LAN=192.168.2.1 R2_NET=192.168.2.0/24
LAN1=192.168.1.100 LAN1B=192.168.1.101 LAN2=192.168.2.100
STUN1=198.51.100.10 STUN2=198.51.100.11 STUN_PORT=3478 STUN_PORT2=3479
# A second public-side server for porthole's own checks (`serve-start`): `porthole
# serve` (STUN + TCP connect-back) on two more addresses of inet's lo.
SERVE1=198.51.100.12 SERVE2=198.51.100.13
# coturn, a TURN relay with long-term credentials (`turn-start`), on one more address.
TURN1=198.51.100.14 TURN_PORT=3478 TURN_USER=porthole-lab TURN_PASSWORD=lab-relay-secret-1
# Which program answers miniupnpd's STUN self-test on $STUN1/$STUN2: Debian's stund
# (default) or `porthole serve` (PORTHOLE_LAB_STUN=porthole, needs PORTHOLE_BIN).
LAB_STUN=${PORTHOLE_LAB_STUN:-stund}
R3_WAN=192.168.1.2 R3_LAN=192.168.3.1 R3_NET=192.168.3.0/24 LAN3=192.168.3.100
LANSTUN1=192.168.1.10 LANSTUN2=192.168.1.11
# CGNAT (RFC 6598 shared address space inside the ISP): isp's public address sits in
# r1's /25, so inet routes it as a /32 (and r1 gets a /32 route via inet for it).
ISP_PUBLIC=203.0.113.50 ISP_INSIDE=100.64.0.1 ISP_NET=100.64.0.0/10
ISP_STUN1=$ISP_INSIDE ISP_STUN2=100.64.0.3   # stund-isp: rc's STUN server, in isp
RC_WAN=100.64.0.2 RC_LAN=192.168.4.1 RC_NET=192.168.4.0/24 LANC=192.168.4.100
PUBLIC_HOSTS=(198.51.100.{20..29})
HTTP_PORT=5000
PCP_PORT=5351
# The routers' permission rules: external AND internal port in this range, internal
# client on the router's own LAN; everything else is denied. Seen with 2.3.1: UPnP gets
# 606; NAT-PMP/PCP with a denied internal port get 2 NOT_AUTHORIZED (after miniupnpd has
# walked all 65535 external ports, ~1 s), with an allowed internal port but a denied
# external one they are silently moved to the first allowed port (80 -> 1024).
ALLOWED_PORTS=1024-65535

die() { echo "$ME: $*" >&2; exit 1; }
ns() { echo "$PREFIX-$1"; }
nsx() { local n=$1; shift; ip netns exec "$(ns "$n")" "$@"; }
ns_exists() { [ -e "/run/netns/$(ns "$1")" ]; }

# Per-router facts, looked up by short name.
# isp is no home router (no miniupnpd), but nat-mode switches its NAT like theirs.
wan_ip()  { case $1 in r1) echo $R1_WAN;; r2) echo $R2_WAN;; r3) echo $R3_WAN;; rc) echo $RC_WAN;; isp) echo $ISP_PUBLIC;; *) die "no router $1";; esac; }
lan_ip()  { case $1 in r1) echo $R1_LAN;; r2) echo $R2_LAN;; r3) echo $R3_LAN;; rc) echo $RC_LAN;; isp) echo $ISP_INSIDE;; *) die "no router $1";; esac; }
lan_net() { case $1 in r1) echo $R1_NET;; r2) echo $R2_NET;; r3) echo $R3_NET;; rc) echo $RC_NET;; isp) echo $ISP_NET;; *) die "no router $1";; esac; }
inet_ip() { case $1 in r1) echo $INET_R1;; r2) echo $INET_R2;; *) die "no router $1";; esac; }
is_router() { [ "$1" = r1 ] || [ "$1" = r2 ] || [ "$1" = r3 ] || [ "$1" = rc ]; }

check_prefix() {
  # Namespace names become file names under /run/netns; interface names are fixed per
  # namespace, so only the namespace names carry the prefix.
  [[ $PREFIX =~ ^[A-Za-z0-9][A-Za-z0-9_.]{0,23}$ ]] ||
    die "PORTHOLE_LAB_PREFIX '$PREFIX' must be 1-24 chars of [A-Za-z0-9_.]"
}

need_root() {
  [ "$(id -u)" -eq 0 ] || die "needs root (network namespaces); try: sudo $0 $*"
  local t
  for t in ip nft miniupnpd stund conntrack; do
    command -v "$t" >/dev/null || die "$t not found; run scripts/install-deps.sh"
  done
}

# ---------------------------------------------------------------- process bookkeeping

# State letter of a PID ("" if gone). Killed daemons are reparented to PID 1, which
# reaps them only after 1-5 s here (LAB.md "Kernel limits"): Z counts as dead.
proc_state() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  stat=${stat##*) }   # comm may contain spaces; the state follows the last ") "
  echo "${stat%% *}"
}
alive() { local s; s=$(proc_state "$1"); [ -n "$s" ] && [ "$s" != Z ] && [ "$s" != X ]; }

# True if PID is alive and lives in lab namespace $2: guards against recycled PIDs.
ours() { alive "$1" && [ "$(ip netns identify "$1" 2>/dev/null)" = "$(ns "$2")" ]; }

# start_daemon NAME NS CMD... : start CMD in namespace NS, stdio to $RUN_DIR/NAME.log
# (ctest waits for inherited pipes otherwise), PID to $RUN_DIR/NAME.pid. setsid puts it
# in its own session so a Ctrl-C or ctest killing our process group does not reach it;
# neither setsid (not a group leader here), `ip netns exec` nor the wrapper's `exec`
# forks, so $! is the daemon itself.
# Hygiene inside the daemon's own mount namespace (`ip netns exec` makes a private one,
# so none of this is visible outside):
# - miniupnpd -d still calls syslog() (openlog with LOG_CONS) for every line it writes
#   to stderr. /dev/log is not per-netns, and where it is missing glibc writes each line
#   to /dev/console instead: both would spill the lab's very chatty log out of the lab
#   (and the console writes made a 65535-port permission scan take a minute here).
#   Bind /dev/null over both so the log stays in the run dir only.
# - close inherited descriptors above 2: a daemon holding a caller's pipe makes ctest
#   (or any caller reading our output) wait for it forever.
DAEMON_WRAPPER='for fd in /proc/$$/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done
for dev in /dev/log /dev/console; do
  if [ -e "$dev" ]; then mount --bind /dev/null "$dev" || exit 1; fi
done
exec "$@"'

# The previous run's log is kept as NAME.log.prev. The new log is created here, before
# the fork: the background child applies its own redirections later, and a readiness
# poll could otherwise still see the previous daemon's "ready" line.
start_daemon() {
  local name=$1 n=$2 log="$RUN_DIR/$1.log"; shift 2
  if [ -e "$log" ]; then mv -f "$log" "$log.prev"; fi
  : >"$log"
  setsid ip netns exec "$(ns "$n")" /bin/bash -c "$DAEMON_WRAPPER" "$name" "$@" \
    </dev/null >>"$log" 2>&1 &
  echo $! >"$RUN_DIR/$name.pid"
}

# stop_daemon NAME NS : SIGTERM the recorded PID, wait until it is gone (or a zombie),
# SIGKILL after 5 s. Never fails if it is not running.
stop_daemon() {
  local name=$1 n=$2 pidf="$RUN_DIR/$1.pid" pid i
  [ -f "$pidf" ] || return 0
  pid=$(<"$pidf")
  if [[ $pid =~ ^[0-9]+$ ]] && ours "$pid" "$n"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 500; i++)); do alive "$pid" || break; sleep 0.01; done
    if alive "$pid"; then
      echo "lab.sh: $name ($pid) ignored SIGTERM, sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pidf"
}

# wait_log FILE TEXT PID : poll FILE until it contains TEXT. Fails loudly with the log
# tail if PID dies first or READY_TIMEOUT seconds pass.
now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }
wait_log() {
  local file=$1 text=$2 pid=$3 deadline
  deadline=$(($(now_ms) + READY_TIMEOUT * 1000))
  while ! grep -qF -- "$text" "$file" 2>/dev/null; do
    if ! alive "$pid"; then
      echo "lab.sh: process $pid exited before logging '$text'; last lines of $file:" >&2
      tail -n 25 "$file" >&2 || true
      return 1
    fi
    if [ "$(now_ms)" -ge "$deadline" ]; then
      echo "lab.sh: no '$text' in $file after ${READY_TIMEOUT}s; last lines:" >&2
      tail -n 25 "$file" >&2 || true
      return 1
    fi
    sleep 0.01
  done
}

# ---------------------------------------------------------------- topology

# Namespaces, links, addresses and routes. Each namespace is configured with one
# `ip -batch` to keep the fork count (and the setup time) low.
build_topology() {
  local n r
  for n in "${ALL_NS[@]}"; do echo "netns add $(ns "$n")"; done | ip -batch -

  # inet: one veth per router; its peer ("wan") is created directly in the router.
  # Public hosts and the STUN server are extra addresses on lo (no dummy device here).
  # The router subnets are routed with src 198.51.100.20 so that a plain client in inet
  # looks like public host .20 rather than the transit address 203.0.113.1/.129.
  {
    echo "link set lo up"
    for r in "${ROUTERS[@]}"; do
      echo "link add $r type veth peer name wan netns $(ns "$r")"
      echo "addr add $(inet_ip "$r")/25 dev $r noprefixroute"
      echo "link set $r up"
    done
    echo "addr add $STUN1/32 dev lo"
    echo "addr add $STUN2/32 dev lo"
    echo "addr add $SERVE1/32 dev lo"
    echo "addr add $SERVE2/32 dev lo"
    echo "addr add $TURN1/32 dev lo"
    for n in "${PUBLIC_HOSTS[@]}"; do echo "addr add $n/32 dev lo"; done
    echo "route add 203.0.113.0/25 dev r1 src ${PUBLIC_HOSTS[0]}"
    echo "route add 203.0.113.128/25 dev r2 src ${PUBLIC_HOSTS[0]}"
  } | ip -n "$(ns inet)" -batch -

  # Routers: LAN side is a bridge (so several hosts share one LAN, like a home router's
  # switch); multicast snooping off so SSDP/PCP-ANNOUNCE multicast always floods.
  local -A hosts=([r1]="lan1:$LAN1 lan1b:$LAN1B" [r2]="lan2:$LAN2")
  local h name ip
  for r in "${ROUTERS[@]}"; do
    {
      echo "link set lo up"
      echo "link add lan type bridge mcast_snooping 0"
      # A fixed MAC: a bridge otherwise takes the lowest MAC of its ports, so adding
      # and removing a port (up-double-nat / down-double-nat) could change the
      # router's MAC under the LAN hosts' neighbour caches, and their next packets to
      # the router would vanish until the cache entry is probed again (seconds).
      echo "link set lan address 02:00:00:00:0${r#r}:01"
      echo "addr add $(lan_ip "$r")/24 dev lan"
      echo "link set lan up"
      for h in ${hosts[$r]}; do
        name=${h%%:*}
        echo "link add p-$name type veth peer name eth0 netns $(ns "$name")"
        echo "link set p-$name master lan"
        echo "link set p-$name up"
      done
      echo "addr add $(wan_ip "$r")/25 dev wan"
      echo "link set wan up"
      echo "route add default via $(inet_ip "$r")"
    } | ip -n "$(ns "$r")" -batch -
    for h in ${hosts[$r]}; do
      name=${h%%:*} ip=${h#*:}
      printf '%s\n' "link set lo up" "addr add $ip/24 dev eth0" "link set eth0 up" \
        "route add default via $(lan_ip "$r")" | ip -n "$(ns "$name")" -batch -
    done
  done
}

# sysctls: forwarding in inet and routers; IPv6 off everywhere (the lab is IPv4 only and
# miniupnpd runs with ipv6_disable=yes), which also avoids DAD/router-solicit noise.
# This kernel has br_netfilter built in with bridge-nf-call-iptables=1 in every new
# netns: bridged LAN<->LAN frames would then traverse the router's inet forward chain
# (policy drop) and LAN hosts could not talk to each other. A home router's switch does
# not filter, so turn it off in the routers (the sysctl is per-netns).
# Client sockets take their ephemeral ports from 50000-60999 (per netns too): the ports
# scenarios listen on are below, so a client connection in TIME_WAIT (its socket without
# SO_REUSEADDR) can never hold a port a scenario is about to listen on.
set_sysctls() {
  local n fwd
  for n in "$@"; do
    fwd=0; { [ "$n" = inet ] || [ "$n" = isp ] || is_router "$n"; } && fwd=1
    nsx "$n" sh -c "echo $fwd >/proc/sys/net/ipv4/ip_forward
      echo '50000 60999' >/proc/sys/net/ipv4/ip_local_port_range
      for f in /proc/sys/net/ipv6/conf/all/disable_ipv6 /proc/sys/net/ipv6/conf/default/disable_ipv6 \
               /proc/sys/net/bridge/bridge-nf-call-iptables /proc/sys/net/bridge/bridge-nf-call-ip6tables \
               /proc/sys/net/bridge/bridge-nf-call-arptables; do
        [ -w \$f ] || continue
        case \$f in *bridge*) echo 0 >\$f;; *) echo 1 >\$f;; esac
      done"
  done
}

# Home-router firewall + NAT in table inet filter, where miniupnpd's nft backend expects
# its chains (LAB.md: create them ourselves, Debian's nft_init.sh is broken in 2.3.1).
# - input: reject unsolicited WAN traffic like a real router (hole punching depends on
#   it), but accept the STUN server's answers from both IPs/ports (CHANGE-REQUEST replies
#   are not conntrack-related) or miniupnpd's self-test fails. lab_drop is the hook for
#   `router-drop`.
# - forward: policy drop; established/related, LAN->WAN, then miniupnpd's accept rules.
# - NAT: masquerade only LAN-sourced traffic (with `random` on the router's own traffic
#   the STUN self-test fails); miniupnpd's DNAT/SNAT chains are jumped first.
router_ruleset() {
  local r=$1
  cat <<EOF
table inet filter {
  chain lab_drop {
  }
  chain input {
    type filter hook input priority filter; policy accept;
    jump lab_drop
    ct state established,related accept
    iifname "wan" ip saddr { $STUN1, $STUN2 } udp sport { $STUN_PORT, $STUN_PORT2 } accept
    iifname "wan" reject
  }
  chain miniupnpd {
  }
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname "lan" oifname "wan" accept
    jump miniupnpd
  }
  chain prerouting_miniupnpd {
  }
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    jump prerouting_miniupnpd
  }
  chain postrouting_miniupnpd {
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    jump postrouting_miniupnpd
    oifname "wan" ip saddr $(lan_net "$r") masquerade
  }
}
EOF
}

# miniupnpd.conf for router $1; $2 = stun|cgnat. Without STUN, miniupnpd sees only its
# RFC 5737 WAN address, treats it as reserved and refuses every mapping, exactly like a
# router behind carrier-grade NAT (LAB.md). lease_file, minissdpdsocket and uuid are per
# router: unix sockets and files are not per-netns.
router_conf() {
  local r=$1 mode=$2 idx=${1#r}
  cat <<EOF
ext_ifname=wan
listening_ip=lan
http_port=$(cat "$RUN_DIR/$r.http_port" 2>/dev/null || echo "$HTTP_PORT")
enable_upnp=yes
enable_natpmp=yes
ipv6_disable=yes
secure_mode=yes
system_uptime=no
min_lifetime=120
max_lifetime=86400
lease_file=$RUN_DIR/$r.leases
minissdpdsocket=$RUN_DIR/$r.minissdpd.sock
uuid=9f0c2a54-6d1e-4b7a-8c3f-00000000000$idx
friendly_name=porthole lab $r
EOF
  local stun_host=$STUN1
  [ "$r" = r3 ] && stun_host=$LANSTUN1  # r3's STUN server sits on r1's LAN (up-double-nat)
  # rc's STUN server sits inside the carrier network, on isp's inside addresses (cgnat-start).
  [ "$r" = rc ] && stun_host=$ISP_STUN1
  if [ "$mode" != cgnat ]; then
    printf '%s\n' ext_perform_stun=yes "ext_stun_host=$stun_host" "ext_stun_port=$STUN_PORT"
  fi
  # IGDv1 routers are still common; miniupnpd serves v2 unless told otherwise.
  [ "$mode" = igdv1 ] && echo force_igd_desc_v1=yes
  # router-min-lifetime: a later line wins in miniupnpd's parser.
  [ -f "$RUN_DIR/$r.min_lifetime" ] && echo "min_lifetime=$(<"$RUN_DIR/$r.min_lifetime")"
  echo "allow $ALLOWED_PORTS $(lan_net "$r") $ALLOWED_PORTS"
  echo "deny 0-65535 0.0.0.0/0 0-65535"
}

# ---------------------------------------------------------------- miniupnpd control

# router_launch R MODE : start miniupnpd (no waiting). MODE stun|cgnat|igdv1.
router_launch() {
  local r=$1 mode=$2
  ns_exists "$r" || die "lab is not up (no namespace $(ns "$r"))"
  stop_daemon "miniupnpd-$r" "$r"
  # Its own pid file names the old daemon, which may linger as a zombie until PID 1
  # reaps it; miniupnpd would then exit with "already running".
  rm -f "$RUN_DIR/miniupnpd-$r.selfpid"
  router_conf "$r" "$mode" >"$RUN_DIR/$r-$mode.conf"
  echo "$mode" >"$RUN_DIR/$r.mode"
  start_daemon "miniupnpd-$r" "$r" miniupnpd -f "$RUN_DIR/$r-$mode.conf" -d \
    -P "$RUN_DIR/miniupnpd-$r.selfpid"
}

# router_wait R : wait until the router is ready for its mode. With STUN, miniupnpd
# logs "Port forwarding is now enabled" after its self-test, and only then opens its
# HTTP, SSDP and NAT-PMP/PCP sockets: wait for the last of them too, or a client
# started right after `up` may get ICMP port-unreachable. Without STUN ("CGNAT") there
# is no "enabled" line, only the sockets.
router_wait() {
  local r=$1 pid log
  pid=$(<"$RUN_DIR/miniupnpd-$r.pid")
  log="$RUN_DIR/miniupnpd-$r.log"
  if [ "$(<"$RUN_DIR/$r.mode")" != cgnat ]; then
    wait_log "$log" "Port forwarding is now enabled" "$pid" || return 1
  fi
  wait_log "$log" "Listening for NAT-PMP/PCP traffic on port $PCP_PORT" "$pid"
}

# Flush what miniupnpd keeps across a SIGTERM (its nft rules, its lease file) and the
# router's conntrack table: what a real router loses when it reboots.
router_wipe() {
  local r=$1 c
  for c in miniupnpd prerouting_miniupnpd postrouting_miniupnpd; do
    nsx "$r" nft flush chain inet filter "$c"
  done
  rm -f "$RUN_DIR/$r.leases"
  nsx "$r" conntrack -F >/dev/null 2>&1 || true
}

# STUN server first: miniupnpd's self-test needs all four probe answers.
wait_stund() {
  local i name=${1:-} n=${2:-inet} filter="( sport = :$STUN_PORT or sport = :$STUN_PORT2 )"
  if [ -z "$name" ]; then
    name=stund
    [ -f "$RUN_DIR/stund.pid" ] || name=porthole-stun
  fi
  # In inet, porthole serve on $SERVE1/$SERVE2 (serve-start) uses the same ports.
  [ "$n" = inet ] && filter="( src $STUN1 or src $STUN2 ) and $filter"
  for ((i = 0; i < 300; i++)); do
    [ "$(nsx "$n" ss -Hlun "$filter" | wc -l)" -ge 4 ] && return 0
    alive "$(<"$RUN_DIR/$name.pid")" || break
    sleep 0.01
  done
  tail -n 20 "$RUN_DIR/$name.log" >&2 || true
  die "$name did not bind its four sockets"
}

# stun_server_launch stund|porthole : the STUN server miniupnpd's self-test asks, on
# $STUN1/$STUN2 ports $STUN_PORT/$STUN_PORT2 (the other one is stopped first).
stun_server_launch() {
  stop_daemon stund inet
  stop_daemon porthole-stun inet
  case $1 in
    stund)
      start_daemon stund inet stund -h "$STUN1" -a "$STUN2" -p "$STUN_PORT" -o "$STUN_PORT2"
      echo stund >"$RUN_DIR/stun-server" ;;
    porthole)
      porthole_bin
      start_daemon porthole-stun inet "$PORTHOLE_BIN" serve --listen "$STUN1:$STUN_PORT" \
        --alt-listen "$STUN2:$STUN_PORT2"
      echo porthole >"$RUN_DIR/stun-server" ;;
    *) die "unknown STUN server '$1' (stund or porthole)" ;;
  esac
  wait_stund
}

porthole_bin() {
  [ -n "${PORTHOLE_BIN:-}" ] && [ -x "$PORTHOLE_BIN" ] ||
    die "PORTHOLE_BIN must name the porthole binary (for porthole serve)"
}

# ---------------------------------------------------------------- subcommands

cmd_up() {
  need_root up
  cmd_down >/dev/null
  if [ -e "$RUN_DIR" ] && [ ! -e "$RUN_DIR/$MARKER" ] && [ -n "$(ls -A "$RUN_DIR")" ]; then
    die "$RUN_DIR exists and is not a lab run dir; set PORTHOLE_LAB_DIR"
  fi
  mkdir -p "$RUN_DIR"
  touch "$RUN_DIR/$MARKER"
  # Any failure below exits (set -e / die); the half-built lab is kept for inspection.
  trap 'echo "lab.sh: up failed; state kept in $RUN_DIR, clean up with: $0 down" >&2' EXIT
  build_topology
  set_sysctls "${ALL_NS[@]}"
  local r
  for r in "${ROUTERS[@]}"; do router_ruleset "$r" | nsx "$r" nft -f -; done
  stun_server_launch "$LAB_STUN"
  for r in "${ROUTERS[@]}"; do router_launch "$r" stun; done
  for r in "${ROUTERS[@]}"; do router_wait "$r" || die "miniupnpd in $r is not ready"; done
  trap - EXIT
  echo "lab up: prefix $PREFIX, run dir $RUN_DIR"
}

# Anything still running in a lab namespace was started inside the lab (leaked test
# listeners, clients); it would keep the namespace alive, so end it, then delete it.
delete_ns() {
  local n=$1 pid
  ns_exists "$n" || return 0
  for pid in $(ip netns pids "$(ns "$n")" 2>/dev/null); do
    echo "lab.sh: killing leftover process $pid ($(cat "/proc/$pid/comm" 2>/dev/null)) in $(ns "$n")" >&2
    kill -KILL "$pid" 2>/dev/null || true
  done
  ip netns del "$(ns "$n")" 2>/dev/null || true
}

cmd_down() {
  local n r present=
  for n in "${EVERY_NS[@]}"; do ns_exists "$n" && present=1; done
  if [ -z "$present" ] && [ ! -e "$RUN_DIR/$MARKER" ]; then
    echo "lab down: prefix $PREFIX (was not up)"
    return 0
  fi
  need_root down
  for r in "${ROUTERS[@]}"; do stop_daemon "miniupnpd-$r" "$r"; done
  stop_daemon stund inet
  stop_daemon porthole-stun inet
  stop_daemon porthole-serve inet
  stop_daemon coturn inet
  down_double_nat
  down_cgnat
  for n in "${ALL_NS[@]}"; do delete_ns "$n"; done
  if [ -e "$RUN_DIR/$MARKER" ]; then rm -rf "$RUN_DIR"; fi
  echo "lab down: prefix $PREFIX"
}

cmd_exec() {
  [ $# -ge 2 ] || die "usage: lab.sh exec NS CMD [ARGS...]"
  local n=$1; shift
  [[ " ${EVERY_NS[*]} " == *" $n "* ]] || die "unknown namespace '$n' (one of: ${EVERY_NS[*]})"
  exec ip netns exec "$(ns "$n")" "$@"
}

cmd_status() {
  local n name pid st
  echo "prefix $PREFIX, run dir $RUN_DIR"
  for n in "${ALL_NS[@]}"; do
    if ns_exists "$n"; then
      echo "== $n ($(ns "$n"))"
      ip -n "$(ns "$n")" -br addr show | sed 's/^/   /'
    else
      echo "== $n: absent"
    fi
  done
  for n in "${CGNAT_NS[@]}"; do
    ns_exists "$n" || continue
    echo "== $n ($(ns "$n"))"
    ip -n "$(ns "$n")" -br addr show | sed 's/^/   /'
  done
  for name in stund:inet porthole-stun:inet porthole-serve:inet coturn:inet miniupnpd-r1:r1 \
              miniupnpd-r2:r2 stund-isp:isp miniupnpd-rc:rc; do
    case ${name#*:} in isp|rc) ns_exists "${name#*:}" || continue ;; esac
    pid=$(cat "$RUN_DIR/${name%%:*}.pid" 2>/dev/null || true)
    st=stopped
    [ -n "$pid" ] && ours "$pid" "${name#*:}" && st="running pid $pid"
    [[ $name == miniupnpd* ]] && [ -f "$RUN_DIR/${name#*:}.mode" ] &&
      st="$st (mode $(<"$RUN_DIR/${name#*:}.mode"))"
    echo "daemon ${name%%:*}: $st"
  done
  for n in "${ROUTERS[@]}"; do
    if ns_exists "$n" && [ "$(nsx "$n" nft list chain inet filter lab_drop | grep -c dport || true)" != 0 ]; then
      echo "router $n: dropping PCP/NAT-PMP/SSDP/HTTP from LAN (router-drop on)"
    fi
  done
  for n in "${ROUTERS[@]}" r3 rc isp; do
    [ -f "$RUN_DIR/$n.natmode" ] && echo "router $n: NAT mode $(<"$RUN_DIR/$n.natmode")"
  done
  return 0
}

router_arg() { local r=${1:-r1}; is_router "$r" || die "unknown router '$r' (r1, r2, r3 or rc)"; echo "$r"; }

cmd_router_stop() { need_root; local r; r=$(router_arg "${1:-}"); stop_daemon "miniupnpd-$r" "$r"; }
cmd_router_start() {
  need_root; local r; r=$(router_arg "${1:-}")
  router_launch "$r" stun; router_wait "$r"
}
# Behind CGNAT a router has no mappings at all: wipe like a reboot, then start without
# STUN so every mapping request is refused (UPnP 501, NAT-PMP 3, PCP 8).
cmd_router_start_cgnat() {
  need_root; local r; r=$(router_arg "${1:-}")
  stop_daemon "miniupnpd-$r" "$r"
  router_wipe "$r"
  router_launch "$r" cgnat; router_wait "$r"
}
# An IGDv1 router (WANIPConnection:1: no AddAnyPortMapping), otherwise as `up` made it.
cmd_router_start_igdv1() {
  need_root; local r; r=$(router_arg "${1:-}")
  stop_daemon "miniupnpd-$r" "$r"
  router_wipe "$r"
  router_launch "$r" igdv1; router_wait "$r"
}
cmd_router_reboot() {
  need_root; local r; r=$(router_arg "${1:-}")
  stop_daemon "miniupnpd-$r" "$r"
  router_wipe "$r"
  router_launch "$r" stun; router_wait "$r"
}

# router-min-lifetime SECONDS|default [R]: PCP lifetimes as short as SECONDS (miniupnpd
# clamps them to min_lifetime, 120 s here; NAT-PMP and UPnP leases are not clamped), so
# renewals happen within a test; restarts miniupnpd without wiping: mappings survive.
cmd_router_min_lifetime() {
  need_root
  local s=${1:-} r; r=$(router_arg "${2:-}")
  case $s in
    default) rm -f "$RUN_DIR/$r.min_lifetime" ;;
    ''|*[!0-9]*) die "usage: lab.sh router-min-lifetime SECONDS|default [ROUTER]" ;;
    *) echo "$s" >"$RUN_DIR/$r.min_lifetime" ;;
  esac
  router_launch "$r" stun; router_wait "$r"
}

# router-http-port PORT|default [R]: the port miniupnpd serves its description and SOAP
# control on from its next start (router-reboot), as a router that picks a new port at
# every boot does; default: $HTTP_PORT again.
cmd_router_http_port() {
  need_root
  local p=${1:-} r; r=$(router_arg "${2:-}")
  case $p in
    default) rm -f "$RUN_DIR/$r.http_port" ;;
    ''|*[!0-9]*) die "usage: lab.sh router-http-port PORT|default [ROUTER]" ;;
    *) [ "$p" -ge 1 ] && [ "$p" -le 65535 ] || die "router-http-port: $p is not a port"
       echo "$p" >"$RUN_DIR/$r.http_port" ;;
  esac
}

# wan-address IP|default [R] [silent]: the ISP hands router R another WAN address. Then
# SIGUSR1 to miniupnpd: it learns its external address again by STUN and announces the
# change to the LAN (NAT-PMP public address announcement to 224.0.0.1:5350). With
# "silent" miniupnpd is not told: it keeps reporting the old address (only STUN from
# the LAN sees the new one).
cmd_wan_address() {
  need_root
  local ip=${1:-} r pid silent=${3:-}; r=$(router_arg "${2:-}")
  ns_exists "$r" || die "lab is not up"
  [ "$ip" = default ] && ip=$(wan_ip "$r")
  [[ $ip =~ ^203\.0\.113\.[0-9]+$ ]] || die "usage: lab.sh wan-address 203.0.113.N|default [ROUTER]"
  nsx "$r" ip -4 addr flush dev wan
  nsx "$r" ip addr add "$ip/25" dev wan
  nsx "$r" ip route replace default via "$(inet_ip "$r")"
  nsx "$r" conntrack -F >/dev/null 2>&1 || true
  [ "$silent" = silent ] && return 0
  pid=$(<"$RUN_DIR/miniupnpd-$r.pid")
  ours "$pid" "$r" || die "miniupnpd is not running in $r"
  kill -USR1 "$pid"
}

# Silently drop the router's three protocol entry points from the LAN, like a router
# that has them disabled or firewalled (clients then see timeouts, not errors).
cmd_router_drop() {
  need_root
  local mode=${1:-} r; r=$(router_arg "${2:-}")
  ns_exists "$r" || die "lab is not up"
  nsx "$r" nft flush chain inet filter lab_drop
  case $mode in
    on) nsx "$r" nft add rule inet filter lab_drop iifname '"lan"' udp dport "{ $PCP_PORT, 1900 }" drop
        nsx "$r" nft add rule inet filter lab_drop iifname '"lan"' tcp dport "$HTTP_PORT" drop ;;
    off) ;;
    *) die "usage: lab.sh router-drop on|off [ROUTER]" ;;
  esac
}

# The router's live redirects, read from the DNAT rules miniupnpd put in
# prerouting_miniupnpd (the truth for UPnP, NAT-PMP and PCP alike), one per line:
#   PROTO EXTPORT INTERNAL_IP INTERNAL_PORT      e.g. "TCP 40000 192.168.1.100 40000"
cmd_upnp_table() {
  need_root; local r; r=$(router_arg "${1:-}")
  ns_exists "$r" || die "lab is not up"
  # miniupnpd 2.3.1 writes raw payload matches, e.g.
  #   iif "wan" @nh,72,8 0x6 th dport 40000 dnat ip to 192.168.1.100:40000
  # (@nh,72,8 is the IPv4 protocol byte: 0x6 TCP, 0x11 UDP); "tcp dport" is accepted too.
  nsx "$r" nft list chain inet filter prerouting_miniupnpd | awk '
    /dnat/ {
      proto = ""
      if ($0 ~ /@nh,72,8 0x6 / || $0 ~ /tcp dport/) proto = "TCP"
      if ($0 ~ /@nh,72,8 0x11 / || $0 ~ /udp dport/) proto = "UDP"
      if (!match($0, /dport [0-9]+/)) next
      ext = substr($0, RSTART + 6, RLENGTH - 6)
      if (!match($0, /dnat ip to [0-9.]+:[0-9]+/)) next
      split(substr($0, RSTART + 11, RLENGTH - 11), to, ":")
      if (proto != "") print proto, ext, to[1], to[2]
    }'
}

# `porthole serve` on $SERVE1/$SERVE2 (STUN 3478/3479 and TCP connect-back on
# $SERVE1:3478) for `open --verify` and the serve scenarios; -v logs every request.
cmd_serve_start() {
  need_root; porthole_bin
  ns_exists inet || die "lab is not up"
  stop_daemon porthole-serve inet
  start_daemon porthole-serve inet "$PORTHOLE_BIN" serve --listen "$SERVE1:$STUN_PORT" \
    --alt-listen "$SERVE2:$STUN_PORT2" -v
  local i
  for ((i = 0; i < 300; i++)); do
    [ "$(nsx inet ss -Hltn "src $SERVE1 and sport = :$STUN_PORT" | wc -l)" -ge 1 ] && return 0
    alive "$(<"$RUN_DIR/porthole-serve.pid")" || break
    sleep 0.01
  done
  tail -n 20 "$RUN_DIR/porthole-serve.log" >&2 || true
  die "porthole serve did not start"
}
cmd_serve_stop() { need_root; stop_daemon porthole-serve inet; }

# coturn on $TURN1:$TURN_PORT (UDP) in inet with long-term credentials; the user and
# password are also in $RUN_DIR/turn-credentials (mode 600, the format $PORTHOLE_TURN
# reads). -n: no config file; its user database in the run dir (else it opens
# /var/lib/turn/turndb); the allowed peer ranges undo its built-in refusal of the
# documentation ranges the lab's internet lives in. Ready when its log says
# "Total General servers" (LAB.md).
cmd_turn_start() {
  need_root
  ns_exists inet || die "lab is not up"
  command -v turnserver >/dev/null || die "coturn is not installed (scripts/install-deps.sh)"
  stop_daemon coturn inet
  rm -f "$RUN_DIR/turndb"
  (umask 077; printf 'user=%s\npassword=%s\n' "$TURN_USER" "$TURN_PASSWORD" >"$RUN_DIR/turn-credentials")
  start_daemon coturn inet turnserver -n --listening-ip="$TURN1" --relay-ip="$TURN1" \
    --listening-port="$TURN_PORT" --lt-cred-mech --user="$TURN_USER:$TURN_PASSWORD" --realm=lab \
    --no-tls --no-dtls --no-cli --no-tcp-relay --log-file=stdout --simple-log --verbose \
    --userdb="$RUN_DIR/turndb" --pidfile="$RUN_DIR/coturn.own.pid" \
    --allowed-peer-ip=203.0.113.0-203.0.113.255 --allowed-peer-ip=198.51.100.0-198.51.100.255
  wait_log "$RUN_DIR/coturn.log" "Total General servers" "$(<"$RUN_DIR/coturn.pid")"
}
cmd_turn_stop() { need_root; stop_daemon coturn inet; }
# The direct path between the routers' WANs, for a relayed session that must find it
# later (punch_upgrade): `on` drops UDP between $R1_WAN and $R2_WAN (both ways) in inet's
# forward hook, so lan1 and lan2 reach each other only through coturn; `open` removes
# the drop and keeps the table's counter of UDP to coturn ($TURN1) from either WAN;
# `counts` prints "dropped N turn M" (packets); `off` deletes the table.
cmd_wan_block() {
  need_root
  ns_exists inet || die "lab is not up"
  case ${1:-} in
    on)
      nsx inet nft delete table ip lab_wan_block 2>/dev/null || true
      nsx inet nft -f - <<EOF
table ip lab_wan_block {
  counter dropped {}
  counter turn {}
  chain forward {
    type filter hook forward priority -10; policy accept;
    ip saddr $R1_WAN ip daddr $R2_WAN ip protocol udp counter name dropped drop comment "lab-wan-block"
    ip saddr $R2_WAN ip daddr $R1_WAN ip protocol udp counter name dropped drop comment "lab-wan-block"
  }
  chain input {
    type filter hook input priority -10; policy accept;
    ip saddr { $R1_WAN, $R2_WAN } ip daddr $TURN1 ip protocol udp counter name turn
  }
}
EOF
      ;;
    open)
      local h
      for h in $(nsx inet nft -a list chain ip lab_wan_block forward | awk '/lab-wan-block/ { print $NF }'); do
        nsx inet nft delete rule ip lab_wan_block forward handle "$h"
      done ;;
    counts)
      local d t
      d=$(nsx inet nft list counter ip lab_wan_block dropped | awk '/packets/ { print $2 }')
      t=$(nsx inet nft list counter ip lab_wan_block turn | awk '/packets/ { print $2 }')
      echo "dropped ${d:-0} turn ${t:-0}" ;;
    off) nsx inet nft delete table ip lab_wan_block 2>/dev/null || true ;;
    *) die "usage: lab.sh wan-block on|open|counts|off" ;;
  esac
}
# Swap the STUN server on $STUN1/$STUN2 (stund or porthole). Routers ask it only when
# they start: follow with router-reboot.
cmd_stun_server() {
  need_root
  ns_exists inet || die "lab is not up"
  case ${1:-} in stund|porthole) stun_server_launch "$1" ;; *) die "usage: lab.sh stun-server stund|porthole" ;; esac
}

# Shell assignments for scripts: eval "$(lab.sh env)".
cmd_env() {
  cat <<EOF
PORTHOLE_LAB_PREFIX=$PREFIX
PORTHOLE_LAB_DIR=$RUN_DIR
LAB_NS_INET=$(ns inet)
LAB_NS_R1=$(ns r1)
LAB_NS_R2=$(ns r2)
LAB_NS_LAN1=$(ns lan1)
LAB_NS_LAN1B=$(ns lan1b)
LAB_NS_LAN2=$(ns lan2)
LAB_R1_WAN=$R1_WAN
LAB_R1_LAN=$R1_LAN
LAB_R1_NET=$R1_NET
LAB_R2_WAN=$R2_WAN
LAB_R2_LAN=$R2_LAN
LAB_R2_NET=$R2_NET
LAB_INET_R1=$INET_R1
LAB_INET_R2=$INET_R2
LAB_LAN1=$LAN1
LAB_LAN1B=$LAN1B
LAB_LAN2=$LAN2
LAB_NS_R3=$(ns r3)
LAB_NS_LAN3=$(ns lan3)
LAB_R3_WAN=$R3_WAN
LAB_R3_LAN=$R3_LAN
LAB_LAN3=$LAN3
LAB_NS_ISP=$(ns isp)
LAB_NS_RC=$(ns rc)
LAB_NS_LANC=$(ns lanc)
LAB_ISP_PUBLIC=$ISP_PUBLIC
LAB_ISP_INSIDE=$ISP_INSIDE
LAB_RC_WAN=$RC_WAN
LAB_RC_LAN=$RC_LAN
LAB_RC_NET=$RC_NET
LAB_LANC=$LANC
LAB_RC_ROOTDESC=http://$RC_LAN:$HTTP_PORT/rootDesc.xml
LAB_LANSTUN1=$LANSTUN1
LAB_LANSTUN2=$LANSTUN2
LAB_STUN1=$STUN1
LAB_STUN2=$STUN2
LAB_STUN_PORT=$STUN_PORT
LAB_STUN_PORT2=$STUN_PORT2
LAB_SERVE1=$SERVE1
LAB_SERVE2=$SERVE2
LAB_TURN1=$TURN1
LAB_TURN_PORT=$TURN_PORT
LAB_TURN_USER=$TURN_USER
LAB_TURN_PASSWORD=$TURN_PASSWORD
LAB_TURN_CREDENTIALS=$RUN_DIR/turn-credentials
LAB_PUBLIC_HOSTS="${PUBLIC_HOSTS[*]}"
LAB_HTTP_PORT=$HTTP_PORT
LAB_PCP_PORT=$PCP_PORT
LAB_ALLOWED_PORTS=$ALLOWED_PORTS
LAB_R1_ROOTDESC=http://$R1_LAN:$HTTP_PORT/rootDesc.xml
LAB_R2_ROOTDESC=http://$R2_LAN:$HTTP_PORT/rootDesc.xml
EOF
}

# ---------------------------------------------------------------- NAT behaviours

# The extra table for fullcone and restricted (LAB.md "NAT behaviours with nftables"):
# after masquerade (a *filter* chain at srcnat + 10: once one nat chain has bound the
# connection the kernel skips later nat chains, so a nat-type chain there never sees a
# packet) learn WAN port -> internal IP . port, and for restricted also the remote
# address . WAN port pairs this mapping has sent to; before routing (dstnat + 10, after
# miniupnpd's own DNAT) send inbound UDP to a learned WAN port back to its internal
# endpoint (restricted: only from a learned remote address).
nat_mode_table() {
  local r=$1 mode=$2 net admit
  net=$(lan_net "$r")
  admit='iifname "wan" meta l4proto udp'
  [ "$mode" = restricted ] && admit="$admit ip saddr . udp dport @remotes"
  cat <<EOF
table inet lab_nat_mode {
  map mappings { type inet_service : ipv4_addr . inet_service; flags dynamic, timeout; timeout 120s; }
  set remotes { type ipv4_addr . inet_service; flags dynamic, timeout; timeout 120s; }
  chain learn {
    type filter hook postrouting priority srcnat + 10; policy accept;
    oifname "wan" ct original ip saddr $net meta l4proto udp update @mappings { udp sport timeout 120s : ct original ip saddr . ct original proto-src }
    oifname "wan" ct original ip saddr $net meta l4proto udp update @remotes { ip daddr . udp sport timeout 120s }
  }
  chain admit {
    type nat hook prerouting priority dstnat + 10; policy accept;
    $admit dnat ip to udp dport map @mappings
  }
}
EOF
}

# nat-mode ROUTER MODE: eim (what `up` sets: plain masquerade, port-restricted cone),
# symmetric (masquerade random: a random port per destination), symmetric-seq (UDP from
# the LAN gets port 40000 + a counter that goes up by one with each new mapping, mod 256:
# a predictable symmetric NAT; other traffic is masqueraded as in eim), fullcone,
# restricted. Rewrites the masquerade rule in place (symmetric-seq adds its snat rule
# before it), replaces table lab_nat_mode and the forward accept for its DNATs, then
# flushes the router's conntrack table (old entries keep old mappings).
cmd_nat_mode() {
  need_root
  local r mode=${2:-} handle masq rule
  if [ "${1:-}" = isp ]; then r=isp; else r=$(router_arg "${1:-}"); fi
  case $mode in eim|symmetric|symmetric-seq|fullcone|restricted) ;; *) die "usage: lab.sh nat-mode ROUTER eim|symmetric|symmetric-seq|fullcone|restricted" ;; esac
  ns_exists "$r" || die "router $r is not up"
  handle=$(nsx "$r" nft -a list chain inet filter postrouting | awk '/masquerade/ { print $NF }')
  [[ $handle =~ ^[0-9]+$ ]] || die "no masquerade rule in $r's postrouting chain"
  masq="oifname \"wan\" ip saddr $(lan_net "$r") masquerade"
  [ "$mode" = symmetric ] && masq="$masq random"
  nsx "$r" nft replace rule inet filter postrouting handle "$handle" "$masq"
  for rule in $(nsx "$r" nft -a list chain inet filter postrouting | awk '/lab-nat-seq/ { print $NF }'); do
    nsx "$r" nft delete rule inet filter postrouting handle "$rule"
  done
  if [ "$mode" = symmetric-seq ]; then
    # The nat chain sees a connection's first packet only: one counter step per mapping.
    # Through a map (typed ports): numgen's raw value would be taken in network byte
    # order (40000, 40001 became 16540, 16796).
    local ports
    ports=$(for i in $(seq 0 255); do printf '%d : %d, ' "$i" $((40000 + i)); done)
    nsx "$r" nft insert rule inet filter postrouting position "$handle" oifname '"wan"' ip saddr \
      "$(lan_net "$r")" meta l4proto udp snat ip to "$(wan_ip "$r")" : numgen inc mod 256 map "{ ${ports%, } }" \
      comment '"lab-nat-seq"'
  fi
  nsx "$r" nft delete table inet lab_nat_mode 2>/dev/null || true
  for rule in $(nsx "$r" nft -a list chain inet filter forward | awk '/lab-nat-mode/ { print $NF }'); do
    nsx "$r" nft delete rule inet filter forward handle "$rule"
  done
  if [ "$mode" = fullcone ] || [ "$mode" = restricted ]; then
    nat_mode_table "$r" "$mode" | nsx "$r" nft -f -
    nsx "$r" nft insert rule inet filter forward ct status dnat accept comment '"lab-nat-mode"'
  fi
  nsx "$r" conntrack -F >/dev/null 2>&1 || true
  echo "$mode" >"$RUN_DIR/$r.natmode"
}

# ---------------------------------------------------------------- double NAT

# up-double-nat: an inner home router r3 whose WAN sits on r1's LAN, with its own host:
#
#   lan3 192.168.3.100 -- bridge "lan" 192.168.3.1 [r3: NAT + miniupnpd] wan 192.168.1.2 -- r1's LAN
#   stun3 192.168.1.10 + .11 (stund, on r1's LAN) = r3's STUN server
#
# r3's miniupnpd needs its STUN self-test to pass before it grants mappings (its WAN
# address is private). Asked against the lab's internet server it would see r1's
# port-restricted NAT and refuse. Against stund3 on r1's LAN it sees no NAT, enables
# forwarding and reports 192.168.1.2 as its external address: exactly what a real inner
# router reports. Behind r1, mappings on r3 work while r1 still blocks.
down_double_nat() {
  local n
  stop_daemon miniupnpd-r3 r3
  stop_daemon stund3 stun3
  for n in "${DOUBLE_NS[@]}"; do delete_ns "$n"; done
  rm -f "$RUN_DIR"/r3.* "$RUN_DIR"/r3-*.conf
}
cmd_down_double_nat() { need_root; down_double_nat; echo "double NAT down"; }

cmd_up_double_nat() {
  need_root
  ns_exists r1 || die "lab is not up: run lab.sh up first"
  if ns_exists r3; then echo "double NAT already up"; return 0; fi
  local n
  for n in "${DOUBLE_NS[@]}"; do echo "netns add $(ns "$n")"; done | ip -batch -
  printf '%s\n' "link add p-r3 type veth peer name wan netns $(ns r3)" "link set p-r3 master lan" \
    "link set p-r3 up" "link add p-stun3 type veth peer name eth0 netns $(ns stun3)" \
    "link set p-stun3 master lan" "link set p-stun3 up" | ip -n "$(ns r1)" -batch -
  printf '%s\n' "link set lo up" "link add lan type bridge mcast_snooping 0" \
    "link set lan address 02:00:00:00:03:01" "addr add $R3_LAN/24 dev lan" "link set lan up" \
    "link add p-lan3 type veth peer name eth0 netns $(ns lan3)" "link set p-lan3 master lan" \
    "link set p-lan3 up" "addr add $R3_WAN/24 dev wan" "link set wan up" \
    "route add default via $R1_LAN" | ip -n "$(ns r3)" -batch -
  printf '%s\n' "link set lo up" "addr add $LAN3/24 dev eth0" "link set eth0 up" \
    "route add default via $R3_LAN" | ip -n "$(ns lan3)" -batch -
  printf '%s\n' "link set lo up" "addr add $LANSTUN1/24 dev eth0" "addr add $LANSTUN2/24 dev eth0" \
    "link set eth0 up" "route add default via $R1_LAN" | ip -n "$(ns stun3)" -batch -
  set_sysctls "${DOUBLE_NS[@]}"
  # r3 is a home router like the others, but its STUN server sits on r1's LAN.
  router_ruleset r3 | sed "s/{ $STUN1, $STUN2 }/{ $LANSTUN1, $LANSTUN2 }/" | nsx r3 nft -f -
  start_daemon stund3 stun3 stund -h "$LANSTUN1" -a "$LANSTUN2" -p "$STUN_PORT" -o "$STUN_PORT2"
  wait_stund stund3 stun3
  router_launch r3 stun
  router_wait r3 || die "miniupnpd in r3 is not ready"
  echo "double NAT up: lan3 $LAN3 behind r3 ($R3_WAN) behind r1"
}

# ---------------------------------------------------------------- carrier-grade NAT

# cgnat-start [eim|symmetric]: a home router rc behind the ISP's NAT box isp:
#
#   lanc 192.168.4.100 -- bridge "lan" 192.168.4.1 [rc: NAT + miniupnpd] wan 100.64.0.2 --+
#   [isp: carrier NAT, masquerade to 203.0.113.50] lan 100.64.0.1/10 -----------------------+
#   isp wan 203.0.113.50 -- inet
#
# isp has the home routers' ruleset (LAN 100.64.0.0/10 masqueraded, unsolicited WAN
# traffic dropped), and `nat-mode isp MODE` switches it like theirs. rc is a home router
# like r1. miniupnpd 2.3.1 refuses to map while its WAN address is reserved (100.64/10 is)
# unless its STUN self-test passes, and refuses an ext_ip= that is reserved (every lab
# address is); against the lab's internet stund it would find the carrier NAT
# restrictive and stay disabled. So, like r3, it asks stund-isp on isp's inside
# addresses: no NAT in between, forwarding enabled, external address 100.64.0.2. It
# maps, and the internet still cannot reach the mapping.
down_cgnat() {
  local n
  stop_daemon miniupnpd-rc rc
  stop_daemon stund-isp isp
  for n in "${CGNAT_NS[@]}"; do delete_ns "$n"; done
  if ns_exists r1; then nsx r1 ip route del "$ISP_PUBLIC/32" 2>/dev/null || true; fi
  rm -f "$RUN_DIR"/rc.* "$RUN_DIR"/rc-*.conf "$RUN_DIR"/isp.*
}
cmd_cgnat_stop() { need_root; down_cgnat; echo "cgnat down"; }

cmd_cgnat_start() {
  need_root
  local mode=${1:-eim} n
  case $mode in eim|symmetric) ;; *) die "usage: lab.sh cgnat-start [eim|symmetric]" ;; esac
  ns_exists inet || die "lab is not up: run lab.sh up first"
  if ! ns_exists isp; then
    for n in "${CGNAT_NS[@]}"; do echo "netns add $(ns "$n")"; done | ip -batch -
    # inet answers on the new link as 203.0.113.1 too (a /32: no second subnet route).
    printf '%s\n' "link add isp type veth peer name wan netns $(ns isp)" \
      "addr add $INET_R1/32 dev isp" "link set isp up" \
      "route add $ISP_PUBLIC/32 dev isp src ${PUBLIC_HOSTS[0]}" | ip -n "$(ns inet)" -batch -
    printf '%s\n' "link set lo up" "addr add $ISP_PUBLIC/32 dev wan" "link set wan up" \
      "route add default via $INET_R1 dev wan onlink" \
      "link add lan type veth peer name wan netns $(ns rc)" \
      "addr add $ISP_INSIDE/10 dev lan" "addr add $ISP_STUN2/10 dev lan" \
      "link set lan up" | ip -n "$(ns isp)" -batch -
    printf '%s\n' "link set lo up" "link add lan type bridge mcast_snooping 0" \
      "link set lan address 02:00:00:00:04:01" "addr add $RC_LAN/24 dev lan" "link set lan up" \
      "link add p-lanc type veth peer name eth0 netns $(ns lanc)" "link set p-lanc master lan" \
      "link set p-lanc up" "addr add $RC_WAN/10 dev wan" "link set wan up" \
      "route add default via $ISP_INSIDE" | ip -n "$(ns rc)" -batch -
    printf '%s\n' "link set lo up" "addr add $LANC/24 dev eth0" "link set eth0 up" \
      "route add default via $RC_LAN" | ip -n "$(ns lanc)" -batch -
    # r1's /25 holds the ISP's address: reach it through inet like any other host.
    nsx r1 ip route replace "$ISP_PUBLIC/32" via "$INET_R1"
    set_sysctls "${CGNAT_NS[@]}"
    router_ruleset isp | nsx isp nft -f -
    router_ruleset rc | sed "s/{ $STUN1, $STUN2 }/{ $ISP_STUN1, $ISP_STUN2 }/" | nsx rc nft -f -
    start_daemon stund-isp isp stund -h "$ISP_STUN1" -a "$ISP_STUN2" -p "$STUN_PORT" -o "$STUN_PORT2"
    wait_stund stund-isp isp
    router_launch rc stun
    router_wait rc || die "miniupnpd in rc is not ready"
  fi
  cmd_nat_mode isp "$mode"
  echo "cgnat up ($mode): lanc $LANC behind rc ($RC_WAN) behind isp ($ISP_PUBLIC)"
}

usage() {
  cat <<EOF
usage: $ME COMMAND [ARGS]   (root; env PORTHOLE_LAB_PREFIX=$PREFIX, PORTHOLE_LAB_DIR=$RUN_DIR)
  up                         build namespaces, start stund + miniupnpd in r1 and r2 (tears down first)
  down                       stop daemons, delete namespaces and the run dir (never fails)
  exec NS CMD [ARGS...]      run CMD in namespace NS: ${ALL_NS[*]}
  status                     namespaces, addresses, daemons
  env                        shell variables (eval "\$(lab.sh env)")
  router-stop [R]            SIGTERM miniupnpd in router R (r1 default); rules + leases stay
  router-start [R]           start miniupnpd (with STUN) and wait until forwarding is enabled
  router-start-cgnat [R]     wipe like a reboot, start without STUN: a router behind CGNAT
  router-start-igdv1 [R]     wipe like a reboot, start as an IGDv1 device (no AddAnyPortMapping)
  router-reboot [R]          stop, flush miniupnpd's nft chains, lease file and conntrack, start
  router-http-port PORT|default [R]  miniupnpd's HTTP port from its next start (then router-reboot)
  router-min-lifetime S|default [R]  restart miniupnpd with min_lifetime=S (not wiped)
  wan-address IP|default [R] [silent]  give R another WAN address (203.0.113.N), SIGUSR1 miniupnpd
  router-drop on|off [R]     silently drop LAN->router UDP $PCP_PORT, UDP 1900, TCP $HTTP_PORT
  upnp-table [R]             live redirects: PROTO EXTPORT INTERNAL_IP INTERNAL_PORT
  nat-mode R MODE            NAT behaviour of router R (or isp): eim (default), symmetric, symmetric-seq, fullcone, restricted
  cgnat-start [eim|symmetric]  add rc (WAN $RC_WAN, LAN $RC_NET, host lanc $LANC) behind the ISP's NAT isp
                             ($ISP_PUBLIC on inet) in that mode (eim default); miniupnpd in rc with ext_ip
  cgnat-stop                 remove isp, rc and lanc again (down does it too)
  up-double-nat              add r3 behind r1 (WAN $R3_WAN, LAN $R3_NET, host lan3 $LAN3) and its STUN server stun3
  down-double-nat            remove r3, lan3 and stun3 again (down does it too)
  serve-start                \$PORTHOLE_BIN serve on $SERVE1 + $SERVE2 in inet (log porthole-serve.log)
  serve-stop                 stop it
  turn-start                 coturn on $TURN1:$TURN_PORT in inet, user $TURN_USER (log coturn.log,
                             credentials file turn-credentials)
  turn-stop                  stop it
  wan-block on|open|counts|off  drop UDP between r1's and r2's WANs in inet (on), lift the drop
                             (open), print "dropped N turn M" packet counters (counts), remove (off)
  stun-server stund|porthole which program answers on $STUN1/$STUN2 (then router-reboot)
  (PORTHOLE_LAB_STUN=porthole with up: porthole serve instead of stund there from the start)
EOF
}

main() {
  check_prefix
  local cmd=${1:-help}; [ $# -gt 0 ] && shift
  case $cmd in
    up) cmd_up ;;
    down) cmd_down ;;
    exec) cmd_exec "$@" ;;
    status) cmd_status ;;
    env) cmd_env ;;
    router-stop) cmd_router_stop "$@" ;;
    router-start) cmd_router_start "$@" ;;
    router-start-cgnat) cmd_router_start_cgnat "$@" ;;
    router-start-igdv1) cmd_router_start_igdv1 "$@" ;;
    router-reboot) cmd_router_reboot "$@" ;;
    router-http-port) cmd_router_http_port "$@" ;;
    router-drop) cmd_router_drop "$@" ;;
    nat-mode) cmd_nat_mode "$@" ;;
    up-double-nat) cmd_up_double_nat ;;
    cgnat-start) cmd_cgnat_start "$@" ;;
    cgnat-stop) cmd_cgnat_stop ;;
    down-double-nat) cmd_down_double_nat ;;
    router-min-lifetime) cmd_router_min_lifetime "$@" ;;
    wan-address) cmd_wan_address "$@" ;;
    upnp-table) cmd_upnp_table "$@" ;;
    serve-start) cmd_serve_start ;;
    serve-stop) cmd_serve_stop ;;
    turn-start) cmd_turn_start ;;
    turn-stop) cmd_turn_stop ;;
    wan-block) cmd_wan_block "$@" ;;
    stun-server) cmd_stun_server "$@" ;;
    help|-h|--help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
