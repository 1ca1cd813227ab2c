# Shared by scripts/bench-*: free ports, medians, and a tessera started on the embedded store
# in a temporary directory. Source it after setting `repo`, `tmp` and `bin`.

# A loopback port nobody answers on.
free_port() {
  local port
  for _ in $(seq 1 100); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return; fi
  done
  echo "no free port found" >&2; exit 1
}

median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

# Requests per second of one wrk run against $1 with the headers in the array `auth`; fails on
# any non-2xx answer or socket error. `connections`, `seconds` and `wrk_cpu` (a taskset CPU
# list, may be empty) come from the caller.
measure() {
  local out pin=()
  [ -n "${wrk_cpu:-}" ] && pin=(taskset -c "$wrk_cpu")
  out=$("${pin[@]}" wrk -t1 -c"$connections" -d"${seconds}s" "${auth[@]}" "$1")
  if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then echo "$out" >&2; exit 1; fi
  awk '/^Requests\/sec:/ {print $2}' <<<"$out"
}

# start_tessera MODE PORT [VAR=value …]: tessera on the embedded store in $tmp/data, with only
# the settings given (no TESSERA_* variable of the caller's leaks in); sets `tessera_pid`.
start_tessera() {
  local mode=$1 port=$2; shift 2
  for var in $(compgen -e | grep '^TESSERA_' || true); do unset "$var"; done
  ( cd "$tmp" && exec env RUST_LOG=warn \
      TESSERA_AUTH__MODE="$mode" \
      TESSERA_STORE__DATA_DIR="$tmp/data" \
      TESSERA_SERVER__LISTEN="127.0.0.1:$port" \
      TESSERA_JWT__ACCESS_TTL=1h \
      "$@" "$bin" serve ) >"$tmp/tessera.log" 2>&1 &
  tessera_pid=$!
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  curl -fs "http://127.0.0.1:$port/healthz" >/dev/null || { cat "$tmp/tessera.log"; exit 1; }
}

# login_token PORT: signs up `bench` and prints a bearer credential (access or session token).
login_token() {
  local creds='{"username":"bench","password":"bench password"}'
  curl -fs -X POST "http://127.0.0.1:$1/v1/accounts" -H 'content-type: application/json' -d "$creds" >/dev/null
  curl -fs -X POST "http://127.0.0.1:$1/v1/login" -H 'content-type: application/json' \
    -H 'tessera-transport: bearer' -d "$creds" | jq -r '.access_token // .session_token'
}

# need TOOL…: installs the Debian packages of the same names when they are missing (as root),
# or says which to install.
need() {
  local missing=() tool
  for tool in "$@"; do command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || missing+=("$tool"); done
  [ ${#missing[@]} -eq 0 ] && return
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "needed: ${missing[*]} (apt-get install ${missing[*]})" >&2; exit 1
  fi
}
