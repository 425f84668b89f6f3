#!/usr/bin/env bash
# Starts, on one machine, every process of a usaged cluster: two ClickHouse
# replicas of one shard, ZooKeeper (the replicas' and usaged's commit
# points), Redis (usaged's claims), PostgreSQL (usaged's metadata) and three
# usaged nodes, each on its own loopback address and a non-default port,
# with its data and logs under one directory. For trying a cluster and for the
# tests; production runs a current ClickHouse with three replicas and
# ClickHouse Keeper (see docs/scale-out.md).
#
#   deploy/local-cluster.sh start [DIR]   start the servers (DIR: ./usaged-cluster)
#   deploy/local-cluster.sh nodes [DIR]   then start three usaged nodes on them
#                                         (the usaged on PATH, or $USAGED), at
#                                         http://127.0.0.16:8080, .17 and .18,
#                                         sharing an admin token and a signing
#                                         key kept in DIR
#   deploy/local-cluster.sh stop  [DIR]   stop what start and nodes started, by pid
#   deploy/local-cluster.sh env   [DIR]   print the addresses as shell exports
#   deploy/local-cluster.sh kill|start-one NAME [DIR]
#                                         SIGKILL or start one process
#                                         (clickhouse1, clickhouse2, zookeeper,
#                                         redis, postgres): for fault tests
#
# start is idempotent: what already runs is left running. It needs, from
# Debian: clickhouse-server, zookeeper, redis-server, postgresql.
set -euo pipefail

cmd=${1:-}
case "$cmd" in
kill | start-one) one=${2:?name of a process}; dir=${3:-./usaged-cluster} ;;
*) dir=${2:-./usaged-cluster} ;;
esac
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

# Addresses. Every process has an address of its own, so that a test can
# cut one off from the others; USAGED_CLUSTER_HOST (default 10) moves them
# all, so that two clusters run side by side (a fault test kills processes
# of its own cluster, never of the one other tests share).
host=${USAGED_CLUSTER_HOST:-10}
CH1=127.0.0.$((host + 1)) CH2=127.0.0.$((host + 2)) ZK=127.0.0.$((host + 3)) REDIS=127.0.0.$((host + 4)) PG=127.0.0.$((host + 5))
NODES="127.0.0.$((host + 6)) 127.0.0.$((host + 7)) 127.0.0.$((host + 8))" NODE_PORT=8080
CH_TCP=19000 CH_HTTP=18123 CH_INTER=19009 ZK_PORT=12181 REDIS_PORT=16379 PG_PORT=15432

env_exports() {
	cat <<EOT
export USAGED_CLICKHOUSE=clickhouse://$CH1:$CH_TCP,$CH2:$CH_TCP/usaged
export USAGED_CLICKHOUSE_HTTP=http://$CH1:$CH_HTTP,http://$CH2:$CH_HTTP
export USAGED_ZOOKEEPER=$ZK:$ZK_PORT
export USAGED_REDIS=redis://$REDIS:$REDIS_PORT
export USAGED_POSTGRES=postgres://usaged@$PG:$PG_PORT/usaged?sslmode=disable
EOT
}

alive() { [ -f "$dir/$1.pid" ] && kill -0 "$(cat "$dir/$1.pid")" 2>/dev/null; }

wait_for() { # name, command...; TRIES (default 300) tries, 0.1 s apart
	local name=$1; shift
	for _ in $(seq 1 "${TRIES:-300}"); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 0.1
	done
	echo "local-cluster: $name did not come up; its log is in $dir/$name.log" >&2
	tail -20 "$dir/$name.log" >&2 || true
	exit 1
}

redis_serving() { [ "$(redis-cli -h $REDIS -p $REDIS_PORT ping 2>/dev/null)" = PONG ]; }

tcp_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# zk_serving: ZooKeeper accepts connections while it still loads its
# snapshot and log, and ClickHouse refuses to start if the keeper's
# handshake fails then; "stat" names the server's mode only once it serves.
# A keeper that takes the connection and never answers must not hold the
# start forever: each try gives up after 2 s.
zk_serving() { timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2" && echo stat >&3 && grep -q "^Mode:" <&3' zk_serving "$1" "$2" 2>/dev/null; }

# port_free fails when something already listens on an address this
# cluster's process is to take: another cluster's, or one left running.
port_free() { # name, host, port
	if tcp_open "$2" "$3"; then
		echo "local-cluster: $2:$3, the address of $1, is taken by another process: stop the cluster that started it" >&2
		exit 1
	fi
}

start_zookeeper() {
	alive zookeeper && return 0
	port_free zookeeper $ZK $ZK_PORT
	mkdir -p "$dir/zookeeper/data"
	cat >"$dir/zookeeper/zoo.cfg" <<EOT
tickTime=500
initLimit=10
syncLimit=5
dataDir=$dir/zookeeper/data
clientPort=$ZK_PORT
clientPortAddress=$ZK
maxSessionTimeout=60000
admin.enableServer=false
4lw.commands.whitelist=ruok,stat,mntr
EOT
	cp /etc/zookeeper/conf/log4j.properties "$dir/zookeeper/" 2>/dev/null || true
	java -Xmx512m -cp "$dir/zookeeper:/usr/share/java/zookeeper.jar" \
		-Dzookeeper.log.dir="$dir" -Dzookeeper.root.logger=WARN,CONSOLE \
		org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/zookeeper/zoo.cfg" \
		>"$dir/zookeeper.log" 2>&1 &
	echo $! >"$dir/zookeeper.pid"
	wait_for zookeeper zk_serving $ZK $ZK_PORT
}

start_clickhouse() { # n, address
	local n=$1 addr=$2 name=clickhouse$1
	alive $name && return 0
	port_free $name $addr $CH_TCP
	local d="$dir/$name"
	mkdir -p "$d/data" "$d/tmp" "$d/user_files" "$d/format_schemas"
	cat >"$d/config.xml" <<EOT
<?xml version="1.0"?>
<yandex>
    <logger><level>warning</level><log>$d/server.log</log><errorlog>$d/error.log</errorlog><size>100M</size><count>2</count></logger>
    <listen_host>$addr</listen_host>
    <http_port>$CH_HTTP</http_port>
    <tcp_port>$CH_TCP</tcp_port>
    <interserver_http_port>$CH_INTER</interserver_http_port>
    <interserver_http_host>$addr</interserver_http_host>
    <max_connections>4096</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>200</max_concurrent_queries>
    <uncompressed_cache_size>1073741824</uncompressed_cache_size>
    <mark_cache_size>1073741824</mark_cache_size>
    <path>$d/data/</path>
    <tmp_path>$d/tmp/</tmp_path>
    <user_files_path>$d/user_files/</user_files_path>
    <format_schema_path>$d/format_schemas/</format_schema_path>
    <users_config>/etc/clickhouse-server/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
    <remote_servers>
        <usaged>
            <shard>
                <internal_replication>true</internal_replication>
                <replica><host>$CH1</host><port>$CH_TCP</port></replica>
                <replica><host>$CH2</host><port>$CH_TCP</port></replica>
            </shard>
        </usaged>
    </remote_servers>
    <zookeeper>
        <node><host>$ZK</host><port>$ZK_PORT</port></node>
        <session_timeout_ms>10000</session_timeout_ms>
    </zookeeper>
    <macros><shard>1</shard><replica>$name</replica></macros>
    <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>
    <merge_tree><replicated_deduplication_window>100000</replicated_deduplication_window></merge_tree>
</yandex>
EOT
	clickhouse-server --config-file="$d/config.xml" >"$dir/$name.log" 2>&1 &
	echo $! >"$dir/$name.pid"
	wait_for $name curl -fsS "http://$addr:$CH_HTTP/ping"
}

start_redis() {
	alive redis && return 0
	port_free redis $REDIS $REDIS_PORT
	mkdir -p "$dir/redis"
	# appendfsync always: a claim the server acknowledged survives its crash.
	redis-server --bind $REDIS --port $REDIS_PORT --dir "$dir/redis" \
		--appendonly yes --appendfsync always --save "" \
		--protected-mode no >"$dir/redis.log" 2>&1 &
	echo $! >"$dir/redis.pid"
	# Redis answers "LOADING" rather than PONG while it reads its
	# append-only file back, which takes about a minute per GB: claims
	# sent then fail. Wait up to ten minutes for PONG.
	TRIES=6000 wait_for redis redis_serving
}

pg_bin() { echo "/usr/lib/postgresql/$(ls /usr/lib/postgresql | sort -n | tail -1)/bin/$1"; }

# PostgreSQL refuses to run as root: run it as the postgres user the
# Debian package creates, or as the caller when not root.
as_pg() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
	alive postgres && return 0
	port_free postgres $PG $PG_PORT
	local d="$dir/postgres"
	if [ ! -f "$d/PG_VERSION" ]; then
		mkdir -p "$d"
		if [ "$(id -u)" = 0 ]; then
			chown postgres "$d"
			chmod o+x "$dir" # the postgres user must reach its directory
		fi
		as_pg "$(pg_bin initdb)" -D "$d" -U usaged --auth=trust >"$dir/postgres-init.log" 2>&1 || {
			echo "local-cluster: initdb failed (the postgres user must reach $d):" >&2
			cat "$dir/postgres-init.log" >&2
			exit 1
		}
	fi
	if [ "$(id -u)" = 0 ]; then touch "$dir/postgres.log" && chown postgres "$dir/postgres.log"; fi
	as_pg "$(pg_bin postgres)" -D "$d" -h $PG -p $PG_PORT -k "" \
		-c fsync=on -c max_connections=300 >"$dir/postgres.log" 2>&1 &
	echo $! >"$dir/postgres.pid"
	wait_for postgres "$(pg_bin pg_isready)" -h $PG -p $PG_PORT
	psql -h $PG -p $PG_PORT -U usaged -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='usaged'" | grep -q 1 ||
		psql -h $PG -p $PG_PORT -U usaged -d postgres -qc "CREATE DATABASE usaged"
	# The runuser wrapper is the process start saw; the server is its child.
	pgrep -u postgres -f "$(pg_bin postgres) -D $d" | head -1 >"$dir/postgres.pid"
}

start_nodes() {
	local bin=${USAGED:-usaged} i=0
	command -v "$bin" >/dev/null || { echo "local-cluster: no usaged binary: put it on PATH or set USAGED" >&2; exit 1; }
	[ -f "$dir/admin-token" ] || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/admin-token"
	for addr in $NODES; do
		i=$((i + 1))
		alive node$i && continue
		port_free node$i "$addr" $NODE_PORT
		"$bin" serve --addr "$addr:$NODE_PORT" --data "$dir/node$i" \
			--store "clickhouse://$CH1:$CH_TCP,$CH2:$CH_TCP/usaged" \
			--metadata "postgres://usaged@$PG:$PG_PORT/usaged?sslmode=disable" \
			--keeper "$ZK:$ZK_PORT" --claims "redis://$REDIS:$REDIS_PORT" \
			--signing-key-file "$dir/token-signing-key" --admin-token-file "$dir/admin-token" \
			>"$dir/node$i.log" 2>&1 &
		echo $! >"$dir/node$i.pid"
		wait_for node$i curl -fsS "http://$addr:$NODE_PORT/healthz"
		echo "local-cluster: usaged node $i at http://$addr:$NODE_PORT" >&2
	done
	echo "local-cluster: the admin token is in $dir/admin-token" >&2
}

stop_one() {
	local name=$1 sig=${2:-TERM}
	alive "$name" || { rm -f "$dir/$name.pid"; return 0; }
	local pid; pid=$(cat "$dir/$name.pid")
	kill -s "$sig" "$pid" 2>/dev/null || true
	for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -s KILL "$pid" 2>/dev/null || true
	rm -f "$dir/$name.pid"
}

start_one() {
	case "$1" in
	clickhouse1) start_clickhouse 1 $CH1 ;;
	clickhouse2) start_clickhouse 2 $CH2 ;;
	zookeeper) start_zookeeper ;;
	redis) start_redis ;;
	postgres) start_postgres ;;
	*) echo "local-cluster: no process named $1" >&2; exit 2 ;;
	esac
}

case "$cmd" in
start)
	start_zookeeper
	start_clickhouse 1 $CH1
	start_clickhouse 2 $CH2
	start_redis
	start_postgres
	env_exports >"$dir/env"
	echo "local-cluster: running under $dir; addresses in $dir/env:" >&2
	env_exports
	;;
nodes) start_nodes ;;
stop)
	for p in node1 node2 node3 clickhouse1 clickhouse2 redis postgres zookeeper; do stop_one $p; done
	;;
env) env_exports ;;
kill) stop_one "$one" KILL ;;
start-one) start_one "$one" ;;
*)
	sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
	;;
esac
